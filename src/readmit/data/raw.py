"""Read the raw UCI "Diabetes 130-US hospitals 1999-2008" encounters into typed, checked rows.

Accepted inputs (local path or ``s3://`` URI):

* the UCI zip, old layout (``dataset_diabetes/diabetic_data.csv``) or current layout
  (``diabetic_data.csv`` at the top level);
* a plain ``diabetic_data.csv``;
* the reference project's ``diabetic_data_with_snapshot.csv`` (the same columns plus an ISO
  ``snapshot_date`` column), plain or zipped.

Columns are matched by name; extra columns are ignored.

Every column is read as text first and then cast to :data:`RAW_SCHEMA`, so a bad value can be
reported with its row and column. ``?`` (or an empty field) means missing and becomes null; the
string ``None`` in ``max_glu_serum`` / ``A1Cresult`` is a category ("not measured") and is kept
(an empty field there, as pandas-written copies have, also reads as ``None``).

**The dates are derived.** The UCI file has no date at all. Unless the input has its own
``snapshot_date`` column, ``snapshot_date`` is made up so the pipeline can partition by month:

* ``encounter_order`` (default): encounters ranked by ``encounter_id`` (the only time proxy in the
  file) and spread evenly over ``[start, end]``: ``day = floor(rank * n_days / n_rows)``, so the
  whole range (120 months by default) is covered in encounter order;
* ``cyclic``: the reference project's construction, the daily dates ``start..end`` repeated in
  file order.

Bad rows (non-integer value in an integer column, missing ``encounter_id`` / ``patient_nbr``,
duplicated ``encounter_id``, ``readmitted`` outside ``<30``/``>30``/``NO``, invalid
``snapshot_date``) are refused with one message naming the first one and the count, unless
``quarantine`` is set: then they are returned apart, with their original text, row number and
reason. For a duplicated ``encounter_id`` the first occurrence is kept and later ones rejected.

The file is read in batches (pyarrow's streaming CSV reader), so memory stays bounded for large
files: a first pass reads only ``encounter_id`` (global rank and duplicates), a second pass reads
everything. :func:`open_raw` gives the batches; :func:`read_raw` collects them into one frame.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from readmit.data.codes import CODE_SYSTEM_COLUMN, DIAGNOSIS_COLUMNS, PER_ROW, SystemDecider, code_problems
from readmit.data.contract import absent_optional, prepare_chunk
from readmit.data.outcomes import (
    DATE_COLUMNS,
    DISCHARGE,
    date_problems,
    derived_readmitted,
    derives_outcomes,
    typed_stays,
)
from readmit.data.schema import (
    DOMAINS,
    INT_COLUMNS,
    INT_RANGES,
    RAW_SCHEMA,
    READMITTED_VALUES,
    REQUIRED_COLUMNS,
    SNAPSHOT_COLUMN,
    UNKNOWN_ALIASES,
    allowed_range,
)
from readmit.errors import ReadmitInputError
from readmit.storage import is_remote, open_uri, storage_errors

DERIVATIONS: tuple[str, ...] = ("encounter_order", "cyclic")
DEFAULT_START = date(1999, 1, 1)
DEFAULT_END = date(2008, 12, 31)
DEFAULT_BATCH_ROWS = 100_000

CSV_MEMBER = "diabetic_data.csv"
SNAPSHOT_MEMBER = "diabetic_data_with_snapshot.csv"
ROW_COLUMN = "_row"
REASON_COLUMN = "_reason"

_NONE_CATEGORY_COLUMNS = ("max_glu_serum", "A1Cresult")
_ID_COLUMNS = ("encounter_id", "patient_nbr")
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
_SNIFF_BYTES = 1 << 16
# A zip starts with a file header, or with the end-of-archive record when it holds no file.
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
_BLOCK_BYTES = 1 << 20  # pyarrow parses 1 MiB blocks fastest; batches are regrouped after
_EPOCH = date(1970, 1, 1)
LABELLED = "declared labelled (--require-labels / data_config.require_labels)"
_QUARANTINE_FIX = (
    "correct the value(s) in the file, or load the good rows and set the bad ones aside under "
    "rejected/: `readmit medallion --quarantine`, or data_config.quarantine: true in the config "
    "(for `readmit run` and Airflow)"
)


@dataclass(frozen=True)
class RawResult:
    """The whole raw input: typed good rows, rejected rows, and where they came from."""

    frame: pl.DataFrame
    rejected: pl.DataFrame
    source: str
    source_sha256: str
    rows_in: int
    snapshot_source: str


@dataclass(frozen=True)
class RawBatch:
    """One batch: typed good rows (RAW_SCHEMA + snapshot_date) and rejected rows (text)."""

    frame: pl.DataFrame
    rejected: pl.DataFrame


@dataclass
class RawReader:
    """A checked raw input, read batch by batch with :meth:`batches`. Made by :func:`open_raw`."""

    path: str
    source: str
    source_sha256: str
    rows_in: int
    snapshot_source: str
    header: list[str]
    start: date
    end: date
    quarantine: bool
    batch_rows: int
    code_system: str  # the diagnosis code system: icd9, icd10, or per-row (a diag_code_system column)
    require_labels: bool  # declared labelled: a blank readmitted is a bad row
    _days: pl.Series | None = field(repr=False)
    _duplicate: pl.Series = field(repr=False)
    _ids: pl.Series | None = field(default=None, repr=False)
    _derived: pl.Series | None = field(default=None, repr=False)  # readmitted from the dates (outcomes.py)
    as_of: date | None = None  # the extract's as-of date, when its outcomes come from its dates
    # Its stays (outcomes.STAYS_SCHEMA, file order) when its outcomes come from its dates.
    stays: pl.DataFrame | None = field(default=None, repr=False)

    def rows_of(self, ids: pl.Series) -> list[int]:
        """The data row numbers (1-based, first occurrence) of encounter ids ``ids``, in file order:
        how a message names rows of the file without naming the encounters."""
        assert self._ids is not None
        hit = self._ids.is_in(ids.implode()) & ~self._duplicate
        return (hit.arg_true() + 1).to_list()

    @property
    def text_columns(self) -> list[str]:
        """The columns kept from the file, in schema order (rejected rows carry these)."""
        extra = [SNAPSHOT_COLUMN] if self.snapshot_source in ("input", DISCHARGE) else []
        extra += list(DATE_COLUMNS) if self._derived is not None else []
        extra += [CODE_SYSTEM_COLUMN] if self.code_system == PER_ROW else []
        return list(RAW_SCHEMA) + extra

    def derived_days(self, rows: pl.Series) -> pl.Series:
        """Days after ``start`` the ``encounter_order`` derivation gives data rows ``rows`` (1-based)."""
        assert self._days is not None
        return self._days.gather(rows - 1)

    @property
    def absent(self) -> list[str]:
        """The optional columns the file lacks: read as missing in every row."""
        return absent_optional(self.header)

    def batches(self) -> Iterator[RawBatch]:
        """Yield checked batches of about ``batch_rows`` rows, in file order.

        Without quarantine, the first bad row stops the batches; the rest of the file is still
        scanned to count the bad rows, then ``ReadmitInputError`` is raised.
        """
        first_bad: tuple[int, str] | None = None
        bad_count = 0
        offset = 0
        n_days = (self.end - self.start).days + 1
        with _native_csv(self.path) as stream, closing(
            _csv_chunks(stream, self.header, [c for c in self.text_columns if c in self.header],
                        self.batch_rows, self.source)
        ) as chunks:
            for chunk in chunks:
                chunk = prepare_chunk(chunk, self.absent)
                n = chunk.height
                if self._derived is not None:
                    chunk = chunk.with_columns(self._derived.slice(offset, n).alias("readmitted"),
                                               pl.col(DISCHARGE).alias(SNAPSHOT_COLUMN))
                good, bad = _split(
                    chunk.with_columns(
                        pl.int_range(offset + 1, offset + n + 1, dtype=pl.Int64).alias(ROW_COLUMN)
                    ),
                    duplicate=self._duplicate.slice(offset, n),
                    days=None if self._days is None else self._days.slice(offset, n),
                    snapshot_source=self.snapshot_source,
                    code_system=self.code_system,
                    require_labels=self.require_labels,
                    start=self.start,
                    n_days=n_days,
                    want_good=self.quarantine or (first_bad is None),
                )
                offset += n
                if bad.height and not self.quarantine:
                    if first_bad is None:
                        first_bad = (bad[ROW_COLUMN][0], bad[REASON_COLUMN][0])
                    bad_count += bad.height
                if first_bad is None or self.quarantine:
                    yield RawBatch(
                        frame=good,
                        rejected=bad.select(*self.text_columns, ROW_COLUMN, REASON_COLUMN),
                    )
        if first_bad is not None:
            row, reason = first_bad
            raise ReadmitInputError(
                f"{bad_count} bad row{'s' if bad_count != 1 else ''}; the first is data row {row} "
                f"(line {row + 1}): {reason}",
                source=self.source,
                fix=_QUARANTINE_FIX,
            )


def open_raw(
    path: str,
    *,
    derivation: str = "encounter_order",
    start: date = DEFAULT_START,
    end: date = DEFAULT_END,
    quarantine: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    diagnosis_codes: str = "auto",
    require_labels: bool = False,
) -> RawReader:
    """Check the file's structure and scan its ``encounter_id`` column; return a batch reader.

    Raises ``ReadmitInputError`` for a missing file, a file that is not a CSV (or a zip without
    one), an empty file, missing required columns, or bad arguments.
    """
    path = str(path)
    if derivation not in DERIVATIONS:
        raise ReadmitInputError(
            f"unknown snapshot derivation {derivation!r}",
            fix=f"use one of: {', '.join(DERIVATIONS)}",
        )
    if start > end:
        raise ReadmitInputError(
            f"snapshot start {start} is after end {end}", fix="give a start date before the end date"
        )
    if batch_rows < 1:
        raise ReadmitInputError(f"batch_rows must be positive, got {batch_rows}")
    with _open_csv(path) as (stream, source):
        header = _read_header(stream, source)
    derive = derives_outcomes(header)
    missing = [c for c in REQUIRED_COLUMNS if c not in header and not (derive and c == "readmitted")]
    if len(missing) == len(REQUIRED_COLUMNS):
        raise ReadmitInputError(
            f"not the UCI encounters CSV: none of its {len(RAW_SCHEMA)} columns is in the "
            f"header (which starts {', '.join(header[:3])!r})",
            source=source,
            fix="give the UCI zip or its diabetic_data.csv",
        )
    if missing:
        raise ReadmitInputError(
            f"missing required column{'s' if len(missing) != 1 else ''} "
            f"({len(missing)}): {', '.join(missing)}",
            source=source,
            fix="add the column(s) to the extract, named as in docs/input_contract.md (readmitted may be left "
            "out when the file has admission_date and discharge_date) (`readmit data check FILE` lists what "
            "else is wrong)",
        )
    snapshot_source = "input" if SNAPSHOT_COLUMN in header else DISCHARGE if derive else derivation
    decider = SystemDecider(diagnosis_codes, source, per_row=CODE_SYSTEM_COLUMN in header)
    ids = _scan_ids(path, header, batch_rows, source, decider)
    code_system = decider.result()
    stays_text = _scan_text(path, header, ["encounter_id", "patient_nbr", *DATE_COLUMNS], batch_rows,
                            source) if derive else None
    derived, as_of = derived_readmitted(stays_text) if stays_text is not None else (None, None)
    if ids.len() == 0:
        raise ReadmitInputError(
            "the file has a header but no data rows",
            source=source,
            fix="use the full UCI diabetic_data.csv (101,766 rows)",
        )
    keep = ids.is_not_null() & ids.is_first_distinct()
    days = None
    if snapshot_source == "encounter_order":
        n_keep = int(keep.sum())
        n_days = (end - start).days + 1
        rank = pl.select(
            pl.when(keep).then(ids).otherwise(None).rank("ordinal").cast(pl.Int64)
        ).to_series()
        days = ((rank - 1) * n_days // max(n_keep, 1)).cast(pl.Int32)
    return RawReader(
        path=path,
        source=source,
        source_sha256=_sha256(path),
        rows_in=ids.len(),
        snapshot_source=snapshot_source,
        header=header,
        start=start,
        end=end,
        quarantine=quarantine,
        batch_rows=batch_rows,
        code_system=code_system,
        require_labels=require_labels,
        _days=days,
        _duplicate=ids.is_not_null() & ~keep,
        _ids=ids,
        _derived=derived,
        stays=typed_stays(stays_text) if stays_text is not None else None,
        as_of=as_of,
    )


def read_raw(
    path: str,
    *,
    derivation: str = "encounter_order",
    start: date = DEFAULT_START,
    end: date = DEFAULT_END,
    quarantine: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    diagnosis_codes: str = "auto",
    require_labels: bool = False,
) -> RawResult:
    """Read the whole raw input into one frame (see the module docstring for the rules)."""
    reader = open_raw(
        path, derivation=derivation, start=start, end=end, quarantine=quarantine,
        batch_rows=batch_rows, diagnosis_codes=diagnosis_codes, require_labels=require_labels,
    )
    frames: list[pl.DataFrame] = []
    rejected: list[pl.DataFrame] = []
    with closing(reader.batches()) as batches:
        for batch in batches:
            frames.append(batch.frame)
            rejected.append(batch.rejected)
    return RawResult(
        frame=pl.concat(frames),
        rejected=pl.concat(rejected),
        source=reader.source,
        source_sha256=reader.source_sha256,
        rows_in=reader.rows_in,
        snapshot_source=reader.snapshot_source,
    )


# -- opening the input ---------------------------------------------------------------------


@contextmanager
def _open_csv(path: str) -> Iterator[tuple[BinaryIO, str]]:
    """Yield a binary stream of the CSV text (unzipping if needed) and a label for messages."""
    try:
        with storage_errors(path, "read"):
            fh = open_uri(path, "rb")
    except FileNotFoundError as exc:
        raise ReadmitInputError(
            "file not found",
            source=path,
            fix="check the path, or run `readmit data fetch` to download the UCI data",
        ) from exc
    except IsADirectoryError as exc:
        raise ReadmitInputError(
            "is a folder, not a file", source=path, fix="give the path of the UCI zip or CSV file"
        ) from exc
    with fh:
        if fh.read(4) not in _ZIP_SIGNATURES:
            fh.seek(0)
            yield fh, path
            return
        fh.seek(0)
        try:
            archive = zipfile.ZipFile(fh)
        except zipfile.BadZipFile as exc:
            raise ReadmitInputError(
                f"not a readable zip file ({exc})",
                source=path,
                fix="download the UCI zip again (`readmit data fetch --force`)",
            ) from exc
        with archive:
            member = _pick_member(archive.namelist(), path)
            try:
                with archive.open(member) as stream:
                    yield stream, f"{path} [{member}]"
            except (zipfile.BadZipFile, OSError) as exc:
                raise ReadmitInputError(
                    f"cannot unzip {member} ({exc})",
                    source=path,
                    fix="download the UCI zip again (`readmit data fetch --force`)",
                ) from exc


@contextmanager
def _native_csv(path: str) -> Iterator[pa.NativeFile]:
    """The CSV text of ``path`` as an Arrow file, for pyarrow's streaming CSV reader.

    The reader reads ahead on Arrow's own threads. Given a Python file object (a zip member, an
    s3fs file), those threads call back into Python; one still reading when the interpreter
    exits (right after a parse error, say) aborts the process with ``terminate called without an
    active exception`` (exit 134). So pyarrow only ever gets a native file: a plain local CSV
    is opened directly; a zip member or a remote file is first copied to a temporary file.
    """
    if not is_remote(path) and _is_plain_file(path):
        with pa.OSFile(path, "rb") as native:
            yield native
        return
    with tempfile.TemporaryDirectory(prefix="readmit-raw-") as folder:
        local = os.path.join(folder, "raw.csv")
        with _open_csv(path) as (stream, _), open(local, "wb") as out, storage_errors(path, "read"):
            shutil.copyfileobj(stream, out, _BLOCK_BYTES)
        with pa.OSFile(local, "rb") as native:
            yield native


def _is_plain_file(path: str) -> bool:
    """A readable local file that is not a zip (zip members are read through Python)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) not in _ZIP_SIGNATURES
    except OSError:
        return False


def _pick_member(names: list[str], path: str) -> str:
    """The CSV member of a UCI zip: diabetic_data.csv (either layout) or the snapshot form.

    Two members of the same name (in different folders) are refused: which one is the data is
    the user's call, not a guess.
    """
    usable = [n for n in names if not n.startswith("__MACOSX/") and not n.endswith("/")]
    if not usable:
        raise ReadmitInputError(
            "the zip is empty (it holds no file)",
            source=path,
            fix="download the UCI zip again (`readmit data fetch --force`), or give the CSV itself",
        )
    for wanted in (CSV_MEMBER, SNAPSHOT_MEMBER):
        found = sorted(n for n in usable if n.rsplit("/", 1)[-1] == wanted)
        if len(found) > 1:
            raise ReadmitInputError(
                f"the zip holds {len(found)} files named {wanted} ({', '.join(found)}): "
                "cannot tell which one is the data",
                source=path,
                fix=f"keep one {wanted} in the zip, or give that CSV file itself",
            )
        if found:
            return found[0]
    raise ReadmitInputError(
        f"the zip has no {CSV_MEMBER} (members: {', '.join(usable)})",
        source=path,
        fix="use the UCI zip (dataset_diabetes/diabetic_data.csv or diabetic_data.csv inside)",
    )


def _read_header(stream: BinaryIO, source: str) -> list[str]:
    """Sniff the start of the stream (CSV text, not binary) and return the header's names."""
    head = stream.read(_SNIFF_BYTES)
    if not head.strip():
        raise ReadmitInputError(
            "the file is empty (no header row)",
            source=source,
            fix="use the UCI diabetic_data.csv (a header row and 101,766 data rows)",
        )
    not_text = b"\x00" in head
    if not not_text:
        try:
            # A multi-byte character may be cut at the end of the sniffed block.
            head[: len(head) - 3 if len(head) == _SNIFF_BYTES else len(head)].decode("utf-8")
        except UnicodeDecodeError:
            not_text = True
    line, newline, _ = head.partition(b"\n")
    if not not_text and not newline and b"\r" in line:
        raise ReadmitInputError(
            "lines end with a carriage return only (CR, the old Mac OS convention); the CSV reader "
            "needs LF or CRLF line ends",
            source=source,
            fix="convert the line ends, e.g. `tr '\\r' '\\n' < in.csv > out.csv`, or use the UCI file "
            "as downloaded",
        )
    if not_text or (not newline and len(head) == _SNIFF_BYTES):
        raise ReadmitInputError(
            "not a CSV text file (binary or non-UTF-8 content)",
            source=source,
            fix="give the UCI zip or its diabetic_data.csv (UTF-8 text, comma-separated)",
        )
    names = next(csv.reader([line.decode("utf-8").lstrip("\ufeff").rstrip("\r")]), [])
    names = [n.strip() for n in names]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ReadmitInputError(
            f"the header repeats column(s): {', '.join(dupes)}",
            source=source,
            fix="give each column one name, as in the UCI diabetic_data.csv",
        )
    return names


def _csv_chunks(
    stream: pa.NativeFile, header: list[str], columns: list[str], batch_rows: int, source: str
) -> Iterator[pl.DataFrame]:
    """Stream the given columns of the CSV as all-text frames of exactly ``batch_rows`` rows
    (the last one shorter), with no null conversion at all.

    The pyarrow reader reads ahead on ``stream`` (a native file, see :func:`_native_csv`): it is
    closed here, in ``finally``, before the caller closes the stream; callers close this
    generator deterministically (``contextlib.closing``) so that holds when they stop early too.
    """
    reader = None
    try:
        reader = pacsv.open_csv(
            stream,
            # The header as checked by _read_header (names stripped, BOM removed), so a header
            # such as "encounter_id, patient_nbr" reads as it was checked.
            read_options=pacsv.ReadOptions(
                block_size=_BLOCK_BYTES, column_names=header, skip_rows=1
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=columns,
                column_types={name: pa.string() for name in header},
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        pending: list[pa.RecordBatch] = []
        size = 0
        for batch in reader:
            pending.append(batch)
            size += batch.num_rows
            while size >= batch_rows:
                table = pa.Table.from_batches(pending)
                yield pl.from_arrow(table.slice(0, batch_rows))  # type: ignore[misc]
                rest = table.slice(batch_rows)
                pending, size = rest.to_batches(), rest.num_rows
        if size:
            yield pl.from_arrow(pa.Table.from_batches(pending))  # type: ignore[misc]
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ReadmitInputError(
            f"cannot parse the CSV ({exc})",
            source=source,
            fix="every row needs the header's number of comma-separated fields, in UTF-8",
        ) from exc
    finally:
        if reader is not None:
            reader.close()


def _scan_ids(path: str, header: list[str], batch_rows: int, source: str,
              decider: SystemDecider | None = None) -> pl.Series:
    """First pass: every row's ``encounter_id`` as Int64 (null when missing or not a number);
    the diagnosis codes go to ``decider`` in the same pass when it decides from them."""
    reads = decider is not None and decider.reads
    columns = ["encounter_id", *DIAGNOSIS_COLUMNS] if reads else ["encounter_id"]
    parts: list[pl.Series] = []
    with _native_csv(path) as stream, closing(
        _csv_chunks(stream, header, columns, batch_rows, source)
    ) as chunks:
        for chunk in chunks:
            parts.append(chunk["encounter_id"].cast(pl.Int64, strict=False))
            if reads:
                decider.add(chunk)
    if not parts:
        return pl.Series("encounter_id", [], dtype=pl.Int64)
    return pl.concat(parts).rechunk()


def _scan_text(path: str, header: list[str], columns: list[str], batch_rows: int, source: str) -> pl.DataFrame:
    """A pass over the file reading ``columns`` only, as text, in file order."""
    with _native_csv(path) as stream, closing(_csv_chunks(stream, header, columns, batch_rows, source)) as chunks:
        parts = list(chunks)
    return pl.concat(parts) if parts else pl.DataFrame(schema=dict.fromkeys(columns, pl.String))


def _sha256(path: str) -> str:
    with storage_errors(path, "read"), open_uri(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# -- checking and casting --------------------------------------------------------------------


def _problem(condition: pl.Expr, *parts: pl.Expr | str) -> tuple[pl.Expr, pl.Expr]:
    """A row problem: its condition and the text that explains it."""
    pieces = [pl.lit(p) if isinstance(p, str) else p for p in parts]
    return condition, pl.when(condition).then(pl.concat_str(pieces))


def _int(name: str) -> str:
    return f"_int_{name}"


def _snapshot(snapshot_source: str, days: pl.Series | None, start: date, n_days: int) -> pl.Expr:
    """Each row's snapshot date: the input's own column, or derived from its place in the file."""
    start_day = (start - _EPOCH).days
    if snapshot_source in ("input", DISCHARGE):
        text = pl.col(SNAPSHOT_COLUMN)
        return pl.when(text.str.contains(_ISO_DATE)).then(
            text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
        )
    if snapshot_source == "cyclic":
        return (start_day + (pl.col(ROW_COLUMN) - 1) % n_days).cast(pl.Int32).cast(pl.Date)
    assert days is not None
    return (start_day + pl.lit(days)).cast(pl.Int32).cast(pl.Date)


def _row_problems(chunk: pl.DataFrame, snapshot_source: str, code_system: str | None = None,
                  require_labels: bool = False) -> list[tuple[pl.Expr, pl.Expr]]:
    """Every rule a raw row can break, as (condition, explanation); ``chunk`` carries the
    ``_int_*``, ``_snapshot`` and ``_duplicate`` columns. ``code_system``: the extract's diagnosis
    codes (the other system's are bad); ``require_labels``: a blank readmitted is bad."""
    problems: list[tuple[pl.Expr, pl.Expr]] = []
    for name in INT_COLUMNS:
        value = pl.col(name)
        missing = (value == "?") | (value == "")
        if name in _ID_COLUMNS:
            problems.append(_problem(missing, f"{name} is missing"))
        problems.append(
            _problem(~missing & pl.col(_int(name)).is_null(),
                     f"{name}: '", value, "' is not an integer")
        )
    problems.append(
        _problem(pl.col("_duplicate"), "encounter_id: ", pl.col("encounter_id"),
                 " repeats an earlier row's encounter_id")
    )
    for name, (low, high) in INT_RANGES.items():
        value = pl.col(_int(name))
        outside = (value < low if low is not None else pl.lit(False)) | (
            value > high if high is not None else pl.lit(False))
        problems.append(
            _problem(value.is_not_null() & outside, f"{name}: ", value.cast(pl.String),
                     f" is outside the allowed range {allowed_range(name)}")
        )
    # Checked on the chunk's distinct values (a handful), not row by row: fast, and a column
    # without a bad value adds no work at all. One query finds them for every column (a query per
    # column costs more than the check on a small batch). readmitted is checked exactly below.
    names = [name for name in DOMAINS if name != "readmitted"]
    distinct = dict(zip(names, chunk.select(pl.col(n).unique().implode() for n in names).row(0), strict=True))
    for name in names:
        domain = DOMAINS[name]
        known = {v.lower() for v in domain} | set(UNKNOWN_ALIASES.get(name, ())) | {"?", ""}
        bad = [v for v in distinct[name] if v.strip().lower() not in known]
        if bad:
            value = pl.col(name)
            problems.append(
                _problem(value.is_in(bad), f"{name}: '", value, f"' is not one of {', '.join(domain)}")
            )
    readmitted = pl.col("readmitted")
    problems.append(
        _problem(~readmitted.is_in([*sorted(READMITTED_VALUES), "", "?"]),  # blank: not known yet
                 "readmitted: '", readmitted, "' is not one of <30, >30, NO (or blank: outcome not known yet)")
    )
    if require_labels:
        problems.append(_problem(readmitted.is_in(["", "?"]), f"readmitted is blank, but the extract is {LABELLED}"))
    problems += [_problem(cond, f"{c}: '", pl.col(c), f"' {why}") for cond, c, why in code_problems(chunk, code_system)]
    if snapshot_source == "input":
        problems.append(
            _problem(pl.col("_snapshot").is_null(), f"{SNAPSHOT_COLUMN}: '",
                     pl.col(SNAPSHOT_COLUMN), "' is not an ISO date (YYYY-MM-DD)")
        )
        today = date.today()  # an extract holds discharges that happened: a later date is an error
        problems.append(
            _problem(pl.col("_snapshot") > today, f"{SNAPSHOT_COLUMN}: ", pl.col("_snapshot").cast(pl.String),
                     f" is in the future (today is {today})")
        )
    return problems


def _split(
    chunk: pl.DataFrame,
    *,
    duplicate: pl.Series,
    days: pl.Series | None,
    snapshot_source: str,
    start: date,
    n_days: int,
    want_good: bool = True,
    code_system: str | None = None,
    require_labels: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split an all-text chunk into typed good rows and text bad rows (with ``_reason``).

    The reasons are spelled out for the bad rows only; ``want_good=False`` skips casting the
    good ones (when they would be thrown away anyway).
    """
    chunk = chunk.with_columns(
        *[pl.col(name).cast(pl.Int64, strict=False).alias(_int(name)) for name in INT_COLUMNS],
        _snapshot(snapshot_source, days, start, n_days).alias("_snapshot"),
        pl.lit(duplicate).alias("_duplicate"),
    )
    problems = _row_problems(chunk, snapshot_source, code_system, require_labels)
    if snapshot_source == DISCHARGE:  # outcomes and months from the dates
        problems += date_problems()
    is_bad = chunk.select(pl.any_horizontal([cond for cond, _ in problems])).to_series()
    if is_bad.any():
        bad = chunk.filter(is_bad).with_columns(
            pl.concat_str([why for _, why in problems], separator="; ", ignore_nulls=True)
            .alias(REASON_COLUMN)
        )
        good = chunk.filter(~is_bad) if want_good else chunk.clear()
    else:
        bad = chunk.clear().with_columns(pl.lit("").alias(REASON_COLUMN))
        good = chunk if want_good else chunk.clear()
    return _typed(good), bad


def _typed(good: pl.DataFrame) -> pl.DataFrame:
    """Cast checked text rows to RAW_SCHEMA (``?``/empty -> null) plus ``snapshot_date``."""
    columns: list[pl.Expr] = []
    for name, dtype in RAW_SCHEMA.items():
        value = pl.col(name)
        if dtype == pl.Int64:
            columns.append(pl.col(_int(name)).alias(name))
        elif name in _NONE_CATEGORY_COLUMNS:
            columns.append(
                pl.when(value == "").then(pl.lit("None"))
                .when(value == "?").then(None)
                .otherwise(value).alias(name)
            )
        else:
            columns.append(
                pl.when((value == "?") | (value == "")).then(None).otherwise(value).alias(name)
            )
    columns.append(pl.col("_snapshot").alias(SNAPSHOT_COLUMN))
    return good.select(columns)


def check_rows(text: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Typed good rows and bad rows (``_row``, ``_reason``) of records given as text, one by one.

    ``text``: every RAW_SCHEMA column and ``snapshot_date``, as strings in the file's
    spelling (``?`` or empty for a missing value). The checks and the reasons are the raw
    reader's own (the rows of an online request are read as rows of the snapshot file), so
    a value the medallion refuses is refused with the same words. ``_row`` counts from 1.
    """
    ids = text["encounter_id"].cast(pl.Int64, strict=False)
    chunk = text.select(*RAW_SCHEMA, SNAPSHOT_COLUMN).with_columns(
        pl.int_range(1, text.height + 1, dtype=pl.Int64).alias(ROW_COLUMN))
    good, bad = _split(chunk, duplicate=ids.is_not_null() & ~ids.is_first_distinct(), days=None,
                       snapshot_source="input", start=DEFAULT_START, n_days=1)
    return good, bad.select(ROW_COLUMN, REASON_COLUMN)
