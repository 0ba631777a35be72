"""Shared fixtures for the data-layer tests: real UCI rows shaped as bronze partitions."""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from readmit.data.layers import BRONZE_TABLE
from readmit.data.schema import RAW_SCHEMA
from readmit.storage import Storage

UCI_MEMBER = "dataset_diabetes/diabetic_data.csv"
FIRST_DAY = dt.date(1999, 1, 1)
LAST_DAY = dt.date(2008, 12, 31)


def with_snapshot_dates(df: pl.DataFrame) -> pl.DataFrame:
    """Spread encounters evenly over 1999-01-01..2008-12-31 in encounter_id order."""
    n_days = (LAST_DAY - FIRST_DAY).days + 1
    rank = pl.col("encounter_id").rank("ordinal").cast(pl.Int64) - 1
    day = (rank * n_days) // pl.len()
    return df.with_columns(
        (pl.lit(FIRST_DAY) + pl.duration(days=day)).cast(pl.Date).alias("snapshot_date")
    )


def to_bronze(raw: pl.DataFrame) -> pl.DataFrame:
    """All-string raw rows -> bronze: RAW_SCHEMA types, snapshot_date and lineage columns."""
    typed = raw.select([pl.col(c).cast(t) for c, t in RAW_SCHEMA.items()])
    return with_snapshot_dates(typed).with_columns(
        pl.lit("0" * 64).alias("_source_sha256"),
        pl.lit(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)).cast(pl.Datetime("us", "UTC")).alias("_ingested_at"),
    )


def write_monthly(storage: Storage, bronze: pl.DataFrame) -> list[str]:
    """Write ``bronze`` as one partition per month of snapshot_date; return the months."""
    months = bronze.with_columns(pl.col("snapshot_date").dt.strftime("%Y-%m").alias("_month"))
    written = []
    for (month,), part in months.partition_by("_month", as_dict=True, maintain_order=True).items():
        storage.write_partition(BRONZE_TABLE, month, part.drop("_month"))
        written.append(month)
    return sorted(written)


@pytest.fixture(scope="session")
def uci_bronze(uci_zip: Path) -> pl.DataFrame:
    """All 101,766 real UCI encounters as one bronze frame (fails, never skips, without the data)."""
    with zipfile.ZipFile(uci_zip) as zf:
        raw = pl.read_csv(zf.read(UCI_MEMBER), infer_schema=False, null_values=["?"])
    return to_bronze(raw)


@pytest.fixture(scope="session")
def uci_bronze_2y(uci_bronze: pl.DataFrame) -> pl.DataFrame:
    """The real encounters of 1999-2000 (about 20,000 rows, 24 months)."""
    return uci_bronze.filter(pl.col("snapshot_date") < dt.date(2001, 1, 1))


# A valid raw row (all strings, as read from the CSV); tests override what they need.
DEFAULT_ROW: dict[str, str | None] = {
    **{c: "No" for c in RAW_SCHEMA},
    "encounter_id": "1", "patient_nbr": "1", "race": "Caucasian", "gender": "Female",
    "age": "[70-80)", "weight": None, "admission_type_id": "1", "discharge_disposition_id": "1",
    "admission_source_id": "7", "time_in_hospital": "3", "payer_code": "MC",
    "medical_specialty": "InternalMedicine", "num_lab_procedures": "40", "num_procedures": "1",
    "num_medications": "12", "number_outpatient": "0", "number_emergency": "0",
    "number_inpatient": "1", "diag_1": "428", "diag_2": "250.83", "diag_3": "V57",
    "number_diagnoses": "9", "max_glu_serum": "None", "A1Cresult": "None", "change": "No",
    "diabetesMed": "Yes", "readmitted": "NO",
}


def make_bronze(rows: list[dict], snapshot_dates: list[dt.date] | None = None) -> pl.DataFrame:
    """A bronze frame from partial raw rows (strings or values) over DEFAULT_ROW.

    Without ``snapshot_dates`` all rows are dated 2001-01-15.
    """
    full = [{c: (None if row.get(c, DEFAULT_ROW[c]) is None else str(row.get(c, DEFAULT_ROW[c])))
             for c in RAW_SCHEMA} for row in rows]
    raw = pl.DataFrame(full, schema={c: pl.String for c in RAW_SCHEMA}, orient="row")
    typed = raw.select([pl.col(c).cast(t) for c, t in RAW_SCHEMA.items()])
    dates = snapshot_dates or [dt.date(2001, 1, 15)] * len(rows)
    return typed.with_columns(
        pl.Series("snapshot_date", dates, dtype=pl.Date),
        pl.lit("0" * 64).alias("_source_sha256"),
        pl.lit(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)).cast(pl.Datetime("us", "UTC")).alias("_ingested_at"),
    )


@pytest.fixture(name="bronze_rows", scope="session")
def bronze_rows_fixture() -> Callable[..., pl.DataFrame]:
    """:func:`make_bronze`, as a fixture (tests do not import conftest)."""
    return make_bronze


@pytest.fixture(name="write_bronze", scope="session")
def write_bronze_fixture() -> Callable[[Storage, pl.DataFrame], list[str]]:
    """:func:`write_monthly`, as a fixture."""
    return write_monthly
