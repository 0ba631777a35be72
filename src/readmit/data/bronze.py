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
Bronze holds one row per encounter across extracts: a month already in bronze is merged, the
extract's rows replacing the rows of the same encounters (:mod:`readmit.data.extracts`, which also
keeps the ledger of extracts). Rejected rows (with ``quarantine``) go to ``rejected/bronze/<timestamp>-<sha8>.parquet``.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import polars as pl

from readmit.data.extract import count_invalid_codes
from readmit.data.extracts import (
    SOURCE,
    STAYS_TABLE,
    OutcomeMerge,
    bronze_matches,
    keep_known_outcomes,
    known_outcomes,
    latest_as_of,
    ledger_entry,
    merged_partition,
    overlap_notes,
    read_ledger,
    record_extract,
    rederive_outcomes,
    with_outcomes,
)
from readmit.data.layers import BRONZE_TABLE, REJECTED_AREA, LayerResult
from readmit.data.raw import DEFAULT_BATCH_ROWS, DEFAULT_END, DEFAULT_START, RawReader, open_raw
from readmit.data.schema import SNAPSHOT_COLUMN
from readmit.errors import ReadmitInputError
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


@dataclass
class _Staged:
    """One extract read and checked, its rows staged by month, nothing written to bronze yet."""

    reader: RawReader
    stager: _Stager
    ingested_at: datetime
    stamp: str
    first: str | None
    last: str | None
    months_in_file: dict[str, int] = field(default_factory=dict)  # every month of the file: rows
    ids: pl.Series = field(default_factory=lambda: pl.Series("encounter_id", [], dtype=pl.Int64))
    outside: int = 0
    invalid_codes: dict[str, int] = field(default_factory=dict)

    @property
    def lineage(self) -> list[pl.Expr]:
        return [pl.lit(self.reader.source_sha256).alias("_source_sha256"),
                pl.lit(self.ingested_at, dtype=pl.Datetime("us", "UTC")).alias("_ingested_at")]

    @property
    def months(self) -> list[str]:
        """The months this run writes rows of (the file's months in range)."""
        return [k for k in self.stager.keys() if k != _REJECTED_KEY]


def build_bronze(storage: Storage, raw_path: str, **options) -> LayerResult:
    """Read ``raw_path`` and merge its rows into bronze for the months in range (one extract; see
    :func:`build_extracts`, which takes the same keyword options)."""
    return build_extracts(storage, [raw_path], **options)


def build_extracts(
    storage: Storage,
    raw_paths: list[str],
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
    no_replace: bool = False,
) -> LayerResult:
    """Read every extract (oldest first) and merge its rows into bronze (:mod:`readmit.data.extracts`).

    Every file is read and checked, and with ``no_replace`` every conflict looked for, before
    anything is written: a bad file writes nothing. Then each extract in turn replaces the rows of
    the encounters it brings and adds the rest, a month partition at a time (atomically), and
    is recorded in the ledger. ``start_month`` / ``end_month`` ("YYYY-MM", inclusive, None = open)
    choose the months read from each file; ``derivation``, ``start_date`` and ``end_date`` say how
    ``snapshot_date`` is made when the input has none. The result's partitions are every month
    that changed (those of the files, and those an encounter moved out of): the months silver and
    gold rebuild. ``on_partition`` is called with each month once it is written.
    """
    first, last = check_month_range(start_month, end_month)
    staged: list[_Staged] = []
    try:
        for raw_path in raw_paths:
            reader = open_raw(
                raw_path, derivation=derivation, start=start_date, end=end_date,
                quarantine=quarantine, batch_rows=batch_rows, diagnosis_codes=diagnosis_codes,
                require_labels=require_labels,
            )
            staged.append(_stage(storage, reader, first, last, batch_rows))
        if no_replace:
            _refuse_conflicts(storage, staged)
        results = [_commit(storage, one, on_partition) for one in staged]
    finally:
        for one in staged:
            one.stager.cleanup()
    return _combined(results, [one.reader.source for one in staged])


def _stage(storage: Storage, reader: RawReader, first: str | None, last: str | None, batch_rows: int) -> _Staged:
    """Read and check the whole extract, staging its rows by month (nothing written to bronze)."""
    ingested_at = datetime.now(UTC)
    stamp = f"{ingested_at:%Y%m%dT%H%M%S%f}Z"
    stager = _Stager(storage, f"{STAGING_AREA}/{stamp}-{uuid.uuid4().hex[:8]}", spill_rows=2 * batch_rows)
    one = _Staged(reader, stager, ingested_at, stamp, first, last)
    one.outside = _stage_by_month(one)
    return one


def _refuse_conflicts(storage: Storage, staged: list[_Staged]) -> None:
    """With --no-replace: refuse (before any write) an extract bringing an encounter that bronze or
    an earlier extract of the run already has from another file."""
    for k, one in enumerate(staged):
        sha = one.reader.source_sha256
        clash = bronze_matches(storage, one.ids).filter(pl.col(SOURCE).is_null() | (pl.col(SOURCE) != sha))
        months = set(clash["month"].to_list())
        ids = [clash["encounter_id"]]
        for earlier in staged[:k]:
            if earlier.reader.source_sha256 != sha:
                shared = one.ids.filter(one.ids.is_in(earlier.ids.implode()))
                ids.append(shared)
                months |= set(earlier.months) & set(one.months) if shared.len() else set()
        found = pl.concat(ids).unique()
        if found.len():
            rows = one.reader.rows_of(found)
            shown = ", ".join(str(r) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise ReadmitInputError(
                f"{len(rows)} encounter(s) of this extract are already in the datamart from another extract "
                f"(months {', '.join(sorted(months)[:6])}{', ...' if len(months) > 6 else ''}); data rows {shown}",
                source=one.reader.source,
                fix="drop --no-replace to let this newer extract replace them, or remove those rows from the file; "
                "nothing was written",
            )


def _commit(storage: Storage, one: _Staged, on_partition: Callable[[str], None] | None) -> LayerResult:
    """Merge one staged extract into bronze, month by month, then record it in the ledger.

    An encounter the extract repeats with a blank ``readmitted`` keeps the outcome bronze already
    knows; one with an outcome of its own replaces it (newer wins, reported). A dated extract (or
    any extract once bronze holds dated stays) derives the outcomes again over every extract's stays
    (:func:`readmit.data.extracts.rederive_outcomes`): earlier months whose outcomes that changes
    are rewritten too, and are among the months silver and gold rebuild.
    """
    reader = one.reader
    result = LayerResult(layer="bronze", rows_in=reader.rows_in)
    matches = bronze_matches(storage, one.ids)
    ledger = read_ledger(storage)
    overlaps, overlap_text = overlap_notes(matches, reader.source_sha256, ledger)
    known = known_outcomes(matches)
    floor = [d for d in (reader.as_of, latest_as_of(ledger)) if d is not None]
    rederived = rederive_outcomes(storage, reader.stays, one.ids, known, max(floor) if floor else None)
    updates = rederived.updates if rederived is not None else {}
    merge = OutcomeMerge()
    present = set(storage.list_partitions(BRONZE_TABLE))
    written = one.months
    for month in sorted(set(written) | set(matches["month"].to_list()) | (set(updates) & present)):
        new = one.stager.take(month).with_columns(one.lineage) if month in written else None
        if new is not None:
            new = with_outcomes(new, rederived.derived if rederived is not None else None)
            new = keep_known_outcomes(new, known, month, merge)
        existing = storage.read_partition(BRONZE_TABLE, month) if month in present else None
        if existing is not None:
            existing = with_outcomes(existing, updates.get(month))
        part = merged_partition(existing, new, one.ids) if existing is not None else new
        storage.write_partition(BRONZE_TABLE, month, part)
        result.partitions.append(month)
        result.rows_out += new.height if new is not None else 0
        if on_partition is not None:
            on_partition(month)
    if rederived is not None:
        for month, stays in rederived.stays.items():
            storage.write_partition(STAYS_TABLE, month, stays)
    _write_rejected(storage, one.stager, one.lineage, f"{one.stamp}-{reader.source_sha256[:8]}", result)
    record_extract(storage, ledger_entry(
        sha256=reader.source_sha256, source=reader.source, ingested_at=one.ingested_at, rows=reader.rows_in,
        months_in_file=one.months_in_file, months_written=written, overlaps=overlaps, as_of=reader.as_of,
        invalid_codes=one.invalid_codes))
    result.notes += _notes(reader, one.first, one.last, one.outside, bool(written)) + overlap_text
    result.notes += merge.notes() + (rederived.notes() if rederived is not None else [])
    if one.invalid_codes:
        by_month = ", ".join(f"{m}: {n}" for m, n in sorted(one.invalid_codes.items()))
        result.notes.append(f"rows rejected for a diagnosis code of neither ICD system, by month: {by_month}")
    return result


def _combined(results: list[LayerResult], names: list[str]) -> LayerResult:
    """One bronze result for the run: every month changed, rows summed, each file's notes (named
    by file when there are several)."""
    if len(results) == 1:
        return results[0]
    out = LayerResult(layer="bronze")
    out.partitions = sorted({m for r in results for m in r.partitions})
    for r, name in zip(results, names, strict=True):
        out.rows_in += r.rows_in
        out.rows_out += r.rows_out
        out.rows_rejected += r.rows_rejected
        out.notes += [f"{name}: {n}" for n in r.notes]
    return out


def _stage_by_month(one: _Staged) -> int:
    """Read every batch (checking the whole file), stage its rows by month; return how many
    rows fell outside [first, last]. Rejected rows (quarantine) are staged apart, those with a
    diagnosis code of neither system counted by month in ``one.invalid_codes``; the months of the
    file and the encounter ids staged are kept on ``one``."""
    reader, stager, first, last = one.reader, one.stager, one.first, one.last
    month = pl.col(SNAPSHOT_COLUMN).dt.strftime("%Y-%m")
    in_range = pl.lit(True)
    if first:
        in_range &= month >= first
    if last:
        in_range &= month <= last
    outside = 0
    ids = []
    # Closed here even when staging fails mid-file: the CSV reader stops before its file closes.
    with closing(reader.batches()) as batches:
        for batch in batches:
            frame = batch.frame.with_columns(month.alias("_month"), in_range.alias("_keep"))
            for key, n in frame.group_by("_month").len().iter_rows():
                one.months_in_file[key] = one.months_in_file.get(key, 0) + n
            kept = frame.filter(pl.col("_keep")).drop("_keep")
            outside += frame.height - kept.height
            ids.append(kept["encounter_id"])
            for (key,), part in kept.partition_by("_month", as_dict=True).items():
                stager.add(str(key), part.drop("_month"))
            if batch.rejected.height:
                stager.add(_REJECTED_KEY, batch.rejected)
                count_invalid_codes(reader, batch.rejected, one.invalid_codes)
    if ids:
        one.ids = pl.concat(ids)
    return outside


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


def _notes(reader: RawReader, first: str | None, last: str | None, outside: int, wrote: bool) -> list[str]:
    """What the user should know about the run: where dates came from, rows left out, the source."""
    if reader.snapshot_source == "input":
        notes = ["snapshot_date taken from the input's snapshot_date column"]
    elif reader.snapshot_source == "discharge_date":
        notes = [f"snapshot_date = discharge_date; readmitted derived from each patient's next admission, "
                 f"as of {reader.as_of} (the file's latest date; over the stays of every extract applied, "
                 "as of the latest of their dates): blank for a discharge less than 30 days before it with no "
                 "readmission yet"]
    else:
        notes = [f"snapshot_date derived ({reader.snapshot_source}) over {reader.start}..{reader.end}: "
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
