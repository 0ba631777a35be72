"""Diagnosis code systems: which system a code's shape belongs to, defined once.

An extract's ``diag_1..3`` are ICD-9-CM (the UCI file, US data before October 2015) or
ICD-10-CM (US data since). The shapes overlap only in part:

- ICD-9: a number of 1 to 3 digits with up to 2 decimals (``428.0``; the UCI file drops
  leading zeros, so ``38`` is ``038``), ``V`` + 2 digits (``V57.1``) or an E code, ``E000``-``E030``
  or ``E800``-``E999``, with up to 1 decimal (``E885.9``);
- ICD-10-CM: a letter, a digit, a letter or digit, then up to 4 more letters or digits, dotted
  after the third character or not (``E11.9``, ``I509``).

So ``428.0`` and ``E885.9`` can only be ICD-9, ``E11.9``, ``E119`` and ``I50.9`` only ICD-10, and a
bare ``V57`` or ``E885`` fits both. A code that fits neither is invalid.

**Groups** (Strack et al. 2014, :func:`diagnosis_group`): a code of an ICD-10-only shape is
grouped by the ICD-10-CM rule, every other code by the ICD-9 rule. A code that fits both shapes
falls in ``Other`` under either rule (ICD-9 ``V``/``E`` codes are supplementary and external
causes; ICD-10 ``V`` codes are transport accidents, ``E00``-``E03``/``E80``-``E89`` thyroid and
metabolic disorders, none of them in a Strack group), so a code's group never depends on which
system the file was declared in: the same encounter coded in ICD-9 or ICD-10 gets the same
features. ``tests/data/test_codes.py`` holds that as a property over every shared shape.

Every rule is a narwhals expression, so the same definition runs on every engine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import narwhals as nw
import polars as pl

from readmit.data.translate import polars_exprs

ICD9 = "icd9"
ICD10 = "icd10"
EITHER = "either"  # fits both systems' shapes (``V57``, ``E885``)
INVALID = "invalid"  # fits neither
SHAPES: tuple[str, ...] = (ICD9, ICD10, EITHER, INVALID)

ICD9_PATTERN = r"^([0-9]{1,3}(\.[0-9]{1,2})?|V[0-9]{2}(\.[0-9]{1,2})?|E(0[0-2][0-9]|030|[89][0-9]{2})(\.[0-9])?)$"
ICD10_PATTERN = r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$"

DIAGNOSIS_COLUMNS: tuple[str, ...] = ("diag_1", "diag_2", "diag_3")
_BLANK = ("", "?", "MISSING")


def standard(code: nw.Expr) -> nw.Expr:
    """A code stripped and upper-cased; null when blank or a missing marker (``?``)."""
    text = code.cast(nw.String).str.strip_chars().str.to_uppercase()
    return nw.when(~text.is_in(list(_BLANK))).then(text)


def code_shape(code: nw.Expr) -> nw.Expr:
    """``icd9``, ``icd10``, ``either`` or ``invalid`` for a code; null for a missing code."""
    text = standard(code)
    is9 = text.str.contains(ICD9_PATTERN)
    is10 = text.str.contains(ICD10_PATTERN)
    return (
        nw.when(text.is_null()).then(nw.lit(None, dtype=nw.String))
        .when(is9 & is10).then(nw.lit(EITHER))
        .when(is9).then(nw.lit(ICD9))
        .when(is10).then(nw.lit(ICD10))
        .otherwise(nw.lit(INVALID))
    )


# ICD-10-CM chapters and blocks of each Strack group: (letter, first two-digit block, last).
ICD10_GROUPS: dict[str, tuple[tuple[str, int, int], ...]] = {
    "Diabetes": (("E", 8, 13),),
    "Circulatory": (("I", 0, 99), ("R", 0, 1), ("R", 57, 57), ("R", 59, 59)),
    "Respiratory": (("J", 0, 99), ("R", 4, 7), ("R", 9, 9)),
    "Digestive": (("K", 0, 95), ("R", 10, 19)),
    "Injury": (("S", 0, 99), ("T", 0, 88)),
    "Musculoskeletal": (("M", 0, 99),),
    "Genitourinary": (("N", 0, 99), ("R", 30, 39)),
    "Neoplasms": (("C", 0, 99), ("D", 0, 49)),
}
# The symptom blocks (R00-R01, R04-R07, R09, R10-R19, R30-R39, R57, R59) mirror the ICD-9 symptom
# codes Strack's groups take in: 785 circulatory, 786 respiratory, 787 digestive, 788 urinary.


def icd10_block(code: nw.Expr) -> nw.Expr:
    """The letter and two-digit block of a standardised ICD-10-CM code (``I50.9`` -> ``I50``); a
    letter in third place (C4A, D3A) sits within its first digit's tens (``C40``, ``D30``). Null for
    other shapes. Within a letter these keys sort as their blocks do, so a range of blocks is one
    comparison of strings."""
    return (
        nw.when(code.str.contains(r"^[A-Z][0-9]{2}")).then(code.str.slice(0, 3))
        .when(code.str.contains(r"^[A-Z][0-9][A-Z]")).then(nw.concat_str(code.str.slice(0, 2), nw.lit("0")))
    )


def icd10_group(code: nw.Expr, block: nw.Expr | None = None) -> nw.Expr:
    """Strack group of a standardised ICD-10-CM code (``Other`` when in none of them).

    ``block``: the code's :func:`icd10_block`, already computed (as a column, so an engine that
    rebuilds a repeated expression, as Spark does, parses each code once, not once per range).
    """
    if block is None:
        block = icd10_block(code)
    chain = None
    for group, ranges in ICD10_GROUPS.items():
        cond = None
        for first, lo, hi in ranges:
            part = block.is_between(nw.lit(f"{first}{lo:02d}"), nw.lit(f"{first}{hi:02d}"))
            cond = part if cond is None else cond | part
        chain = nw.when(cond).then(nw.lit(group)) if chain is None else chain.when(cond).then(nw.lit(group))
    return chain.otherwise(nw.lit("Other"))


def is_icd10_only(code: nw.Expr) -> nw.Expr:
    """True for a standardised code of an ICD-10-only shape (grouped by the ICD-10 rule)."""
    return code.str.contains(ICD10_PATTERN) & ~code.str.contains(ICD9_PATTERN)


@functools.cache
def _shape_exprs() -> tuple[nw.Expr, ...]:
    return tuple(code_shape(nw.col(c)).alias(f"_shape_{c}") for c in DIAGNOSIS_COLUMNS)


@functools.cache
def _polars_shape_exprs() -> list[pl.Expr] | None:
    """:func:`_shape_exprs` translated to Polars once (translating costs more than a small frame)."""
    return polars_exprs(_shape_exprs())


def shape_columns(frame: Any) -> Any:
    """``frame`` with ``_shape_diag_1..3`` added (narwhals or native frame in, same kind out)."""
    translated = _polars_shape_exprs() if isinstance(frame, pl.DataFrame | pl.LazyFrame) else None
    if translated is not None:
        return frame.with_columns(translated)
    is_native = not isinstance(frame, nw.DataFrame | nw.LazyFrame)
    nw_frame = nw.from_native(frame) if is_native else frame
    out = nw_frame.with_columns(*_shape_exprs())
    return out.to_native() if is_native else out


def shape_counts(frame: pl.DataFrame) -> dict[str, int]:
    """How many diagnosis codes of a Polars frame have each shape (every SHAPES key present)."""
    shapes = shape_columns(frame.select(DIAGNOSIS_COLUMNS))
    values = pl.concat([shapes[f"_shape_{c}"] for c in DIAGNOSIS_COLUMNS]).drop_nulls()
    counts = dict.fromkeys(SHAPES, 0)
    for shape, n in values.value_counts().iter_rows():
        counts[shape] = n
    return counts


INVALID_CODE_REASON = "is neither an ICD-9-CM nor an ICD-10-CM code"
CODE_SYSTEMS: tuple[str, ...] = ("auto", ICD9, ICD10)  # --diagnosis-codes, data_config.diagnosis_codes
# An optional raw column naming each row's system (icd9 / icd10): a file that has it may mix both.
CODE_SYSTEM_COLUMN = "diag_code_system"
PER_ROW = "per-row"  # the system an extract with CODE_SYSTEM_COLUMN is read in
_NAMES = {ICD9: "ICD-9-CM", ICD10: "ICD-10-CM"}


_KNOWN_SHAPES: dict[str, str | None] = {}  # code -> its shape (code_shape's), as found: a pure function's memo
_KNOWN_LIMIT = 200_000  # codes remembered at most (UCI has ~900 distinct)


def _value_shapes(values: pl.Series) -> dict[str, list[str]]:
    """The distinct codes of ``values`` by shape (missing codes left out).

    Each code's shape is :func:`code_shape`'s, found once per process and remembered: an online
    request holds three codes, mostly seen before, where building a frame to shape them costs
    more than the rest of the row's checks.
    """
    distinct = values.unique(maintain_order=True).to_list()
    new = [v for v in distinct if v not in _KNOWN_SHAPES]
    if new:
        frame = pl.DataFrame({"diag_1": new}, schema={"diag_1": pl.String}).with_columns(
            diag_2=pl.lit(None, pl.String), diag_3=pl.lit(None, pl.String))
        found = dict(zip(new, shape_columns(frame)["_shape_diag_1"].to_list(), strict=True))
        if len(_KNOWN_SHAPES) + len(found) <= _KNOWN_LIMIT:
            _KNOWN_SHAPES.update(found)
    else:
        found = {}
    out: dict[str, list[str]] = {s: [] for s in SHAPES}
    for value in distinct:
        shape = found[value] if value in found else _KNOWN_SHAPES[value]
        if shape is not None:
            out[shape].append(value)
    return out


def code_problems(chunk: pl.DataFrame, system: str | None = None) -> list[tuple[pl.Expr, str, str]]:
    """Polars (condition, column, reason) for the diagnosis columns of an all-text ``chunk``: a
    code of neither system, or, for a file of ``system`` (``icd9``/``icd10``), a code only the
    other system has. Shapes are found on the chunk's distinct codes (a few thousand), not row by
    row; a column without a bad code adds no condition."""
    other = {ICD9: ICD10, ICD10: ICD9}.get(system or "")
    out = []
    row_system = pl.col(CODE_SYSTEM_COLUMN).str.strip_chars().str.to_lowercase()
    if system == PER_ROW:
        out.append((~row_system.is_in([ICD9, ICD10]), CODE_SYSTEM_COLUMN, "is not one of icd9, icd10"))
    for c in DIAGNOSIS_COLUMNS:
        shapes = _value_shapes(chunk[c])
        if shapes[INVALID]:
            out.append((pl.col(c).is_in(shapes[INVALID]), c, INVALID_CODE_REASON))
        if other and shapes[other]:
            out.append((pl.col(c).is_in(shapes[other]), c, f"is an {_NAMES[other]} code in an {_NAMES[system]} extract"))
        if system == PER_ROW:
            for mine, theirs in ((ICD9, ICD10), (ICD10, ICD9)):
                if shapes[theirs]:
                    out.append(((row_system == mine) & pl.col(c).is_in(shapes[theirs]), c,
                                f"is an {_NAMES[theirs]} code in a row whose {CODE_SYSTEM_COLUMN} is {mine}"))
    return out


class SystemDecider:
    """The code system of a whole extract, from its diagnosis columns fed chunk by chunk (text,
    file order) with :meth:`add`; :meth:`result` decides.

    ``icd9``/``icd10`` as declared (nothing is read); ``auto``: ICD-10 when a code only ICD-10 has
    is present, else ICD-9 (a file of shared shapes only groups the same either way). A file
    holding codes only ICD-9 has and codes only ICD-10 has is refused, naming rows of each, unless
    it has a :data:`CODE_SYSTEM_COLUMN` (``per_row``): each row's codes then follow its own system.
    """

    def __init__(self, declared: str, source: str, per_row: bool = False):
        from readmit.errors import ReadmitInputError

        if declared not in CODE_SYSTEMS:
            raise ReadmitInputError(f"unknown diagnosis code system {declared!r}",
                                    fix=f"use one of: {', '.join(CODE_SYSTEMS)}")
        # a per-row system column decides, row by row: nothing to decide for the file
        self.declared, self.source = (PER_ROW if per_row else declared), source
        self.rows: dict[str, list[int]] = {ICD9: [], ICD10: []}
        self._offset = 0

    @property
    def reads(self) -> bool:
        return self.declared == "auto"

    def add(self, chunk: pl.DataFrame) -> None:
        wanted = [system for system in (ICD9, ICD10) if len(self.rows[system]) < 3]
        shapes = [_value_shapes(chunk[c]) for c in DIAGNOSIS_COLUMNS] if wanted else []
        for system in wanted:
            codes = {v for by_shape in shapes for v in by_shape[system]}
            if codes:
                hit = chunk.select(pl.any_horizontal(pl.col(c).is_in(sorted(codes)) for c in DIAGNOSIS_COLUMNS))
                rows = hit.with_row_index("row", offset=self._offset + 1).filter(pl.col(hit.columns[0]))["row"]
                self.rows[system] += rows.head(3 - len(self.rows[system])).to_list()
        self._offset += chunk.height

    def result(self) -> str:
        from readmit.errors import ReadmitInputError

        if not self.reads:
            return self.declared  # icd9, icd10 or per-row
        if self.rows[ICD9] and self.rows[ICD10]:
            raise ReadmitInputError(
                f"the diagnosis codes mix two systems: ICD-9-CM only codes in data rows "
                f"{', '.join(map(str, self.rows[ICD9]))}... and ICD-10-CM only codes in data rows "
                f"{', '.join(map(str, self.rows[ICD10]))}...",
                source=self.source,
                fix="split the extract by code system, or declare the system "
                "(`readmit medallion --diagnosis-codes icd9|icd10`) to refuse or quarantine the other one's rows",
            )
        return ICD10 if self.rows[ICD10] else ICD9


def decide_system(chunks: Callable[[], Iterable[pl.DataFrame]], declared: str, source: str) -> str:
    """:class:`SystemDecider` over ``chunks()`` (read only for ``auto``)."""
    decider = SystemDecider(declared, source)
    if decider.reads:
        for chunk in chunks():
            decider.add(chunk)
    return decider.result()
