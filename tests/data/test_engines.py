"""The same gold on every engine: DuckDB and Spark (local mode) against Polars, on the full UCI data."""

from __future__ import annotations

import datetime as dt
import shutil
import sys

import polars as pl
import pytest

from readmit.data.engines import ENGINES, open_engine
from readmit.data.features import HISTORY_FEATURES, HISTORY_STATE_SCHEMA, count_history
from readmit.data.gold import build_gold
from readmit.data.layers import FEATURE_STORE, LABEL_STORE, SILVER_TABLE
from readmit.data.schema import KEY_COLUMNS
from readmit.data.silver import build_silver, clean
from readmit.errors import ReadmitError
from readmit.storage import Storage

OTHER_ENGINES = [e for e in ENGINES if e != "polars"]


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


def _copy_silver(polars_storage: Storage, target) -> Storage:
    shutil.copytree(polars_storage.path(SILVER_TABLE), target / SILVER_TABLE)
    return Storage(target)


@pytest.mark.slow
@pytest.mark.parametrize("engine", OTHER_ENGINES)
def test_gold_on_every_engine_equals_polars_on_the_full_data(engine, uci_silver, engine_config, tmp_path) -> None:
    reference, months = uci_silver
    storage = _copy_silver(reference, tmp_path)
    result = build_gold(storage, data_config=engine_config(engine))
    assert result.partitions == months and result.rows_out == 101_766
    got, want = _gold(storage), _gold(reference)
    _assert_same(got[0], want[0])
    _assert_same(got[1], want[1])
    assert got[0]["prior_encounters"].max() > 0 and got[0]["days_since_prior_encounter"].drop_nulls().len() > 0
    # Each partition holds its month's rows in (snapshot_date, encounter_id) order, as Polars writes it.
    for month in (months[0], months[57]):
        assert storage.read_partition(FEATURE_STORE, month).equals(reference.read_partition(FEATURE_STORE, month))
    assert not storage.exists("_scratch")  # the engine's intermediate files are gone


@pytest.mark.slow
@pytest.mark.parametrize("engine", OTHER_ENGINES)
def test_month_by_month_equals_all_at_once_on_every_engine(engine, uci_silver, engine_config, tmp_path) -> None:
    reference, months = uci_silver
    storage = _copy_silver(reference, tmp_path)
    config = engine_config(engine)
    chosen = months[30:34]
    for month in chosen:
        build_gold(storage, start_month=month, end_month=month, data_config=config)
    monthly = _gold(storage, chosen)
    build_gold(storage, start_month=chosen[0], end_month=chosen[-1], data_config=config)
    together = _gold(storage, chosen)
    want = _gold(reference, chosen)
    for got in (monthly, together):
        _assert_same(got[0], want[0])
        _assert_same(got[1], want[1])
    assert want[0]["prior_encounters"].max() > 0


@pytest.mark.parametrize("engine", ENGINES)
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
