"""Gold: feature and label stores on real partitions; any split of months gives the same gold."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from readmit.data.bronze import build_bronze
from readmit.data.features import (
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    FEATURE_DTYPES,
    FLAG_COLUMNS,
    HISTORY_FEATURES,
    KEY_COLUMNS,
    date_order_contradictions,
    encounter_features,
)
from readmit.data.gold import build_gold, history_fingerprint, label_frame, stale_months
from readmit.data.layers import FEATURE_STORE, LABEL_STORE, SILVER_TABLE
from readmit.data.silver import build_silver, clean
from readmit.errors import ReadmitInputError
from readmit.storage import Storage


def _gold(storage: Storage) -> tuple[pl.DataFrame, pl.DataFrame]:
    features = storage.read_table(FEATURE_STORE).sort(KEY_COLUMNS)
    labels = storage.read_table(LABEL_STORE).sort(KEY_COLUMNS)
    return features, labels


@pytest.fixture(scope="module")
def real_2y(tmp_path_factory, uci_bronze_2y: pl.DataFrame, write_bronze) -> tuple[Storage, list[str]]:
    """Silver for 24 months of real encounters, and gold built for the whole range at once."""
    storage = Storage(tmp_path_factory.mktemp("datamart"))
    months = write_bronze(storage, uci_bronze_2y)
    build_silver(storage)
    result = build_gold(storage)
    assert result.partitions == months and result.rows_out == uci_bronze_2y.height
    return storage, months


def test_gold_is_the_same_whole_month_by_month_and_in_chunks(real_2y) -> None:
    storage, months = real_2y
    whole = _gold(storage)

    def drop_gold() -> None:  # so each way of building must write every partition itself
        for table in (FEATURE_STORE, LABEL_STORE):
            storage.delete(table, recursive=True)
        assert storage.list_partitions(FEATURE_STORE) == storage.list_partitions(LABEL_STORE) == []

    drop_gold()
    for month in months:
        build_gold(storage, start_month=month, end_month=month)
    monthly = _gold(storage)
    drop_gold()
    build_gold(storage, end_month="1999-07")
    build_gold(storage, start_month="1999-08")
    chunked = _gold(storage)
    for got in (monthly, chunked):
        assert got[0].equals(whole[0]) and got[1].equals(whole[1])
    assert whole[0]["prior_encounters"].max() > 0  # history is exercised


def test_gold_partitions_and_schema(real_2y) -> None:
    storage, months = real_2y
    assert storage.list_partitions(FEATURE_STORE) == months == storage.list_partitions(LABEL_STORE)
    features = storage.read_partition(FEATURE_STORE, months[5])
    assert features.columns == [*KEY_COLUMNS, *FEATURE_COLUMNS, *FLAG_COLUMNS]
    assert {c: features.schema[c] for c in FEATURE_COLUMNS} == FEATURE_DTYPES
    assert features.schema["death_or_hospice"] == pl.Boolean
    labels = storage.read_partition(LABEL_STORE, months[5])
    assert labels.columns == [*KEY_COLUMNS, "readmitted", "label", "_source_sha256", "label_learned_at"]
    assert labels["_source_sha256"].unique().to_list() == ["0" * 64]  # bronze's lineage, carried
    silver_month = storage.read_partition(SILVER_TABLE, months[5])
    assert labels["label_learned_at"].unique().to_list() == silver_month["_ingested_at"].unique().to_list()
    assert labels["label_learned_at"].null_count() == 0
    assert labels.schema["label"] == pl.Int8
    assert features.select(KEY_COLUMNS).equals(labels.select(KEY_COLUMNS))
    assert features.select(KEY_COLUMNS).equals(features.select(KEY_COLUMNS).sort("snapshot_date", "encounter_id"))
    silver = storage.read_partition(SILVER_TABLE, months[5])
    assert features.height == silver.height


def test_no_feature_is_constant_null_and_categoricals_have_no_nulls(real_2y) -> None:
    features, _ = _gold(real_2y[0])
    nulls = features.null_count().row(0, named=True)
    assert [c for c in FEATURE_COLUMNS if nulls[c] == features.height] == []
    assert all(nulls[c] == 0 for c in CATEGORICAL_FEATURES)
    first = features["prior_encounters"] == 0
    assert features.filter(first)["days_since_prior_encounter"].null_count() == first.sum()
    assert features.filter(~first)["days_since_prior_encounter"].null_count() == 0


def test_history_features_equal_a_plain_count_over_each_patients_earlier_encounters(real_2y) -> None:
    """Walk the 24 months in (snapshot_date, encounter_id) order, one patient's past at a time."""
    features, _ = _gold(real_2y[0])
    columns = ("patient_nbr", "snapshot_date", "time_in_hospital", "prior_encounters",
               "prior_inpatient_days", "days_since_prior_encounter")
    past: dict[int, tuple[int, int, dt.date]] = {}  # patient -> (encounters, inpatient days, last date)
    wrong = []
    for patient, day, stay, *got in features.sort("snapshot_date", "encounter_id").select(columns).iter_rows():
        count, days, last = past.get(patient, (0, 0, None))
        expected = [count, days, None if last is None else (day - last).days]
        if got != expected:
            wrong.append((patient, day, got, expected))
        past[patient] = (count + 1, days + (stay or 0), day)
    assert wrong == [], f"{len(wrong)} rows differ, first: {wrong[:3]}"
    assert max(count for count, _, _ in past.values()) > 3  # patients with a long history are exercised


def test_label_rate_and_death_or_hospice_on_all_real_rows(uci_bronze: pl.DataFrame) -> None:
    silver, _ = clean(uci_bronze)
    labels = label_frame(silver)
    assert labels["label"].sum() == 11_357
    assert round(labels["label"].mean(), 3) == 0.112
    assert labels.filter(pl.col("label") == 1)["readmitted"].unique().to_list() == ["<30"]
    assert encounter_features(silver)["death_or_hospice"].sum() == 2423


def test_build_gold_errors(tmp_path, bronze_rows) -> None:
    storage = Storage(tmp_path)
    with pytest.raises(ReadmitInputError, match="no partitions of silver"):
        build_gold(storage)
    silver, _ = clean(bronze_rows([{}]))
    storage.write_partition(SILVER_TABLE, "2001-01", silver.drop("age"))
    with pytest.raises(ReadmitInputError, match="missing column.*age") as err:
        build_gold(storage)
    assert "snapshot_month=2001-01" in str(err.value) and "Fix:" in str(err.value)


def test_a_rebuild_with_unchanged_silver_rebuilds_nothing_later(real_2y) -> None:
    storage, months = real_2y
    middle = months[len(months) // 2]
    before = _gold(storage)
    result = build_gold(storage, start_month=middle, end_month=middle)
    assert result.partitions == [middle] and result.notes == []
    assert all(_gold(storage)[i].equals(before[i]) for i in (0, 1))


def test_backfill_of_earlier_months_rebuilds_the_later_ones(
    tmp_path, uci_bronze_2y: pl.DataFrame, write_bronze, real_2y
) -> None:
    """Later months first, then a backfill of the earlier ones: the same gold as one shot."""
    one_shot = _gold(real_2y[0])
    storage = Storage(tmp_path)
    months = write_bronze(storage, uci_bronze_2y)
    build_silver(storage, start_month="2000-01")
    build_gold(storage)  # 2000 only: 1999 is not in silver yet
    assert storage.list_partitions(FEATURE_STORE) == months[12:]
    assert not _gold(storage)[0].equals(one_shot[0].filter(pl.col("snapshot_date").dt.year() == 2000))
    build_silver(storage, end_month="1999-12")
    result = build_gold(storage, end_month="1999-12")
    assert result.partitions == months  # 1999 as asked, then every 2000 month again
    assert "rebuilt 12 later gold month(s) (2000-01..2000-12)" in result.notes[0]
    got = _gold(storage)
    assert got[0].equals(one_shot[0]) and got[1].equals(one_shot[1])


def test_no_cascade_refuses_before_writing_anything(tmp_path, uci_bronze_2y: pl.DataFrame, write_bronze) -> None:
    storage = Storage(tmp_path)
    write_bronze(storage, uci_bronze_2y)
    build_silver(storage, start_month="2000-01")
    build_gold(storage)
    before = _gold(storage)
    build_silver(storage, end_month="1999-12")
    with pytest.raises(ReadmitInputError) as err:
        build_gold(storage, end_month="1999-12", cascade=False)
    message = str(err.value)
    assert "12 later gold month(s) (2000-01..2000-12)" in message
    assert "1999-01" in message and "Fix:" in message and "2000-12" in message.split("Fix:")[1]
    assert storage.list_partitions(FEATURE_STORE)[0] == "2000-01"
    assert _gold(storage)[0].equals(before[0])


def test_which_later_months_rebuild_is_known_from_the_silver_history_inputs(real_2y) -> None:
    storage, months = real_2y
    month = months[6]
    silver = storage.read_partition(SILVER_TABLE, month)
    # A change outside the history inputs (a diagnosis): later months keep their history.
    storage.write_partition(SILVER_TABLE, month, silver.with_columns(pl.lit("250").alias("diag_1")))
    assert build_gold(storage, start_month=month, end_month=month).partitions == [month]
    # A change of a history input (a stay's length): every later month is rebuilt, and says why.
    longer = silver.with_columns(pl.col("time_in_hospital") + 1)
    storage.write_partition(SILVER_TABLE, month, longer)
    assert stale_months(storage, {m: history_fingerprint(storage.read_partition(SILVER_TABLE, m))
                                  for m in months}, after=months[0]) == {m: [month] for m in months[6:]}
    result = build_gold(storage, start_month=month, end_month=month)
    assert result.partitions == months[6:]
    storage.write_partition(SILVER_TABLE, month, silver)  # as it was, for the other tests
    assert build_gold(storage, start_month=month, end_month=month).partitions == months[6:]
    assert build_gold(storage, start_month=month, end_month=month).partitions == [month]


@pytest.fixture(scope="module")
def cyclic_features(tmp_path_factory, uci_zip) -> pl.DataFrame:
    """Gold features of all real UCI encounters with the reference's ``cyclic`` dates."""
    storage = Storage(tmp_path_factory.mktemp("cyclic"))
    build_bronze(storage, str(uci_zip), derivation="cyclic")
    build_silver(storage)
    build_gold(storage)
    return storage.read_table(FEATURE_STORE, columns=[*KEY_COLUMNS, *HISTORY_FEATURES])


@pytest.mark.slow  # ~20 s: the whole UCI file through bronze, silver and gold
def test_history_never_counts_a_later_encounter_with_cyclic_dates(cyclic_features: pl.DataFrame) -> None:
    rows = cyclic_features.sort("patient_nbr", "encounter_id")
    # The dates contradict the encounter order for thousands of patients: ordered by date alone,
    # thousands of encounters would count a stay that comes later by encounter_id.
    assert date_order_contradictions(rows) > 5_000
    by_date = rows.sort("snapshot_date", "encounter_id").with_columns(
        pl.col("encounter_id").cum_max().shift(1).over("patient_nbr").alias("latest_before"))
    assert by_date.filter(pl.col("latest_before") > pl.col("encounter_id")).height > 10_000
    # Brute force over each returning patient's stays: the earlier ones by id AND by date.
    expected = {}
    returning = rows.filter(pl.len().over("patient_nbr") > 1)
    for (_,), patient in returning.partition_by("patient_nbr", as_dict=True).items():
        stays = list(zip(patient["encounter_id"], patient["snapshot_date"], strict=True))
        for encounter_id, day in stays:
            before = [d for e, d in stays if e < encounter_id and d <= day]
            expected[encounter_id] = (len(before), (day - max(before)).days if before else None)
    got = {e: (n, days) for e, n, days in rows.select(
        "encounter_id", "prior_encounters", "days_since_prior_encounter").iter_rows()}
    assert {e: got[e] for e in expected} == expected
    assert all(got[e] == (0, None) for e in set(got) - set(expected))
    lower_ids = rows.select(pl.int_range(pl.len()).over("patient_nbr")).to_series()
    assert int((rows["prior_encounters"] > lower_ids).sum()) == 0  # never a later stay


def test_history_fingerprint_sees_history_inputs_only(bronze_rows) -> None:
    silver, _ = clean(bronze_rows([{"encounter_id": 1, "time_in_hospital": None},
                                   {"encounter_id": 2, "time_in_hospital": 3}]))
    base = history_fingerprint(silver)
    assert history_fingerprint(silver.reverse()) == base  # row order does not matter
    assert history_fingerprint(silver.with_columns(pl.lit("Asian").alias("race"))) == base
    assert history_fingerprint(silver.with_columns(pl.col("time_in_hospital").fill_null(0))) != base
    assert history_fingerprint(silver.head(1)) != base


def test_backfill_cascade_on_s3(s3_uri: str, bronze_rows) -> None:
    """The history inputs recorded in each partition's footer are read back from S3 too."""
    import datetime as dt

    storage = Storage(s3_uri)
    days = [dt.date(2001, m, 10) for m in (1, 2, 3)]
    silver, _ = clean(bronze_rows([{"encounter_id": i, "patient_nbr": 7} for i in (1, 2, 3)], days))
    for month, part in zip(("2001-02", "2001-03"), (silver[1:2], silver[2:3]), strict=True):
        storage.write_partition(SILVER_TABLE, month, part)
    build_gold(storage)
    assert storage.read_table(FEATURE_STORE)["prior_encounters"].to_list() == [0, 1]
    storage.write_partition(SILVER_TABLE, "2001-01", silver[0:1])  # the backfill
    with pytest.raises(ReadmitInputError, match=r"2 later gold month\(s\) \(2001-02..2001-03\)"):
        build_gold(storage, end_month="2001-01", cascade=False)
    assert build_gold(storage, end_month="2001-01").partitions == ["2001-01", "2001-02", "2001-03"]
    assert storage.read_table(FEATURE_STORE)["prior_encounters"].to_list() == [0, 1, 2]


def test_a_later_month_without_a_record_is_rebuilt(real_2y) -> None:
    storage, months = real_2y
    unrecorded = storage.read_partition(FEATURE_STORE, months[-3])
    storage.write_partition(FEATURE_STORE, months[-3], unrecorded)  # as an older readmit wrote it
    with pytest.raises(ReadmitInputError, match="carry no record"):
        build_gold(storage, start_month=months[0], end_month=months[0], cascade=False)
    result = build_gold(storage, start_month=months[0], end_month=months[0])
    assert result.partitions == [months[0], months[-3]]
    assert storage.read_partition(FEATURE_STORE, months[-3]).equals(unrecorded)
