"""``readmit data check``: validate an extract against the input contract, writing nothing.

The file goes through the very reader bronze uses (:func:`readmit.data.raw.open_raw`, every row
checked, bad rows kept aside in memory), so what the check accepts is what the medallion
accepts. The summary: rows, months, label coverage, the diagnosis code shapes found
(:mod:`readmit.data.codes`), the optional columns the file lacks, and the problems with their
data row numbers.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import polars as pl

from readmit.data.codes import DIAGNOSIS_COLUMNS, ICD9, ICD10, INVALID_CODE_REASON, SHAPES, shape_columns
from readmit.data.contract import CONTRACT_DOC
from readmit.data.raw import DEFAULT_END, DEFAULT_START, REASON_COLUMN, ROW_COLUMN, RawReader, open_raw
from readmit.data.schema import OPTIONAL_COLUMNS, SNAPSHOT_COLUMN
from readmit.errors import ReadmitInputError

PROBLEMS_SHOWN = 20


@dataclass
class ExtractCheck:
    """What :func:`check_extract` found in one extract."""

    source: str
    rows: int
    rows_ok: int
    rows_rejected: int
    dates: str  # "input" (the file's snapshot_date) or the derivation used
    months: dict[str, int] = field(default_factory=dict)
    labelled: int = 0
    unlabelled: int = 0
    absent_columns: dict[str, str] = field(default_factory=dict)
    code_shapes: dict[str, int] = field(default_factory=dict)
    code_systems: list[str] = field(default_factory=list)  # the systems whose only-own codes occur
    code_system: str = ""  # the system the file is read in (declared, or decided by auto)
    invalid_codes: int = 0  # rows refused for a code of neither system (in problems too)
    invalid_codes_by_month: dict[str, int] = field(default_factory=dict)  # "unknown": month not derivable
    problems: list[dict[str, Any]] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def refusal(self) -> ReadmitInputError:
        """The one message for a failed check: the file, the first rows and the fix."""
        rows = ", ".join(str(p["row"]) for p in self.problems[:5])
        first = self.problems[0]["reason"] if self.problems else ""
        more = "" if self.problem_count <= 5 else f" and {self.problem_count - 5} more"
        return ReadmitInputError(
            f"{self.problem_count} problem{'s' if self.problem_count != 1 else ''} in data rows {rows}{more}; "
            f"the first: {first}",
            source=self.source,
            fix=f"correct those rows (the contract: {CONTRACT_DOC}), or load the good rows with "
            "`readmit medallion --quarantine`, which sets the bad ones aside under rejected/",
        )


def check_extract(
    path: str,
    *,
    derivation: str = "encounter_order",
    start: date = DEFAULT_START,
    end: date = DEFAULT_END,
    diagnosis_codes: str = "auto",
    require_labels: bool = False,
) -> ExtractCheck:
    """Read and check every row of ``path``; write nothing. Structural problems (no such file,
    a required column missing) raise ``ReadmitInputError`` as the medallion would."""
    reader = open_raw(path, derivation=derivation, start=start, end=end, quarantine=True,
                      diagnosis_codes=diagnosis_codes, require_labels=require_labels)
    found = ExtractCheck(source=reader.source, rows=reader.rows_in, rows_ok=0, rows_rejected=0,
                         dates=reader.snapshot_source, code_system=reader.code_system,
                         absent_columns={c: OPTIONAL_COLUMNS[c] for c in reader.absent},
                         code_shapes=dict.fromkeys(SHAPES, 0))
    problems: list[pl.DataFrame] = []
    with closing(reader.batches()) as batches:
        for batch in batches:
            _count(found, batch.frame)
            if batch.rejected.height:
                found.rows_rejected += batch.rejected.height
                count_invalid_codes(reader, batch.rejected, found.invalid_codes_by_month)
                problems.append(batch.rejected.select(ROW_COLUMN, REASON_COLUMN).head(PROBLEMS_SHOWN))
    found.months = dict(sorted(found.months.items()))
    found.invalid_codes_by_month = dict(sorted(found.invalid_codes_by_month.items()))
    found.invalid_codes = sum(found.invalid_codes_by_month.values())
    found.code_systems = [s for s in (ICD9, ICD10) if found.code_shapes[s]]
    found.problem_count = found.rows_rejected
    if problems:
        shown = pl.concat(problems).head(PROBLEMS_SHOWN)
        found.problems = [{"row": r, "reason": why} for r, why in shown.iter_rows()]
    return found


def rejected_months(reader: RawReader, rejected: pl.DataFrame) -> pl.Series:
    """The month (YYYY-MM) each rejected row has: its snapshot_date, or the date the derivation
    gives its row; ``unknown`` when neither can be told (an unreadable date, a repeated id)."""
    rows = rejected[ROW_COLUMN]
    if reader.snapshot_source in ("input", "discharge_date"):
        text = rejected[SNAPSHOT_COLUMN]
        months = pl.select(pl.when(text.str.contains(r"^\d{4}-\d{2}")).then(text.str.slice(0, 7))).to_series()
    else:
        if reader.snapshot_source == "cyclic":
            days = (rows - 1) % ((reader.end - reader.start).days + 1)
        else:
            days = reader.derived_days(rows)
        months = pl.select((pl.lit(reader.start) + pl.duration(days=days)).dt.strftime("%Y-%m")).to_series()
    return months.fill_null("unknown")


def count_invalid_codes(reader: RawReader, rejected: pl.DataFrame, counts: dict[str, int]) -> None:
    """Add the rejected rows holding a code of neither system to ``counts``, by month."""
    invalid = rejected.filter(pl.col(REASON_COLUMN).str.contains(INVALID_CODE_REASON, literal=True))
    if invalid.height:
        for month, n in rejected_months(reader, invalid).value_counts().iter_rows():
            counts[month] = counts.get(month, 0) + n


def _count(found: ExtractCheck, frame: pl.DataFrame) -> None:
    """Add one batch of good rows to the summary."""
    found.rows_ok += frame.height
    if frame.height == 0:
        return
    month = pl.col(SNAPSHOT_COLUMN).dt.strftime("%Y-%m").alias("month")
    for m, n in frame.group_by(month).len().iter_rows():
        found.months[m] = found.months.get(m, 0) + n
    known = int(frame["readmitted"].is_not_null().sum())
    found.labelled += known
    found.unlabelled += frame.height - known
    shapes = shape_columns(frame.select(SNAPSHOT_COLUMN, *DIAGNOSIS_COLUMNS))
    long = pl.concat([
        shapes.select(month, pl.col(f"_shape_{c}").alias("shape")) for c in DIAGNOSIS_COLUMNS
    ]).drop_nulls("shape")
    for shape, n in long.group_by("shape").len().iter_rows():
        found.code_shapes[shape] += n
