"""Bronze: the raw encounters as read, typed and partitioned by month of ``snapshot_date``.

Each partition ``bronze/encounters/snapshot_month=YYYY-MM/data.parquet`` holds the raw columns,
``snapshot_date`` (derived unless the input has one, see :mod:`readmit.data.raw`),
``_source_sha256`` (the input file's checksum) and ``_ingested_at`` (UTC, one value per run).

The input is read in batches of ``batch_rows`` rows. Each batch's rows are split by month and
buffered; once ``2 * batch_rows`` rows are buffered they are spilled to small parquet files under
``bronze/_staging/<run-id>/`` (outside the table, so never seen as partitions). When the whole file
has been read and checked, each month's pieces are joined and its partition written atomically;
then the staging folder is removed. A file small enough for one batch never touches staging.
A failure before that point (a bad row without quarantine, say) writes no partition.

Only months within ``[start_month, end_month]`` are written; others are left as they are.
Rejected rows (with ``quarantine``) go to ``rejected/bronze/<timestamp>-<sha8>.parquet``.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, date, datetime

import polars as pl

from readmit.data.extract import count_invalid_codes
from readmit.data.layers import BRONZE_TABLE, REJECTED_AREA, LayerResult
from readmit.data.raw import DEFAULT_BATCH_ROWS, DEFAULT_END, DEFAULT_START, RawReader, open_raw
from readmit.data.schema import SNAPSHOT_COLUMN
from readmit.months import check_month_range
from readmit.storage import Storage

STAGING_AREA = "bronze/_staging"
_REJECTED_KEY = "_rejected"


class _Stager:
    """Per-key buffers of frames that spill to parquet files under ``prefix`` when large."""

    def __init__(self, storage: Storage, prefix: str, spill_rows: int):
        self.storage = storage
        self.prefix = prefix
        self.spill_rows = spill_rows
        self.memory: dict[str, list[pl.DataFrame]] = {}
        self.files: dict[str, list[str]] = {}
        self.buffered = 0
        self.spilled = False

    def add(self, key: str, frame: pl.DataFrame) -> None:
        self.memory.setdefault(key, []).append(frame)
        self.buffered += frame.height
        if self.buffered >= self.spill_rows:
            self.spill()

    def spill(self) -> None:
        for key, frames in self.memory.items():
            parts = self.files.setdefault(key, [])
            rel = f"{self.prefix}/{key}/part-{len(parts):06d}.parquet"
            self.storage.write_parquet(rel, pl.concat(frames), compression="lz4", statistics=False)
            parts.append(rel)
            self.spilled = True
        self.memory = {}
        self.buffered = 0

    def keys(self) -> list[str]:
        return sorted(set(self.memory) | set(self.files))

    def take(self, key: str) -> pl.DataFrame:
        """All rows buffered under ``key``, in the order they were added; frees the buffer."""
        frames = [pl.read_parquet(io.BytesIO(self.storage.read_bytes(rel)))
                  for rel in self.files.pop(key, [])]
        frames += self.memory.pop(key, [])
        return pl.concat(frames)

    def cleanup(self) -> None:
        if self.spilled:
            self.storage.delete(self.prefix, recursive=True)
            if self.storage.local and not self.storage.listdir(STAGING_AREA):
                self.storage.delete(STAGING_AREA, recursive=True)


def build_bronze(
    storage: Storage,
    raw_path: str,
    *,
    start_month: str | None = None,
    end_month: str | None = None,
    derivation: str = "encounter_order",
    start_date: date = DEFAULT_START,
    end_date: date = DEFAULT_END,
    quarantine: bool = False,
    on_partition: Callable[[str], None] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    diagnosis_codes: str = "auto",
    require_labels: bool = False,
) -> LayerResult:
    """Read ``raw_path`` and write its bronze partitions for the months in range.

    ``start_month`` / ``end_month`` ("YYYY-MM", inclusive, None = open) choose the months
    written; ``derivation``, ``start_date`` and ``end_date`` say how ``snapshot_date`` is made
    when the input has none. ``on_partition`` is called with each month once it is written.
    """
    first, last = check_month_range(start_month, end_month)
    reader = open_raw(
        raw_path, derivation=derivation, start=start_date, end=end_date,
        quarantine=quarantine, batch_rows=batch_rows, diagnosis_codes=diagnosis_codes,
        require_labels=require_labels,
    )
    ingested_at = datetime.now(UTC)
    stamp = f"{ingested_at:%Y%m%dT%H%M%S%f}Z"
    stager = _Stager(storage, f"{STAGING_AREA}/{stamp}-{uuid.uuid4().hex[:8]}", spill_rows=2 * batch_rows)
    result = LayerResult(layer="bronze", rows_in=reader.rows_in)
    lineage = [
        pl.lit(reader.source_sha256).alias("_source_sha256"),
        pl.lit(ingested_at, dtype=pl.Datetime("us", "UTC")).alias("_ingested_at"),
    ]
    try:
        invalid_codes: dict[str, int] = {}
        outside = _stage_by_month(reader, stager, first, last, invalid_codes)
        _write_partitions(storage, stager, lineage, result, on_partition)
        _write_rejected(storage, stager, lineage, f"{stamp}-{reader.source_sha256[:8]}", result)
    finally:
        stager.cleanup()
    result.notes += _notes(reader, start_date, end_date, first, last, outside, bool(result.partitions))
    if invalid_codes:
        by_month = ", ".join(f"{m}: {n}" for m, n in sorted(invalid_codes.items()))
        result.notes.append(f"rows rejected for a diagnosis code of neither ICD system, by month: {by_month}")
    return result


def _stage_by_month(reader: RawReader, stager: _Stager, first: str | None, last: str | None,
                    invalid_codes: dict[str, int]) -> int:
    """Read every batch (checking the whole file), stage its rows by month; return how many
    rows fell outside [first, last]. Rejected rows (quarantine) are staged apart, those with a
    diagnosis code of neither system counted by month in ``invalid_codes``."""
    month = pl.col(SNAPSHOT_COLUMN).dt.strftime("%Y-%m")
    in_range = pl.lit(True)
    if first:
        in_range &= month >= first
    if last:
        in_range &= month <= last
    outside = 0
    # Closed here even when staging fails mid-file: the CSV reader stops before its file closes.
    with closing(reader.batches()) as batches:
        for batch in batches:
            frame = batch.frame.with_columns(month.alias("_month"), in_range.alias("_keep"))
            kept = frame.filter(pl.col("_keep")).drop("_keep")
            outside += frame.height - kept.height
            for (key,), part in kept.partition_by("_month", as_dict=True).items():
                stager.add(str(key), part.drop("_month"))
            if batch.rejected.height:
                stager.add(_REJECTED_KEY, batch.rejected)
                count_invalid_codes(reader, batch.rejected, invalid_codes)
    return outside


def _write_partitions(storage: Storage, stager: _Stager, lineage: list[pl.Expr], result: LayerResult,
                      on_partition: Callable[[str], None] | None) -> None:
    """Write each staged month as its bronze partition, with the lineage columns."""
    for month in stager.keys():
        if month == _REJECTED_KEY:
            continue
        part = stager.take(month).with_columns(lineage)
        storage.write_partition(BRONZE_TABLE, month, part)
        result.partitions.append(month)
        result.rows_out += part.height
        if on_partition is not None:
            on_partition(month)


def _write_rejected(storage: Storage, stager: _Stager, lineage: list[pl.Expr], name: str,
                    result: LayerResult) -> None:
    """Write the staged rejected rows, if any, to ``rejected/bronze/{name}.parquet``."""
    if _REJECTED_KEY not in stager.keys():
        return
    rejected = stager.take(_REJECTED_KEY).with_columns(lineage)
    rel = f"{REJECTED_AREA}/bronze/{name}.parquet"
    storage.write_parquet(rel, rejected)
    result.rows_rejected = rejected.height
    result.notes.append(
        f"{rejected.height} rejected row(s) (bad values, see _reason) written to {storage.uri_of(rel)}"
    )


def _notes(reader: RawReader, start_date: date, end_date: date, first: str | None, last: str | None,
           outside: int, wrote: bool) -> list[str]:
    """What the user should know about the run: where dates came from, rows left out, the source."""
    if reader.snapshot_source == "input":
        notes = ["snapshot_date taken from the input's snapshot_date column"]
    else:
        notes = [f"snapshot_date derived ({reader.snapshot_source}) over {start_date}..{end_date}: "
                 "the UCI file has no dates"]
    if outside:
        notes.append(f"{outside} row(s) fell outside months {first or '...'}..{last or '...'} and "
                     "were not written")
    if not wrote:
        notes.append("no rows in the requested months: no partition written")
    notes.append(f"diagnosis codes read as {reader.code_system}")
    if reader.absent:
        notes.append(f"optional column(s) absent, read as missing: {', '.join(reader.absent)}")
    notes.append(f"source {reader.source} sha256 {reader.source_sha256}")
    return notes
