"""Silver: typed, cleaned, de-duplicated encounters, one partition per bronze month.

Conventions (also in docs/data_dictionary.md):

- Every string is stripped of surrounding whitespace; an empty string counts as missing.
- Columns with a known set of values (race, gender, age, weight, max_glu_serum, A1Cresult, the 23
  drugs, change, diabetesMed, readmitted) are matched case-insensitively and written in the UCI
  spelling (``female`` -> ``Female``). A value outside the set is bad input and raises.
- A missing categorical value is written as the explicit category ``"Missing"``: race,
  gender (the UCI ``Unknown/Invalid`` too), age, weight, payer_code, medical_specialty,
  max_glu_serum, A1Cresult, the drugs, change and diabetesMed. ``payer_code`` is upper-cased.
- ``diag_1..3`` stay ICD-9 code strings (stripped, upper-cased ``V``/``E`` prefix); a missing
  code stays null (features group it as ``Missing``).
- Integer columns keep their bronze types and nulls. ``readmitted`` must be ``<30``, ``>30`` or
  ``NO``; keys (encounter_id, patient_nbr, snapshot_date) must be present.
- A repeated ``encounter_id`` within a partition is a duplicate: the first row is kept.
- Rows are sorted by (snapshot_date, encounter_id): the order patient history is counted in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import narwhals as nw
import polars as pl

from readmit.data.features import polars_exprs
from readmit.data.layers import BRONZE_TABLE, SILVER_TABLE, LayerResult
from readmit.data.schema import (
    DOMAINS,
    INT_RANGES,
    KEY_COLUMNS,
    MISSING,
    RAW_SCHEMA,
    SNAPSHOT_COLUMN,
    UNKNOWN_ALIASES,
    allowed_range,
)
from readmit.errors import ReadmitInputError
from readmit.storage import Storage, check_month_range

LINEAGE_COLUMNS: tuple[str, ...] = ("_source_sha256", "_ingested_at")

_FREE_TEXT = ("payer_code", "medical_specialty")
OUT_OF_DOMAIN = "\x00"  # what a value outside its column's domain becomes, before clean() refuses it
_DIAG = ("diag_1", "diag_2", "diag_3")


# The cleaning rules are narwhals expressions, like the features (readmit.data.features): the
# same definitions run on every engine. They run in two steps, ``_standard_exprs`` then
# ``_canonical_exprs``, so each value is stripped and lower-cased once.
def _blank_to_null(col: str) -> nw.Expr:
    """The value stripped of surrounding whitespace; an empty string becomes null."""
    stripped = nw.col(col).str.strip_chars()
    return nw.when(stripped != "").then(stripped).alias(col)


def _lower(col: str) -> str:
    return f"_lower_{col}"


@functools.cache
def _standard_exprs() -> tuple[nw.Expr, ...]:
    """Step 1: every DOMAINS column stripped, blank as null, lower-cased (as ``_lower_<col>``)."""
    return tuple(_blank_to_null(c).str.to_lowercase().alias(_lower(c)) for c in DOMAINS)


def _canonical(col: str) -> nw.Expr:
    """Step 2: case-insensitive match to the domain; null if missing, ``"\\x00"`` if out of domain."""
    mapping = {v.lower(): v for v in DOMAINS[col]}
    mapping.update({alias: MISSING for alias in UNKNOWN_ALIASES.get(col, ())})
    lower = nw.col(_lower(col))
    # replace_strict: one lookup per value, 3x faster than a chain of when/is_in (``mapped``) on
    # Polars' small monthly frames; Polars, DuckDB and PySpark run it (Spark Connect does not yet,
    # with narwhals 2.29: silver runs on Polars today, see readmit.data.engines).
    matched = lower.replace_strict(mapping, default=OUT_OF_DOMAIN, return_dtype=nw.String)
    return nw.when(~lower.is_null()).then(matched).alias(col)


@functools.cache
def _canonical_exprs() -> tuple[nw.Expr, ...]:
    """The canonical-value expressions of every DOMAINS column (built once, on first use)."""
    return tuple(_canonical(c) for c in DOMAINS)


@functools.cache
def _fill_exprs() -> tuple[nw.Expr, ...]:
    """Missing categories made explicit, free text and diagnosis codes standardised."""
    return (
        *[nw.col(c).fill_null(MISSING) for c in DOMAINS if c != "readmitted"],
        _blank_to_null("payer_code").str.to_uppercase().fill_null(MISSING),
        _blank_to_null("medical_specialty").fill_null(MISSING),
        *[_blank_to_null(c).str.to_uppercase() for c in _DIAG],
    )


@functools.cache
def _polars_cleaning() -> tuple[list[pl.Expr], ...]:
    """The cleaning expressions translated to Polars once (see features.polars_exprs)."""
    return tuple(polars_exprs(step) for step in (_standard_exprs(), _canonical_exprs(), _fill_exprs()))


def _check_types(bronze: pl.DataFrame, source: str) -> pl.DataFrame:
    schema = bronze.schema
    expected = {**RAW_SCHEMA, SNAPSHOT_COLUMN: pl.Date()}
    missing = [c for c in expected if c not in schema]
    if missing:
        raise ReadmitInputError(
            f"missing column(s) {', '.join(missing)}",
            source=source,
            fix="rebuild bronze for this month so it has every raw column and snapshot_date",
        )
    casts = []
    for col, dtype in expected.items():
        if schema[col] != dtype:
            try:
                bronze.select(pl.col(col).cast(dtype, strict=True))
            except Exception as exc:
                raise ReadmitInputError(
                    f"column {col} has type {schema[col]}, expected {dtype}",
                    source=source,
                    fix="rebuild bronze for this month with the raw schema",
                ) from exc
            casts.append(pl.col(col).cast(dtype))
    return bronze.with_columns(casts) if casts else bronze


def clean(bronze: pl.DataFrame, *, source: str = "bronze") -> tuple[pl.DataFrame, int]:
    """Clean one bronze frame; return (silver frame, number of duplicate encounters removed).

    ``source`` names the partition in error messages.
    """
    bronze = _check_types(bronze, source)
    null_keys = bronze.select(pl.col(k).null_count() for k in KEY_COLUMNS).row(0)
    for key, nulls in zip(KEY_COLUMNS, null_keys, strict=True):
        if nulls:
            raise ReadmitInputError(
                f"{nulls} row(s) without {key}",
                source=source,
                fix=f"give every row a {key} in the raw file (or drop those rows) and rerun bronze",
            )
    for col, (low, high) in INT_RANGES.items():
        values = bronze[col].drop_nulls()
        bad = values.filter(((values < low) if low is not None else values.is_null())
                            | ((values > high) if high is not None else values.is_null()))
        if bad.len():
            raise ReadmitInputError(
                f"column {col} has value(s) outside the allowed range {allowed_range(col)}: "
                f"{sorted(bad.unique().to_list())[:5]}",
                source=source,
                fix="correct or remove those rows in the raw file and rerun bronze (with --quarantine "
                "bronze sets them aside)",
            )
    standard, canonical, fill = _polars_cleaning()
    canon = bronze.with_columns(standard).with_columns(canonical).drop([_lower(c) for c in DOMAINS])
    flags = canon.select((pl.col(c) == OUT_OF_DOMAIN).any() for c in DOMAINS).row(0)
    if any(flags):
        col = next(c for c, bad in zip(DOMAINS, flags, strict=True) if bad)
        values = bronze.filter(canon[col] == OUT_OF_DOMAIN)[col].unique().sort().head(5).to_list()
        raise ReadmitInputError(
            f"column {col} has unexpected value(s) {values}; allowed: {list(DOMAINS[col])}",
            source=source,
            fix="correct or remove those rows in the raw file and rerun bronze",
        )
    unlabeled = canon["readmitted"].null_count()
    if unlabeled:
        raise ReadmitInputError(
            f"{unlabeled} row(s) without readmitted",
            source=source,
            fix="every encounter needs readmitted (<30, >30 or NO); correct the raw file",
        )
    cleaned = canon.with_columns(fill)
    lineage = [c for c in LINEAGE_COLUMNS if c in bronze.columns]
    cleaned = cleaned.select(*RAW_SCHEMA, SNAPSHOT_COLUMN, *lineage)
    deduped = cleaned.unique(subset="encounter_id", keep="first", maintain_order=True)
    deduped = deduped.sort(SNAPSHOT_COLUMN, "encounter_id")
    return deduped, cleaned.height - deduped.height


def months_in_range(
    storage: Storage, table: str, start_month: str | None, end_month: str | None
) -> list[str]:
    """The partitions of ``table`` between start and end (inclusive); raises if there are none."""
    start, end = check_month_range(start_month, end_month)
    months = [
        m for m in storage.list_partitions(table)
        if (start is None or m >= start) and (end is None or m <= end)
    ]
    if not months:
        raise ReadmitInputError(
            f"no partitions of {table} between {start or 'the first'} and {end or 'the last'} month",
            source=storage.uri_of(table),
            fix="build the earlier layer for these months first, or widen --start/--end",
        )
    return months


def build_silver(
    storage: Storage,
    *,
    start_month: str | None = None,
    end_month: str | None = None,
    on_partition: Callable[[str], None] | None = None,
) -> LayerResult:
    """Clean every bronze partition in range into the silver partition of the same month."""
    result = LayerResult(layer="silver")
    for month in months_in_range(storage, BRONZE_TABLE, start_month, end_month):
        source = storage.uri_of(storage.partition_path(BRONZE_TABLE, month))
        bronze = storage.read_partition(BRONZE_TABLE, month)
        silver, duplicates = clean(bronze, source=source)
        if silver.height:
            months = silver[SNAPSHOT_COLUMN].dt.strftime("%Y-%m")
            if months.min() != month or months.max() != month:
                raise ReadmitInputError(
                    f"snapshot_date outside {month} (found {months.min()}..{months.max()})",
                    source=source,
                    fix="rebuild bronze so each partition holds only its own month",
                )
        storage.write_partition(SILVER_TABLE, month, silver)
        result.partitions.append(month)
        result.rows_in += bronze.height
        result.rows_out += silver.height
        result.duplicates_removed += duplicates
        if on_partition is not None:
            on_partition(month)
    return result
