"""Gold: the feature store and the label store, one partition per silver month.

Patient history makes a month depend on every earlier month. To keep memory at
O(patients + one month) and to give the same result however the months are split into runs,
gold first folds the silver months strictly before the range into a compact per-patient state
(only the few columns history needs), then walks the range in month order: features for a month
come from (state + the month's own earlier rows), and the month is folded in afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from readmit.data.features import (
    FEATURE_COLUMNS,
    FLAG_COLUMNS,
    HISTORY_INPUT_COLUMNS,
    KEY_COLUMNS,
    empty_history,
    feature_frame,
    fold_history,
)
from readmit.data.layers import FEATURE_STORE, LABEL_STORE, SILVER_TABLE, LayerResult
from readmit.data.schema import RAW_SCHEMA
from readmit.data.silver import months_in_range
from readmit.errors import ReadmitInputError
from readmit.storage import Storage

SOURCE_COLUMN = "_source_sha256"  # the raw file a row came from (bronze lineage), kept in labels
LABEL_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, "readmitted", "label", SOURCE_COLUMN)
FEATURE_STORE_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *FEATURE_COLUMNS, *FLAG_COLUMNS)
# Months are read and computed together, up to 12 months or 200,000 rows, whichever comes first:
# few large steps for small data (speed), bounded memory for large data (O(patients + chunk)).
_CHUNK_MONTHS = 12
_CHUNK_ROWS = 200_000


def label_frame(silver: pl.DataFrame) -> pl.DataFrame:
    """The label-store rows: keys, the original ``readmitted``, ``label`` = readmitted == "<30"
    and the raw file's checksum (``_source_sha256``, null when silver has none), so a training
    window built from two different raw files can be told (gate ``check_single_source``)."""
    ordered = silver.sort("snapshot_date", "encounter_id", maintain_order=True)
    source = pl.col(SOURCE_COLUMN) if SOURCE_COLUMN in silver.columns else pl.lit(None, dtype=pl.String)
    return ordered.select(
        *KEY_COLUMNS,
        pl.col("readmitted"),
        (pl.col("readmitted") == "<30").cast(pl.Int8).alias("label"),
        source.cast(pl.String).alias(SOURCE_COLUMN),
    )


def history_before(storage: Storage, month: str) -> pl.DataFrame:
    """The patient-history state of every silver month strictly before ``month``."""
    state = empty_history()
    earlier = [m for m in storage.list_partitions(SILVER_TABLE) if m < month]
    for i in range(0, len(earlier), _CHUNK_MONTHS):
        chunk = earlier[i:i + _CHUNK_MONTHS]
        rows = storage.read_table(SILVER_TABLE, chunk, columns=list(HISTORY_INPUT_COLUMNS))
        state = fold_history(state, rows)
    return state


def _read_silver(storage: Storage, month: str) -> pl.DataFrame:
    silver = storage.read_partition(SILVER_TABLE, month)
    source = storage.uri_of(storage.partition_path(SILVER_TABLE, month))
    missing = [c for c in (*RAW_SCHEMA, "snapshot_date") if c not in silver.columns]
    if missing:
        raise ReadmitInputError(
            f"missing column(s) {', '.join(missing)}",
            source=source,
            fix=f"rebuild silver for this month (`readmit medallion --start {month} --end {month}`)",
        )
    dates = silver["snapshot_date"]
    if silver.height and not (dates.min().strftime("%Y-%m") == month == dates.max().strftime("%Y-%m")):
        raise ReadmitInputError(
            f"snapshot_date outside {month} (found {dates.min()}..{dates.max()})",
            source=source,
            fix=f"rebuild silver for this month (`readmit medallion --start {month} --end {month}`)",
        )
    return silver.select(*RAW_SCHEMA, "snapshot_date",
                         *([SOURCE_COLUMN] if SOURCE_COLUMN in silver.columns else []))


def _by_month(frame: pl.DataFrame, months: list[str]) -> dict[str, pl.DataFrame]:
    """Split ``frame`` by the month of snapshot_date; months without rows get an empty frame."""
    tagged = frame.with_columns(pl.col("snapshot_date").dt.strftime("%Y-%m").alias("_month"))
    parts = {key[0]: part.drop("_month") for key, part in tagged.partition_by("_month", as_dict=True).items()}
    return {m: parts.get(m, frame.clear()) for m in months}


def build_gold(
    storage: Storage,
    *,
    start_month: str | None = None,
    end_month: str | None = None,
    on_partition: Callable[[str], None] | None = None,
) -> LayerResult:
    """Write the FEATURE_STORE and LABEL_STORE partitions of every silver month in range.

    Months are processed in order, a few at a time (the history of a month only needs the
    state of the months before it), which gives exactly the same rows as one month at a time.
    """
    months = months_in_range(storage, SILVER_TABLE, start_month, end_month)
    result = LayerResult(layer="gold")
    state = history_before(storage, months[0])
    pending: dict[str, pl.DataFrame] = {}

    def flush() -> None:
        nonlocal state
        chunk = list(pending)
        silver = pl.concat(list(pending.values()), how="vertical")
        pending.clear()
        features = _by_month(feature_frame(silver.drop(SOURCE_COLUMN, strict=False), state), chunk)
        labels = _by_month(label_frame(silver), chunk)
        state = fold_history(state, silver.select(HISTORY_INPUT_COLUMNS))
        for month in chunk:
            storage.write_partition(FEATURE_STORE, month, features[month])
            storage.write_partition(LABEL_STORE, month, labels[month])
            result.partitions.append(month)
            result.rows_in += labels[month].height
            result.rows_out += labels[month].height
            if on_partition is not None:
                on_partition(month)

    for month in months:
        pending[month] = _read_silver(storage, month)
        if len(pending) >= _CHUNK_MONTHS or sum(f.height for f in pending.values()) >= _CHUNK_ROWS:
            flush()
    if pending:
        flush()
    later = [m for m in storage.list_partitions(FEATURE_STORE) if m > months[-1]]
    if later:
        # Their patient history was computed from these months as they were before this run.
        result.notes.append(
            f"{len(later)} later gold month(s) ({later[0]}..{later[-1]}) were not rebuilt; if silver "
            f"changed in {months[0]}..{months[-1]}, their patient history is stale: rebuild them with "
            f"`readmit medallion --layer gold --start {months[0]}`"
        )
    return result
