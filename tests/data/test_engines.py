"""The same silver and gold on every engine: DuckDB and Spark (local mode) against Polars, on the full UCI data."""

from __future__ import annotations

import datetime as dt
import shutil
import sys

import polars as pl
import pytest

from readmit.data.engines import ENGINES, open_engine
from readmit.data.features import HISTORY_FEATURES, HISTORY_STATE_SCHEMA, count_history
from readmit.data.gold import build_gold
from readmit.data.layers import BRONZE_TABLE, FEATURE_STORE, LABEL_STORE, SILVER_TABLE
from readmit.data.schema import KEY_COLUMNS
from readmit.data.silver import build_silver, clean
from readmit.errors import ReadmitError, ReadmitInputError
from readmit.storage import Storage

# Spark starts a JVM (tens of seconds): its cases are slow, DuckDB's and Polars' run in the fast loop.
EVERY_ENGINE = [pytest.param(e, marks=pytest.mark.slow) if e == "spark" else e for e in ENGINES]
OTHER_ENGINES = [e for e in EVERY_ENGINE if e != "polars"]


def _gold(storage: Storage, months: list[str] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    return tuple(storage.read_table(t, months).sort(KEY_COLUMNS) for t in (FEATURE_STORE, LABEL_STORE))


def _assert_same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """Row for row and column for column: names, types and values (floats to 1e-9)."""
    assert got.schema == want.schema
    assert got.height == want.height
    from polars.testing import assert_frame_equal

    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)


@pytest.fixture(scope="module")
def uci_silver(tmp_path_factory, uci_bronze: pl.DataFrame, write_bronze) -> tuple[Storage, list[str]]:
    """Silver of all 101,766 real encounters (120 months) and its gold built by Polars."""
    storage = Storage(tmp_path_factory.mktemp("polars"))
    months = write_bronze(storage, uci_bronze)
    build_silver(storage)
    build_gold(storage)
    return storage, months


def _copy_silver(polars_storage: Storage, target, table: str = SILVER_TABLE) -> Storage:
    shutil.copytree(polars_storage.path(table), target / table)
    return Storage(target)


def _silver(storage: Storage, months: list[str] | None = None) -> pl.DataFrame:
    return storage.read_table(SILVER_TABLE, months).sort("encounter_id")


@pytest.mark.slow
@pytest.mark.parametrize("engine", OTHER_ENGINES)
def test_silver_and_gold_on_every_engine_equal_polars_on_the_full_data(engine, uci_silver, engine_config,
                                                                      tmp_path) -> None:
    """Silver from bronze on the engine, then gold from that silver: both equal Polars' on all real rows."""
    reference, months = uci_silver
    storage = _copy_silver(reference, tmp_path, BRONZE_TABLE)
    config = engine_config(engine)
    silver = build_silver(storage, data_config=config)
    assert silver.partitions == months and (silver.rows_in, silver.rows_out) == (101_766, 101_766)
    want = _silver(reference)
    assert want.columns[-2:] == ["_source_sha256", "_ingested_at"]  # lineage comes through the engine too
    _assert_same(_silver(storage), want)
    for month in (months[0], months[57], months[-1]):  # each partition in (snapshot_date, encounter_id) order
        assert storage.read_partition(SILVER_TABLE, month).equals(reference.read_partition(SILVER_TABLE, month))
    # Gold on the engine, from the engine's silver: the same partitions as Polars' gold, read from
    # the same silver (the partitions above are equal, so the engine reads exactly Polars' silver).
    result = build_gold(storage, data_config=config)
    assert result.partitions == months and result.rows_out == 101_766
    got, want = _gold(storage), _gold(reference)
    for table, expected in zip(got, want, strict=True):
        _assert_same(table, expected)
    assert got[0]["prior_encounters"].max() > 0 and got[0]["days_since_prior_encounter"].drop_nulls().len() > 0
    # Each partition holds its month's rows in (snapshot_date, encounter_id) order, as Polars writes it.
    for month in (months[0], months[57]):
        assert storage.read_partition(FEATURE_STORE, month).equals(reference.read_partition(FEATURE_STORE, month))
    assert not storage.exists("_scratch")  # the engine's intermediate files are gone


@pytest.mark.slow
@pytest.mark.parametrize("engine", OTHER_ENGINES)
def test_month_by_month_equals_all_at_once_on_every_engine(engine, uci_silver, engine_config, tmp_path) -> None:
    """Silver and gold from bronze on the engine, months 30-33 one at a time, then together (the
    silver of the months before them copied from Polars': their patient history)."""
    reference, months = uci_silver
    _copy_silver(reference, tmp_path, BRONZE_TABLE)
    storage = _copy_silver(reference, tmp_path)
    config = engine_config(engine)
    chosen = months[30:34]
    for month in chosen:
        storage.delete(storage.partition_path(SILVER_TABLE, month))
    for month in chosen:
        build_silver(storage, start_month=month, end_month=month, data_config=config)
        build_gold(storage, start_month=month, end_month=month, data_config=config)
    monthly = _silver(storage, chosen), *_gold(storage, chosen)
    build_silver(storage, start_month=chosen[0], end_month=chosen[-1], data_config=config)
    build_gold(storage, start_month=chosen[0], end_month=chosen[-1], data_config=config)
    together = _silver(storage, chosen), *_gold(storage, chosen)
    want = _silver(reference, chosen), *_gold(reference, chosen)
    for got in (monthly, together):
        for table, expected in zip(got, want, strict=True):
            _assert_same(table, expected)
    assert want[1]["prior_encounters"].max() > 0


def _two_months(bronze_rows, storage: Storage, january: list[dict], february: list[dict]) -> None:
    jan, feb = dt.date(2001, 1, 15), dt.date(2001, 2, 15)
    storage.write_partition(BRONZE_TABLE, "2001-01", bronze_rows(january, [jan] * len(january)))
    storage.write_partition(BRONZE_TABLE, "2001-02", bronze_rows(february, [feb] * len(february)))


@pytest.mark.parametrize("engine", OTHER_ENGINES)
def test_silver_keeps_the_first_of_repeated_encounters_on_every_engine(engine, bronze_rows, engine_config,
                                                                        tmp_path) -> None:
    """"First" is the bronze file's order, not the lowest value; a repeat in another month is no duplicate."""
    january = [{"encounter_id": e, "num_medications": n} for e, n in
               [(8, 1), (5, 7), (6, 1), (5, 2), (9, 1), (5, 9), (6, 3), (7, 4)]]
    february = [{"encounter_id": 5, "num_medications": 11}, {"encounter_id": 4, "num_medications": 1}]
    results = {}
    for name in ("polars", engine):
        storage = Storage(tmp_path / name)
        _two_months(bronze_rows, storage, january, february)
        results[name] = build_silver(storage, data_config=engine_config(name)), _silver(storage)
    (got_result, got), (want_result, want) = results[engine], results["polars"]
    assert got_result.duplicates_removed == want_result.duplicates_removed == 3
    assert got.filter(pl.col("encounter_id") == 5)["num_medications"].sort().to_list() == [7, 11]
    assert got.filter(pl.col("encounter_id") == 6)["num_medications"].to_list() == [1]
    _assert_same(got, want)


@pytest.mark.parametrize("engine", OTHER_ENGINES)
@pytest.mark.parametrize("bad", ["domain", "range", "month"])
def test_silver_refuses_bad_input_with_polars_message_on_every_engine(engine, bad, bronze_rows, engine_config,
                                                                       tmp_path) -> None:
    """The same ReadmitInputError (exit 2: file, column, fix) on every engine; earlier months written."""
    row = {"domain": {"race": "Martian"}, "range": {"time_in_hospital": 15}, "month": {}}[bad]
    errors = {}
    for name in ("polars", engine):
        storage = Storage(tmp_path / name)
        _two_months(bronze_rows, storage, [{"encounter_id": 1}], [{"encounter_id": 2}, {"encounter_id": 3, **row}])
        if bad == "month":  # a February partition holding a January row
            feb = storage.read_partition(BRONZE_TABLE, "2001-02")
            storage.write_partition(BRONZE_TABLE, "2001-02", feb.with_columns(
                pl.when(pl.col("encounter_id") == 3).then(dt.date(2001, 1, 31)).otherwise(pl.col("snapshot_date"))
                .alias("snapshot_date")))
        with pytest.raises(ReadmitInputError) as err:
            build_silver(storage, data_config=engine_config(name))
        errors[name] = str(err.value).replace(str(tmp_path / name), "DATAMART")
        assert storage.list_partitions(SILVER_TABLE) == ["2001-01"]
    assert errors[engine] == errors["polars"]
    assert "snapshot_month=2001-02" in errors[engine] and err.value.exit_code == 2
    assert {"domain": "race", "range": "time_in_hospital", "month": "outside 2001-02"}[bad] \
        in errors[engine]


@pytest.mark.parametrize("engine", OTHER_ENGINES)
def test_an_unknown_outcome_reaches_features_not_labels_on_every_engine(engine, bronze_rows, engine_config,
                                                                        tmp_path) -> None:
    """A blank readmitted (not known yet): the same feature and label stores as Polars."""
    got = {}
    for name in ("polars", engine):
        storage = Storage(tmp_path / name)
        _two_months(bronze_rows, storage, [{"encounter_id": 1}],
                    [{"encounter_id": 2}, {"encounter_id": 3, "readmitted": None}])
        build_silver(storage, data_config=engine_config(name))
        build_gold(storage, data_config=engine_config(name))
        got[name] = _gold(storage)
    features, labels = got[engine]
    assert features["encounter_id"].to_list() == [1, 2, 3] and labels["encounter_id"].to_list() == [1, 2]
    assert labels["label_learned_at"].null_count() == 0
    _assert_same(features, got["polars"][0])
    _assert_same(labels, got["polars"][1])


@pytest.mark.parametrize("engine", OTHER_ENGINES)
def test_icd10_groups_on_every_engine_equal_polars(engine, bronze_rows, engine_config, tmp_path) -> None:
    """The one definition of the groups (readmit.data.codes) gives the same gold on every engine."""
    codes = ["E11.9", "I50.9", "J44.1", "K21.9", "S72.001A", "M54.5", "N39.0", "C4A.9", "R06.02", "Z99.89", "V57"]
    rows = [{"encounter_id": i + 1, "diag_1": c, "diag_2": codes[-1 - i], "diag_3": None} for i, c in enumerate(codes)]
    got = {}
    for name in ("polars", engine):
        storage = Storage(tmp_path / name)
        _two_months(bronze_rows, storage, rows[:5], rows[5:])
        build_silver(storage, data_config=engine_config(name))
        build_gold(storage, data_config=engine_config(name))
        got[name] = _gold(storage)[0]
    assert got["polars"]["diag_1_group"].to_list() == [
        "Diabetes", "Circulatory", "Respiratory", "Digestive", "Injury", "Musculoskeletal", "Genitourinary",
        "Neoplasms", "Respiratory", "Other", "Other"]
    _assert_same(got[engine], got["polars"])


def test_engines_refuse_bronze_of_another_type(bronze_rows, engine_config, tmp_path) -> None:
    storage = Storage(tmp_path)
    bronze = bronze_rows([{"encounter_id": 1}])
    storage.write_partition(BRONZE_TABLE, "2001-01", bronze.with_columns(pl.col("num_procedures").cast(pl.Int32)))
    with pytest.raises(ReadmitInputError, match=r"snapshot_month=2001-01/data.parquet: column num_procedures has "
                       "type Int32, expected Int64"):
        build_silver(storage, data_config=engine_config("duckdb"))
    assert build_silver(storage).rows_out == 1  # Polars casts what casts


@pytest.mark.parametrize("engine", EVERY_ENGINE)
def test_history_rule_on_every_engine(engine, bronze_rows, engine_config, tmp_path) -> None:
    """Dates that contradict the encounter order: the same counts on every engine."""
    jan = [dt.date(2001, 1, d) for d in (3, 3, 10, 1, 17, 31)]
    silver, _ = clean(bronze_rows([
        {"encounter_id": 20, "patient_nbr": 1, "time_in_hospital": 2, "admission_type_id": 1},
        {"encounter_id": 10, "patient_nbr": 1, "time_in_hospital": 5, "admission_type_id": 3},
        {"encounter_id": 30, "patient_nbr": 1, "time_in_hospital": 1, "admission_type_id": 1},
        {"encounter_id": 99, "patient_nbr": 2, "time_in_hospital": None},
        {"encounter_id": 5, "patient_nbr": 1, "time_in_hospital": 6, "admission_type_id": 1},
        {"encounter_id": 40, "patient_nbr": 1, "time_in_hospital": 3},
    ], jan))
    path = tmp_path / "rows.parquet"
    silver.write_parquet(path)
    if engine == "polars":
        import narwhals as nw

        frame = nw.from_native(pl.scan_parquet(path).select(list(HISTORY_STATE_SCHEMA)))
        got = count_history(frame, frame).collect().to_native()
    else:
        with open_engine(engine, engine_config(engine)) as eng:
            frame = eng.read_parquet([str(path)], HISTORY_STATE_SCHEMA)
            got = pl.from_arrow(count_history(frame, frame).collect("pyarrow").to_native())
    rows = {r["encounter_id"]: r for r in got.to_dicts()}
    order = (10, 20, 30, 5, 40)
    assert [rows[e]["prior_encounters"] for e in order] == [0, 1, 2, 0, 4]
    assert [rows[e]["prior_inpatient_days"] for e in order] == [0, 5, 7, 0, 14]
    assert [rows[e]["prior_emergency_encounters"] for e in order] == [0, 0, 1, 0, 3]
    assert [rows[e]["days_since_prior_encounter"] for e in order] == [None, 0, 7, None, 14]
    assert set(HISTORY_FEATURES) <= set(got.columns)


def test_a_missing_engine_names_the_install_command(monkeypatch, engine_config) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)  # as if not installed
    with pytest.raises(ReadmitError, match=r"pip install 'readmit\[duckdb\]'"):
        with open_engine("duckdb", engine_config("polars").model_copy(update={"engine": "duckdb"})):
            pass


def test_engines_are_not_imported_with_the_data_layer() -> None:
    import subprocess

    code = ("import sys, readmit.data.medallion, readmit.data.gold, readmit.data.engines; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('duckdb', 'pyspark')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
