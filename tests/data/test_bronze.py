"""Bronze: monthly partitions of the raw rows, month ranges, reruns, quarantine, batching."""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from hashlib import sha256
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readmit.data.bronze import STAGING_AREA, build_bronze
from readmit.data.layers import BRONZE_TABLE, REJECTED_AREA
from readmit.data.raw import read_raw
from readmit.data.schema import RAW_SCHEMA
from readmit.data.synth import write_synthetic
from readmit.errors import ReadmitInputError
from readmit.storage import Storage

# A small input spread over six months keeps these tests fast.
H1_2001 = {"start_date": dt.date(2001, 1, 1), "end_date": dt.date(2001, 6, 30)}
H1_MONTHS = [f"2001-0{m}" for m in range(1, 7)]
LINEAGE = ["_source_sha256", "_ingested_at"]


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("bronze") / "d.csv", rows=600, seed=3)


def _with_bad_rows(clean: Path, name: str, bad_rows: dict[str, int]) -> Path:
    """``clean`` with five bad rows: bad int, missing id, bad label, two duplicates of row 2's id
    (``bad_rows``: which data row gets which fault)."""
    lines = clean.read_text().splitlines()
    header = lines[0].split(",")

    def put(row: int, column: str, value: str) -> None:
        fields = lines[row].split(",")
        fields[header.index(column)] = value
        lines[row] = ",".join(fields)

    put(bad_rows["int"], "num_medications", "lots")
    put(bad_rows["id"], "encounter_id", "?")
    put(bad_rows["label"], "readmitted", "soon")
    for row in bad_rows["duplicates"]:
        put(row, "encounter_id", lines[2].split(",")[0])
    path = clean.with_name(name)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def dirty_csv(small_csv: Path) -> Path:
    """The small input with five bad rows: bad int, missing id, bad label, two duplicates."""
    return _with_bad_rows(small_csv, "dirty.csv", {"int": 5, "id": 77, "label": 300, "duplicates": (301, 599)})


# The batch-size property reads its input once per batch: 120 rows keep batch_rows=1 (120
# batches) affordable while every batch size from 1 to past the file still has a meaning.
DIRTY_ROWS = 120


@pytest.fixture(scope="module")
def dirty_120_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 rows over six months, the same five faults spread through the file (the last row one)."""
    clean = write_synthetic(tmp_path_factory.mktemp("bronze120") / "d.csv", rows=DIRTY_ROWS, seed=3)
    return _with_bad_rows(clean, "dirty.csv", {"int": 5, "id": 17, "label": 60, "duplicates": (61, 120)})


def stored_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.slow  # the whole real file
def test_full_uci_file_makes_120_monthly_partitions(uci_zip: Path, tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    seen: list[str] = []
    result = build_bronze(storage, str(uci_zip), on_partition=seen.append)
    assert result.layer == "bronze"
    assert len(result.partitions) == 120 and result.partitions == seen
    assert result.partitions[0] == "1999-01" and result.partitions[-1] == "2008-12"
    assert result.rows_in == result.rows_out == 101_766 and result.rows_rejected == 0
    assert storage.list_partitions(BRONZE_TABLE) == result.partitions
    bronze = storage.read_table(BRONZE_TABLE)
    assert bronze.columns == [*RAW_SCHEMA, "snapshot_date", *LINEAGE]
    assert bronze.schema["_ingested_at"] == pl.Datetime("us", "UTC")
    assert bronze["_ingested_at"].n_unique() == 1
    assert bronze["_source_sha256"].unique().to_list() == [read_raw(str(uci_zip)).source_sha256]
    month = bronze["snapshot_date"].dt.strftime("%Y-%m")
    first = storage.read_partition(BRONZE_TABLE, "2003-07")
    assert first["snapshot_date"].dt.strftime("%Y-%m").unique().to_list() == ["2003-07"]
    assert (month == "2003-07").sum() == first.height
    assert not (tmp_path / STAGING_AREA).exists()
    assert any("derived (encounter_order)" in note for note in result.notes)


def test_month_range_writes_only_those_months(small_csv: Path, tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    result = build_bronze(storage, str(small_csv), start_month="2001-02", end_month="2001-03",
                          **H1_2001)
    assert storage.list_partitions(BRONZE_TABLE) == ["2001-02", "2001-03"] == result.partitions
    written = storage.read_table(BRONZE_TABLE)
    assert result.rows_out == written.height
    outside = result.rows_in - result.rows_out
    assert outside > 0 and any(f"{outside} row(s) fell outside months 2001-02..2001-03" in n
                               for n in result.notes)
    open_end = build_bronze(Storage(tmp_path / "b"), str(small_csv), start_month="2001-05",
                            **H1_2001)
    assert open_end.partitions == ["2001-05", "2001-06"]


def test_rerunning_a_month_replaces_only_that_month(small_csv: Path, tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    build_bronze(storage, str(small_csv), **H1_2001)
    before = stored_files(tmp_path)
    result = build_bronze(storage, str(small_csv), start_month="2001-04", end_month="2001-04",
                          **H1_2001)
    after = stored_files(tmp_path)
    changed = sorted(k for k in after if before.get(k) != after[k])
    assert changed == ["bronze/_extracts.json", f"{BRONZE_TABLE}/snapshot_month=2001-04/data.parquet"]
    assert set(after) == set(before)
    assert result.partitions == ["2001-04"]
    april = storage.read_partition(BRONZE_TABLE, "2001-04")
    old = pl.read_parquet(io.BytesIO(before[changed[1]]))
    assert april.drop("_ingested_at").equals(old.drop("_ingested_at"))
    assert april["_ingested_at"][0] > old["_ingested_at"][0]


def test_bad_rows_without_quarantine_write_nothing(dirty_csv: Path, tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    with pytest.raises(ReadmitInputError, match=r"(?s)5 bad rows; the first is data row 5 .*--quarantine"):
        build_bronze(storage, str(dirty_csv), batch_rows=50, **H1_2001)
    assert stored_files(tmp_path) == {}


def test_quarantine_writes_rejected_rows_apart(dirty_csv: Path, tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    result = build_bronze(storage, str(dirty_csv), quarantine=True, **H1_2001)
    assert result.rows_in == 600 and result.rows_rejected == 5 and result.rows_out == 595
    files = storage.listdir(f"{REJECTED_AREA}/bronze")
    assert len(files) == 1 and files[0].endswith(f"-{sha256(dirty_csv.read_bytes()).hexdigest()[:8]}.parquet")
    rejected = pl.read_parquet(tmp_path / REJECTED_AREA / "bronze" / files[0])
    assert rejected["_row"].to_list() == [5, 77, 300, 301, 599]
    assert rejected["num_medications"][0] == "lots"
    assert any("5 rejected row(s)" in n and files[0] in n for n in result.notes)
    assert storage.read_table(BRONZE_TABLE)["encounter_id"].is_unique().all()


def test_impossible_values_go_to_the_rejected_area_not_to_silver(small_csv: Path, tmp_path: Path) -> None:
    lines = small_csv.read_text().splitlines()
    header = lines[0].split(",")
    for row, column, value in ((10, "time_in_hospital", "-3"), (20, "number_inpatient", "-1"),
                               (30, "age", "[100-110)")):
        fields = lines[row].split(",")
        fields[header.index(column)] = value
        lines[row] = ",".join(fields)
    path = tmp_path / "odd.csv"
    path.write_text("\n".join(lines) + "\n")
    storage = Storage(tmp_path / "dm")
    with pytest.raises(ReadmitInputError, match=r"(?s)3 bad rows; the first is data row 10 \(line 11\): "
                       r"time_in_hospital: -3 is outside the allowed range 1..14.*--quarantine"):
        build_bronze(storage, str(path), **H1_2001)
    result = build_bronze(storage, str(path), quarantine=True, **H1_2001)
    assert result.rows_rejected == 3 and result.rows_out == 597
    (name,) = storage.listdir(f"{REJECTED_AREA}/bronze")
    rejected = pl.read_parquet(tmp_path / "dm" / REJECTED_AREA / "bronze" / name)
    assert rejected["_reason"].to_list() == [
        "time_in_hospital: -3 is outside the allowed range 1..14",
        "number_inpatient: -1 is outside the allowed range >= 0",
        "age: '[100-110)' is not one of [0-10), [10-20), [20-30), [30-40), [40-50), [50-60), [60-70), "
        "[70-80), [80-90), [90-100)",
    ]
    bronze = storage.read_table(BRONZE_TABLE)
    assert bronze["time_in_hospital"].min() >= 1 and bronze["number_inpatient"].min() >= 0


def test_bronze_on_s3(small_csv: Path, s3_uri: str) -> None:
    storage = Storage(s3_uri)
    result = build_bronze(storage, str(small_csv), batch_rows=200, **H1_2001)
    assert storage.list_partitions(BRONZE_TABLE) == H1_MONTHS == result.partitions
    assert storage.read_table(BRONZE_TABLE).height == 600
    assert storage.listdir(STAGING_AREA) == []


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch_rows=st.integers(min_value=1, max_value=DIRTY_ROWS + 20))
def test_partitions_hold_every_input_row_once_for_any_batch_size(
    dirty_120_csv: Path, batch_rows: int
) -> None:
    expected = read_raw(str(dirty_120_csv), quarantine=True,
                        start=H1_2001["start_date"], end=H1_2001["end_date"])
    with tempfile.TemporaryDirectory() as root:
        storage = Storage(root)
        staged: list[bool] = []
        result = build_bronze(
            storage, str(dirty_120_csv), quarantine=True, batch_rows=batch_rows,
            on_partition=lambda _: staged.append((Path(root) / STAGING_AREA).exists()), **H1_2001,
        )
        bronze = storage.read_table(BRONZE_TABLE)
        rejected = pl.read_parquet(next((Path(root) / REJECTED_AREA / "bronze").iterdir()))
        assert not (Path(root) / STAGING_AREA).exists()
    # Once 2 * batch_rows rows are buffered the run spills to staging; below that, it stays in memory.
    assert all(staged) == (2 * batch_rows <= DIRTY_ROWS) and len(staged) == 6
    assert result.partitions == H1_MONTHS
    assert result.rows_out + result.rows_rejected == result.rows_in == DIRTY_ROWS
    got = bronze.drop(LINEAGE).sort("encounter_id")
    assert got.equals(expected.frame.sort("encounter_id"))
    assert rejected.drop(LINEAGE).equals(expected.rejected)
