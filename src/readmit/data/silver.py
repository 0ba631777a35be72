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
  ``NO``, or null (an encounter whose outcome is not known yet: it reaches the feature store only); keys (encounter_id, patient_nbr, snapshot_date) must be present.
- A repeated ``encounter_id`` within a partition is a duplicate: the first row is kept (the
  first in the bronze partition's file order, on every engine).
- Rows are sorted by (snapshot_date, encounter_id): the order patient history is counted in.

``data_config.engine`` chooses who runs the rules (:mod:`readmit.data.engines`): Polars cleans
month by month in this process; DuckDB or Spark clean every month in range in one query, each
row carrying its position in its bronze file, and each month's result is read back, checked,
rid of repeated encounter_ids (the lowest position is "first", as in Polars) and written
atomically like Polars'. A bad value is found
by the engine and reported through :func:`clean` on that month's bronze, so every engine raises
the same message. The engines read bronze as written by readmit: a partition whose column types
differ from the raw schema is refused (Polars would cast what casts).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import narwhals as nw
import polars as pl
import pyarrow.parquet as pq

from readmit.config import DataSection
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
from readmit.data.translate import polars_exprs, with_columns
from readmit.errors import ReadmitError, ReadmitInputError
from readmit.months import check_month_range
from readmit.storage import Storage

LINEAGE_COLUMNS: tuple[str, ...] = ("_source_sha256", "_ingested_at")
BRONZE_SCHEMA: dict[str, pl.DataType] = {**RAW_SCHEMA, SNAPSHOT_COLUMN: pl.Date()}
LINEAGE_SCHEMA: dict[str, pl.DataType] = {"_source_sha256": pl.String(), "_ingested_at": pl.Datetime("us", "UTC")}

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
    # Polars' small monthly frames; Polars, DuckDB and PySpark run it (Spark Connect may not yet,
    # with narwhals 2.29: untested there).
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
def _polars_cleaning() -> tuple[list[pl.Expr] | None, ...]:
    """The cleaning expressions translated to Polars once (see translate.polars_exprs)."""
    return tuple(polars_exprs(step) for step in (_standard_exprs(), _canonical_exprs(), _fill_exprs()))


def _check_types(bronze: pl.DataFrame, source: str) -> pl.DataFrame:
    schema = bronze.schema
    expected = BRONZE_SCHEMA
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
                fix="correct or remove those rows in the raw file and rerun bronze (`readmit medallion "
                "--quarantine`, or data_config.quarantine: true, sets them aside)",
            )
    standard, canonical, fill = _polars_cleaning()
    canon = with_columns(with_columns(bronze, _standard_exprs(), standard), _canonical_exprs(), canonical).drop(
        [_lower(c) for c in DOMAINS])
    flags = canon.select((pl.col(c) == OUT_OF_DOMAIN).any() for c in DOMAINS).row(0)
    if any(flags):
        col = next(c for c, bad in zip(DOMAINS, flags, strict=True) if bad)
        values = bronze.filter(canon[col] == OUT_OF_DOMAIN)[col].unique().sort().head(5).to_list()
        raise ReadmitInputError(
            f"column {col} has unexpected value(s) {values}; allowed: {list(DOMAINS[col])}",
            source=source,
            fix="correct or remove those rows in the raw file and rerun bronze",
        )
    cleaned = with_columns(canon, _fill_exprs(), fill)
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


def _check_month(silver: pl.DataFrame, month: str, source: str) -> None:
    """Refuse silver rows dated outside their bronze partition's month."""
    if silver.height:
        months = silver[SNAPSHOT_COLUMN].dt.strftime("%Y-%m")
        if months.min() != month or months.max() != month:
            raise ReadmitInputError(
                f"snapshot_date outside {month} (found {months.min()}..{months.max()})",
                source=source,
                fix="rebuild bronze so each partition holds only its own month",
            )


def build_silver(
    storage: Storage,
    *,
    start_month: str | None = None,
    end_month: str | None = None,
    on_partition: Callable[[str], None] | None = None,
    data_config: DataSection | None = None,
) -> LayerResult:
    """Clean every bronze partition in range into the silver partition of the same month.

    ``data_config`` (default: the built-in defaults) chooses the engine; every engine writes the
    same partitions and refuses the same bad input with the same message.
    """
    result = LayerResult(layer="silver")
    months = months_in_range(storage, BRONZE_TABLE, start_month, end_month)
    data_config = data_config or DataSection()
    if data_config.engine != "polars":
        _build_on_engine(storage, months, data_config, result, on_partition)
        return result
    for month in months:
        source = storage.uri_of(storage.partition_path(BRONZE_TABLE, month))
        bronze = storage.read_partition(BRONZE_TABLE, month)
        silver, _ = clean(bronze, source=source)
        _check_month(silver, month, source)
        _record(storage, month, bronze.height, silver, result, on_partition)
    return result


def _record(storage: Storage, month: str, rows_in: int, silver: pl.DataFrame, result: LayerResult,
            on_partition: Callable[[str], None] | None) -> None:
    """Write one silver partition (atomically) and count it."""
    storage.write_partition(SILVER_TABLE, month, silver)
    result.partitions.append(month)
    result.rows_in += rows_in
    result.rows_out += silver.height
    result.duplicates_removed += rows_in - silver.height
    if on_partition is not None:
        on_partition(month)


# -- DuckDB and Spark -----------------------------------------------------------------------
def _bronze_schema(storage: Storage, month: str, source: str) -> dict[str, pl.DataType]:
    """The columns an engine reads from a bronze partition (from its footer), checked as clean() does."""
    with storage.fs.open(storage.path(storage.partition_path(BRONZE_TABLE, month)), "rb") as fh:
        schema = pl.from_arrow(pq.ParquetFile(fh).schema_arrow.empty_table()).schema
    _check_types(pl.DataFrame(schema=schema), source)  # missing columns: the message clean() gives
    expected = {**BRONZE_SCHEMA, **{c: LINEAGE_SCHEMA[c] for c in LINEAGE_COLUMNS if c in schema}}
    for col, dtype in expected.items():
        if schema[col] != dtype:
            raise ReadmitInputError(
                f"column {col} has type {schema[col]}, expected {dtype}",
                source=source,
                fix="rebuild bronze for this month with the raw schema (or clean it with data_config.engine "
                "polars, which casts what casts)",
            )
    return expected


def engine_clean(bronze: nw.LazyFrame) -> nw.LazyFrame:
    """clean()'s rules on any engine's lazy frame of bronze rows with MONTH_KEY (their partition)
    and ROW (their position in it). Every row is kept, with ROW, and bad values stay visible
    (OUT_OF_DOMAIN, nulls): the caller checks each month and keeps the lowest ROW of a repeated
    encounter_id as it reads the month back. One pass, no join or window: the engine streams it."""
    from readmit.data.engines import MONTH_KEY, ROW

    canon = bronze.with_columns(*_standard_exprs()).with_columns(*_canonical_exprs()).drop(
        *[_lower(c) for c in DOMAINS])
    return canon.with_columns(*_fill_exprs()).select(*BRONZE_SCHEMA, *LINEAGE_COLUMNS, ROW, MONTH_KEY)


def _has_problem(rows: pl.DataFrame, month: str) -> bool:
    """Whether engine-cleaned rows hold anything clean() or _check_month refuses (which, not why)."""
    checks = [pl.col(k).is_null() for k in KEY_COLUMNS]
    for col, (low, high) in INT_RANGES.items():
        checks += [pl.col(col) < low] if low is not None else []
        checks += [pl.col(col) > high] if high is not None else []
    checks += [pl.col(c) == OUT_OF_DOMAIN for c in DOMAINS]
    checks += [pl.col(SNAPSHOT_COLUMN).dt.strftime("%Y-%m") != month]
    return bool(rows.select(pl.any_horizontal(c.fill_null(False) for c in checks).any()).item())


def _build_on_engine(storage: Storage, months: list[str], data_config: DataSection, result: LayerResult,
                     on_partition: Callable[[str], None] | None) -> None:
    """Silver of ``months`` cleaned by DuckDB (a year per query) or Spark (one query), then read back, checked,
    de-duplicated (the lowest ROW of an encounter_id) and written a month at a time (as the Polars
    path: a bad month stops the run, the months before it are written)."""
    from readmit.data.engines import FILE, ROW, engine_uri, open_engine, partition_key, read_month, scratch

    sources = {m: storage.uri_of(storage.partition_path(BRONZE_TABLE, m)) for m in months}
    schemas = {m: _bronze_schema(storage, m, sources[m]) for m in months}
    present = {c: t for c, t in LINEAGE_SCHEMA.items() if any(c in schema for schema in schemas.values())}
    absent = nw.from_native(pl.DataFrame(schema={c: t for c, t in LINEAGE_SCHEMA.items() if c not in present}))
    read_schema = {**BRONZE_SCHEMA, **LINEAGE_SCHEMA, ROW: pl.Int64()}
    with open_engine(data_config.engine, data_config) as eng, scratch(storage) as tmp:
        step = eng.months_per_query or len(months)
        for first in range(0, len(months), step):
            chosen, out = months[first:first + step], f"{tmp}/silver-{first}"
            uris = [engine_uri(storage, storage.partition_path(BRONZE_TABLE, m)) for m in chosen]
            bronze = eng.read_rows(uris, {**BRONZE_SCHEMA, **present}).with_columns(
                *[nw.lit(None, dtype=t).alias(c) for c, t in absent.schema.items()], partition_key(nw.col(FILE)))
            eng.write_by_month(engine_clean(bronze), engine_uri(storage, out))
            for month in chosen:
                rows = read_month(storage, out, month, read_schema)
                if _has_problem(rows, month):  # the message comes from the Polars rules, the same everywhere
                    clean(storage.read_partition(BRONZE_TABLE, month), source=sources[month])
                    _check_month(rows, month, sources[month])
                    raise ReadmitError(f"{data_config.engine} found a bad value in {sources[month]} that the "
                                       "Polars rules accept; run silver with data_config.engine polars and report it")
                kept = rows.sort(ROW).unique(subset="encounter_id", keep="first", maintain_order=True)
                silver = kept.select(*schemas[month]).sort(SNAPSHOT_COLUMN, "encounter_id")
                _record(storage, month, rows.height, silver, result, on_partition)
