"""Gold: feature and label stores on real partitions; any split of months gives the same gold."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from readmit.data.features import (
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    FEATURE_DTYPES,
    FLAG_COLUMNS,
    KEY_COLUMNS,
    encounter_features,
)
from readmit.data.gold import build_gold, label_frame
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
    assert labels.columns == [*KEY_COLUMNS, "readmitted", "label"]
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


def test_rebuilding_a_month_says_which_later_months_may_carry_stale_history(real_2y) -> None:
    storage, months = real_2y
    middle = months[len(months) // 2]
    result = build_gold(storage, start_month=middle, end_month=middle)
    later = months[len(months) // 2 + 1:]
    assert len(result.notes) == 1
    assert f"{len(later)} later gold month(s) ({later[0]}..{later[-1]})" in result.notes[0]
    assert f"--layer gold --start {middle}" in result.notes[0]
    assert build_gold(storage, start_month=months[-1], end_month=months[-1]).notes == []
