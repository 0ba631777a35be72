"""Outcomes derived from dates: an extract with admission and discharge dates and no ``readmitted``.

An EHR extract often has no outcome column, only each stay's ``admission_date`` and
``discharge_date``. The outcome follows from the patient's next admission (the first of their
other encounters admitted on or after this discharge), relative to the extract's *as-of date*,
the latest admission or discharge date the file holds (what the extract knows up to):

- next admission within 30 days of discharge: ``<30`` (known as soon as it happened);
- otherwise, once 30 days after discharge have passed by the as-of date (the label is mature):
  ``>30`` when a later admission is in the file, ``NO`` when none is;
- otherwise (discharged less than 30 days before the as-of date, no readmission yet): blank, an
  outcome not known yet.

Across extracts the stays add up: bronze keeps every dated stay (``bronze/_stays``), and each
dated extract applied derives the outcomes again over the stays of every extract, as of the latest
as-of date of them all (:func:`readmit.data.extracts.rederive_outcomes`). A patient's next
admission that arrives in the next month's extract turns the previous month's discharge into a
readmission, and a discharge left blank becomes ``NO`` once 30 days have passed by the newer as-of
date. An outcome once known is never blanked again.

``snapshot_date`` (the month an encounter belongs to) is the discharge date.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

ADMISSION = "admission_date"
DISCHARGE = "discharge_date"
DATE_COLUMNS = (ADMISSION, DISCHARGE)
HORIZON_DAYS = 30  # "readmitted within 30 days": the label and its maturity


def derives_outcomes(header: list[str]) -> bool:
    """Whether a file's outcome comes from its dates: no ``readmitted``, both date columns."""
    return "readmitted" not in header and all(c in header for c in DATE_COLUMNS)


def parse_date(text: pl.Expr) -> pl.Expr:
    """An ISO date (``YYYY-MM-DD``, a time after it ignored) or null."""
    return text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)


STAYS_SCHEMA: dict[str, pl.DataType] = {"encounter_id": pl.Int64(), "patient_nbr": pl.Int64(),
                                        ADMISSION: pl.Date(), DISCHARGE: pl.Date()}


def typed_stays(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` (``encounter_id``, ``patient_nbr``, the two dates, as text) typed as STAYS_SCHEMA;
    a value that does not parse is null."""
    return rows.select(
        pl.col("encounter_id").cast(pl.Int64, strict=False),
        pl.col("patient_nbr").cast(pl.Int64, strict=False),
        parse_date(pl.col(ADMISSION)).alias(ADMISSION),
        parse_date(pl.col(DISCHARGE)).alias(DISCHARGE),
    )


def latest_date(stays: pl.DataFrame) -> date | None:
    """The latest admission or discharge date of typed ``stays`` (None when it has none)."""
    return stays.select(pl.max_horizontal(pl.col(ADMISSION).max(), pl.col(DISCHARGE).max())).item()


def outcomes_of(stays: pl.DataFrame, as_of: date | None) -> pl.Series:
    """Each stay's ``readmitted`` text (``<30``, ``>30``, ``NO`` or ``""``), in row order, from the
    next admission among ``stays`` (typed, STAYS_SCHEMA: every stay known, of every extract) and
    maturity as of ``as_of``. A stay without a discharge date gets ``""``."""
    typed = stays.with_row_index("_at").rename(
        {"patient_nbr": "_patient", ADMISSION: "_admitted", DISCHARGE: "_discharged"})
    pool = typed.filter(pl.col("_patient").is_not_null() & pl.col("_admitted").is_not_null())
    pairs = typed.filter(pl.col("_discharged").is_not_null()).join(
        pool.select("_patient", pl.col("_at").alias("_other"), pl.col("_admitted").alias("_next")), on="_patient")
    nxt = pairs.filter((pl.col("_other") != pl.col("_at")) & (pl.col("_next") >= pl.col("_discharged"))) \
        .group_by("_at").agg(pl.col("_next").min())
    out = typed.join(nxt, on="_at", how="left").sort("_at")
    gap = (pl.col("_next") - pl.col("_discharged")).dt.total_days()
    mature = pl.col("_discharged") + timedelta(days=HORIZON_DAYS) <= pl.lit(as_of, dtype=pl.Date)
    label = (pl.when(pl.col("_discharged").is_null()).then(pl.lit(""))
             .when(gap <= HORIZON_DAYS).then(pl.lit("<30"))
             .when(mature & pl.col("_next").is_not_null()).then(pl.lit(">30"))
             .when(mature).then(pl.lit("NO"))
             .otherwise(pl.lit("")))
    return out.select(label.alias("readmitted")).to_series()


def derived_readmitted(rows: pl.DataFrame) -> tuple[pl.Series, date | None]:
    """Each row's ``readmitted`` text (``<30``, ``>30``, ``NO`` or ``""``) and the as-of date, from
    this file alone (``readmit data check``, and a first reading of an extract; the medallion then
    derives again over every extract applied, :func:`readmit.data.extracts.rederive_outcomes`).

    ``rows``: ``encounter_id``, ``patient_nbr``, ``admission_date``, ``discharge_date`` as text,
    in file order. A row whose dates do not parse gets ``""`` (its own row check refuses it).
    """
    stays = typed_stays(rows)
    as_of = latest_date(stays)
    return outcomes_of(stays, as_of), as_of


def date_problems() -> list[tuple[pl.Expr, pl.Expr]]:
    """The row rules of the date columns, as (condition, explanation), on a chunk's text."""
    admitted, discharged = parse_date(pl.col(ADMISSION)), parse_date(pl.col(DISCHARGE))
    today = date.today()
    return [
        (admitted.is_null(), pl.concat_str(pl.lit(f"{ADMISSION}: '"), pl.col(ADMISSION),
                                           pl.lit("' is not an ISO date (YYYY-MM-DD)"))),
        (discharged.is_null(), pl.concat_str(pl.lit(f"{DISCHARGE}: '"), pl.col(DISCHARGE),
                                             pl.lit("' is not an ISO date (YYYY-MM-DD)"))),
        (admitted > discharged, pl.concat_str(pl.lit(f"{ADMISSION} "), pl.col(ADMISSION),
                                              pl.lit(f" is after {DISCHARGE} "), pl.col(DISCHARGE))),
        (discharged > today, pl.concat_str(pl.lit(f"{DISCHARGE}: "), pl.col(DISCHARGE),
                                           pl.lit(f" is in the future (today is {today})"))),
    ]
