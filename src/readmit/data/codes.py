"""Diagnosis code systems: which system a code's shape belongs to, defined once.

An extract's ``diag_1..3`` are ICD-9-CM (the UCI file, US data before October 2015) or
ICD-10-CM (US data since). The shapes overlap only in part:

- ICD-9: a number of 1 to 3 digits with up to 2 decimals (``428.0``; the UCI file drops
  leading zeros, so ``38`` is ``038``), ``V`` + 2 digits (``V57.1``) or ``E`` + 3 digits with up
  to 1 decimal (``E885.9``);
- ICD-10-CM: a letter, a digit, a letter or digit, then up to 4 more letters or digits, dotted
  after the third character or not (``E11.9``, ``I509``).

So ``428.0`` and ``E885.9`` can only be ICD-9, ``E11.9`` and ``I50.9`` only ICD-10, and a bare
``V57`` or ``E885`` fits both. A code that fits neither is invalid.

Every rule is a narwhals expression, so the same definition runs on every engine.
"""

from __future__ import annotations

from typing import Any

import narwhals as nw
import polars as pl

ICD9 = "icd9"
ICD10 = "icd10"
EITHER = "either"  # fits both systems' shapes (``V57``, ``E885``)
INVALID = "invalid"  # fits neither
SHAPES: tuple[str, ...] = (ICD9, ICD10, EITHER, INVALID)

ICD9_PATTERN = r"^([0-9]{1,3}(\.[0-9]{1,2})?|V[0-9]{2}(\.[0-9]{1,2})?|E[0-9]{3}(\.[0-9])?)$"
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


def shape_columns(frame: Any) -> Any:
    """``frame`` with ``_shape_diag_1..3`` added (narwhals or native frame in, same kind out)."""
    is_native = not isinstance(frame, nw.DataFrame | nw.LazyFrame)
    nw_frame = nw.from_native(frame) if is_native else frame
    out = nw_frame.with_columns(*[code_shape(nw.col(c)).alias(f"_shape_{c}") for c in DIAGNOSIS_COLUMNS])
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


def invalid_code_problems() -> list[tuple[pl.Expr, str]]:
    """Polars conditions, one per diagnosis column, true where the code has neither shape
    (what the raw reader refuses or quarantines), with the column named."""
    namespace = nw.from_native(pl.DataFrame()).__narwhals_namespace__()
    return [
        ((code_shape(nw.col(c)) == INVALID)._to_compliant_expr(namespace).native.fill_null(False), c)
        for c in DIAGNOSIS_COLUMNS
    ]
