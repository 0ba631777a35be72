"""The input contract: what an extract must hold, read from the one schema (:mod:`readmit.data.schema`).

``docs/input_contract.md`` is generated from :func:`render_input_contract` (a test keeps them in
step), so the documented columns, types, allowed values and optional columns are the ones the
reader applies. Two leniencies for a hospital's own extracts are applied here, before the row
checks (:func:`prepare_chunk`):

- an optional column (:data:`OPTIONAL_COLUMNS`) that the file lacks is read as missing in every
  row, and reported (never a refusal of the file);
- an integer ``age`` (years, 0..99) is mapped to its UCI band (``67`` -> ``[60-70)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from readmit.data.codes import CODE_SYSTEM_COLUMN, ICD9_PATTERN, ICD10_PATTERN
from readmit.data.schema import (
    AGES,
    DOMAINS,
    INT_RANGES,
    OPTIONAL_COLUMNS,
    RAW_SCHEMA,
    SNAPSHOT_COLUMN,
    UNKNOWN_ALIASES,
    allowed_range,
)

CONTRACT_DOC = "docs/input_contract.md"
_INTEGER_AGE = r"^\s*[0-9]{1,2}\s*$"
_ID_COLUMNS = ("encounter_id", "patient_nbr")


@dataclass(frozen=True)
class ContractColumn:
    """One raw column as the contract describes it."""

    name: str
    dtype: str
    required: bool
    allowed: str
    when_absent: str


def _allowed(name: str) -> str:
    if name in _ID_COLUMNS:
        return "integer, never missing (`encounter_id` unique in the file)"
    if name in INT_RANGES:
        return f"integer {allowed_range(name)}; `?` or empty = missing"
    if name == "readmitted":
        return ("`<30`, `>30`, `NO` (exactly); blank (`?` or empty) = outcome not known yet: built and scored, "
                "not in the label store (a bad row with `--require-labels`)")
    if name == "age":
        return f"{', '.join(f'`{a}`' for a in AGES)}, or whole years 0..99 (mapped to their band); `?` or empty = missing"
    if name in DOMAINS:
        aliases = UNKNOWN_ALIASES.get(name, ())
        extra = f"; {', '.join(f'`{a}`' for a in aliases)} read as missing" if aliases else ""
        return f"{', '.join(f'`{v}`' for v in DOMAINS[name])} (any case); `?` or empty = missing{extra}"
    if name.startswith("diag_"):
        return (f"ICD-9-CM (`{ICD9_PATTERN}`) or ICD-10-CM (`{ICD10_PATTERN}`) code; `?` or empty = missing")
    if RAW_SCHEMA[name] == pl.Int64:
        return "integer code; `?` or empty = missing"
    return "free text; `?` or empty = missing"


def contract_columns() -> list[ContractColumn]:
    """Every raw column, in file order, as the reader treats it."""
    return [
        ContractColumn(
            name=name,
            dtype="integer" if dtype == pl.Int64 else "string",
            required=name not in OPTIONAL_COLUMNS,
            allowed=_allowed(name),
            when_absent=OPTIONAL_COLUMNS.get(name, "the file is refused, naming the column"),
        )
        for name, dtype in RAW_SCHEMA.items()
    ]


def render_input_contract() -> str:
    """The column table of docs/input_contract.md, as markdown."""
    lines = ["| Column | Type | Required | Allowed values | When the column is absent |", "|---|---|---|---|---|"]
    for col in contract_columns():
        allowed = col.allowed.replace("|", "\\|")
        lines.append(f"| `{col.name}` | {col.dtype} | {'yes' if col.required else 'no'} | {allowed} | {col.when_absent} |")
    lines.append(
        f"| `{SNAPSHOT_COLUMN}` | date | no | ISO date `YYYY-MM-DD`, not after today (a time after it is ignored) | "
        "dates are derived from `data_config.date_derivation` (encounter order spread over its range) |"
    )
    lines.append(
        "| `admission_date`, `discharge_date` | date | no | ISO dates `YYYY-MM-DD`, admission not after discharge, "
        "discharge not after today; read when the file has no `readmitted` column: `snapshot_date` = discharge, "
        "the outcome derived from the next admission (see below) | `readmitted` is required |"
    )
    lines.append(
        f"| `{CODE_SYSTEM_COLUMN}` | string | no | `icd9` or `icd10` (any case): the row's diagnosis code system, "
        "so one file may hold both | the file's system is declared or decided (`--diagnosis-codes`) |"
    )
    return "\n".join(lines) + "\n"


def absent_optional(header: list[str]) -> list[str]:
    """The optional columns the header lacks, in schema order."""
    return [name for name in RAW_SCHEMA if name in OPTIONAL_COLUMNS and name not in header]


def prepare_chunk(chunk: pl.DataFrame, absent: list[str]) -> pl.DataFrame:
    """An all-text chunk as the row checks expect it: absent optional columns filled with ``?``
    (missing), integer ages mapped to their UCI band."""
    age = pl.col("age")
    years = age.str.strip_chars().cast(pl.Int64, strict=False)
    band = (years // 10) * 10
    return chunk.with_columns(
        *[pl.lit("?").alias(name) for name in absent],
        pl.when(age.str.contains(_INTEGER_AGE))
        .then(pl.concat_str(pl.lit("["), band.cast(pl.String), pl.lit("-"), (band + 10).cast(pl.String), pl.lit(")")))
        .otherwise(age)
        .alias("age"),
    )
