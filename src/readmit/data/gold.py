"""Gold: the feature store and the label store, one partition per silver month.

Patient history makes a month depend on every earlier month. Gold first reads the few columns
history needs (``HISTORY_INPUT_COLUMNS``) of every silver month, then walks the months to build
in order, a few at a time: features for a month come from the month's rows and the history
rows of the other months (:func:`readmit.data.features.history_features`), so however the
months are split into runs the result is the same.

Backfills leave nothing stale. Each feature-store partition records, in its parquet key-value
metadata (``readmit.history_inputs``, written in the same atomic write as its rows), the
fingerprint of the history inputs of every silver month it was built from (those up to its
own month). A build compares these with the silver partitions as they are now: a LATER gold
month whose inputs changed (a backfill of earlier months, a silver rebuild that changed them)
is rebuilt in the same run, unless ``cascade=False``, which then refuses before writing anything.
A rebuild whose silver did not change rebuilds nothing later.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import narwhals as nw
import polars as pl

from readmit.config import DataSection
from readmit.data.features import (
    FEATURE_DTYPES,
    FLAG_COLUMNS,
    HISTORY_INPUT_COLUMNS,
    HISTORY_STATE_SCHEMA,
    KEY_COLUMNS,
    empty_history,
    feature_frame,
    fold_history,
    gold_features,
)
from readmit.data.layers import FEATURE_STORE, LABEL_STORE, SILVER_TABLE, LayerResult
from readmit.data.schema import RAW_SCHEMA
from readmit.data.silver import months_in_range
from readmit.errors import ReadmitInputError
from readmit.storage import Storage

SOURCE_COLUMN = "_source_sha256"  # the raw file a row came from (bronze lineage), kept in labels
INGESTED_COLUMN = "_ingested_at"  # when bronze read that file (bronze lineage, with SOURCE_COLUMN)
LEARNED_COLUMN = "label_learned_at"  # in labels: when readmit read the file that brought the outcome
LINEAGE = {SOURCE_COLUMN: pl.String(), INGESTED_COLUMN: pl.Datetime("us", "UTC")}
# The silver columns gold reads (and SOURCE_COLUMN where silver has it).
SILVER_SCHEMA: dict[str, pl.DataType] = {**RAW_SCHEMA, "snapshot_date": pl.Date()}
SILVER_COLUMNS: tuple[str, ...] = tuple(SILVER_SCHEMA)
# The stored schemas of the two gold tables.
FEATURE_SCHEMA: dict[str, pl.DataType] = {
    **{k: HISTORY_STATE_SCHEMA[k] for k in KEY_COLUMNS}, **FEATURE_DTYPES, **dict.fromkeys(FLAG_COLUMNS, pl.Boolean()),
}
LABEL_SCHEMA: dict[str, pl.DataType] = {
    **{k: HISTORY_STATE_SCHEMA[k] for k in KEY_COLUMNS}, "readmitted": pl.String(), "label": pl.Int8(),
    SOURCE_COLUMN: pl.String(), LEARNED_COLUMN: pl.Datetime("us", "UTC"),
}
# Parquet key-value metadata of a feature-store partition: {silver month: history fingerprint}.
HISTORY_INPUTS_KEY = "readmit.history_inputs"
UNRECORDED = "unrecorded"  # a partition written before readmit recorded its history inputs
# Months are read and computed together, up to 12 months or 200,000 rows, whichever comes first:
# few large steps for small data (speed), bounded memory for large data.
_CHUNK_MONTHS = 12
_CHUNK_ROWS = 200_000


def label_exprs() -> list[nw.Expr]:
    """The label-store columns after KEY_COLUMNS, on every engine: ``readmitted``, ``label`` and the source."""
    return [
        nw.col("readmitted"),
        (nw.col("readmitted") == "<30").cast(nw.Int8).alias("label"),
        nw.col(SOURCE_COLUMN).cast(nw.String),
        nw.col(INGESTED_COLUMN).alias(LEARNED_COLUMN),
    ]


def label_frame(silver: pl.DataFrame) -> pl.DataFrame:
    """The label-store rows: keys, the original ``readmitted``, ``label`` = readmitted == "<30"
    and the raw file's checksum (``_source_sha256``, null when silver has none), so a training
    window built from two different raw files can be told (gate ``check_single_source``)."""
    ordered = silver.sort("snapshot_date", "encounter_id", maintain_order=True)
    ordered = ordered.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in LINEAGE.items() if c not in ordered.columns)
    known = ordered.filter(pl.col("readmitted").is_not_null())  # the label store holds known outcomes only
    return nw.from_native(known).select(*KEY_COLUMNS, *label_exprs()).to_native()


def history_fingerprint(rows: pl.DataFrame) -> str:
    """sha256 of the history inputs of one silver month, whatever their row order.

    Only HISTORY_INPUT_COLUMNS count: a silver rebuild that changes other columns (lineage,
    diagnoses) leaves later months' history as it was.
    """
    ordered = rows.select(HISTORY_INPUT_COLUMNS).cast(HISTORY_STATE_SCHEMA).sort("encounter_id")
    records = ordered.to_numpy(structured=True)  # one record per row; a null is a NaN
    return hashlib.sha256(str(records.dtype).encode() + records.tobytes()).hexdigest()


def silver_history(storage: Storage, *, keep_rows: bool = True) -> tuple[dict[str, pl.DataFrame], dict[str, str]]:
    """The history inputs (HISTORY_INPUT_COLUMNS) of every silver month and their fingerprints, by month.

    ``keep_rows=False`` (DuckDB, Spark: the engine reads silver itself) keeps only each month's
    first and last snapshot_date, so the driver does not hold every row's history in memory.
    """
    history, fingerprints = {}, {}
    for month in storage.list_partitions(SILVER_TABLE):
        rows = storage.read_partition(SILVER_TABLE, month, columns=list(HISTORY_INPUT_COLUMNS))
        fingerprints[month] = history_fingerprint(rows)
        date = pl.col("snapshot_date")
        history[month] = rows if keep_rows else rows.select(pl.concat([date.min(), date.max()])).drop_nulls()
    return history, fingerprints


def recorded_history_inputs(storage: Storage, month: str) -> dict[str, str] | None:
    """The silver fingerprints a feature-store partition was built from (None if unrecorded)."""
    text = storage.partition_metadata(FEATURE_STORE, month).get(HISTORY_INPUTS_KEY)
    return json.loads(text) if text else None


def stale_months(
    storage: Storage, fingerprints: dict[str, str], after: str
) -> dict[str, list[str]]:
    """Built gold months later than ``after`` whose history inputs differ from silver now.

    Maps each such month to the silver months that changed since it was built (``[UNRECORDED]``
    when the partition predates the record). Gold months without a silver month are left alone.
    """
    stale: dict[str, list[str]] = {}
    for month in storage.list_partitions(FEATURE_STORE):
        if month <= after or month not in fingerprints:
            continue
        now = {m: fp for m, fp in fingerprints.items() if m <= month}
        built = recorded_history_inputs(storage, month)
        if built is None:
            stale[month] = [UNRECORDED]
        elif built != now:
            stale[month] = sorted(m for m in set(now) | set(built) if now.get(m) != built.get(m))
    return stale


def _check_silver(storage: Storage, month: str, columns: list[str], dates: pl.Series) -> None:
    """Refuse a silver partition without every column gold reads, or with rows of another month."""
    source = storage.uri_of(storage.partition_path(SILVER_TABLE, month))
    missing = [c for c in SILVER_COLUMNS if c not in columns]
    if missing:
        raise ReadmitInputError(
            f"missing column(s) {', '.join(missing)}",
            source=source,
            fix=f"rebuild silver for this month (`readmit medallion --start {month} --end {month}`)",
        )
    if len(dates) and not (dates.min().strftime("%Y-%m") == month == dates.max().strftime("%Y-%m")):
        raise ReadmitInputError(
            f"snapshot_date outside {month} (found {dates.min()}..{dates.max()})",
            source=source,
            fix=f"rebuild silver for this month (`readmit medallion --start {month} --end {month}`)",
        )



def _read_silver(storage: Storage, month: str) -> pl.DataFrame:
    silver = storage.read_partition(SILVER_TABLE, month)
    _check_silver(storage, month, silver.columns, silver["snapshot_date"])
    return silver.select(*SILVER_COLUMNS, *[c for c in LINEAGE if c in silver.columns])


def _by_month(frame: pl.DataFrame, months: list[str]) -> dict[str, pl.DataFrame]:
    """Split ``frame`` by the month of snapshot_date; months without rows get an empty frame."""
    tagged = frame.with_columns(pl.col("snapshot_date").dt.strftime("%Y-%m").alias("_month"))
    parts = {key[0]: part.drop("_month") for key, part in tagged.partition_by("_month", as_dict=True).items()}
    return {m: parts.get(m, frame.clear()) for m in months}


def _chunks(months: list[str], heights: dict[str, int]) -> list[list[str]]:
    """``months`` in runs of at most _CHUNK_MONTHS months and (about) _CHUNK_ROWS rows."""
    chunks: list[list[str]] = [[]]
    rows = 0
    for month in months:
        if chunks[-1] and (len(chunks[-1]) >= _CHUNK_MONTHS or rows + heights[month] > _CHUNK_ROWS):
            chunks.append([])
            rows = 0
        chunks[-1].append(month)
        rows += heights[month]
    return [c for c in chunks if c]


def _write_months(
    storage: Storage,
    months: list[str],
    history: dict[str, pl.DataFrame],
    fingerprints: dict[str, str],
    result: LayerResult,
    on_partition: Callable[[str], None] | None,
) -> None:
    """Build and write the gold partitions of ``months`` (sorted), a chunk at a time."""
    state, folded = empty_history(), set()

    def fold(chosen: list[str]) -> None:
        nonlocal state
        for month in chosen:
            state = fold_history(state, history[month])
        folded.update(chosen)

    for chunk in _chunks(months, {m: history[m].height for m in months}):
        # The history rows of every other month up to the chunk's last (later ones cannot count).
        fold([m for m in history if m <= chunk[-1] and m not in chunk and m not in folded])
        silver = pl.concat([_read_silver(storage, m) for m in chunk], how="vertical")
        features = _by_month(feature_frame(silver.drop(*LINEAGE, strict=False), state), chunk)
        labels = _by_month(label_frame(silver), chunk)
        for month in chunk:
            _write_month(storage, month, features[month], labels[month], fingerprints, result, on_partition)
        fold(chunk)


def _write_month(
    storage: Storage,
    month: str,
    features: pl.DataFrame,
    labels: pl.DataFrame,
    fingerprints: dict[str, str],
    result: LayerResult,
    on_partition: Callable[[str], None] | None,
) -> None:
    """Write one month's feature and label partitions, the features with their history inputs."""
    built_from = {m: fp for m, fp in fingerprints.items() if m <= month}
    storage.write_partition(FEATURE_STORE, month, features, metadata={HISTORY_INPUTS_KEY: json.dumps(built_from)})
    storage.write_partition(LABEL_STORE, month, labels)
    result.partitions.append(month)
    result.rows_in += features.height
    result.rows_out += features.height
    if unknown := features.height - labels.height:
        result.notes.append(f"{month}: {unknown} encounter(s) without a known outcome (blank readmitted): "
                            "in the feature store, not in the label store")
    if on_partition is not None:
        on_partition(month)


def _write_months_on_engine(
    engine: str,
    data_config: DataSection,
    storage: Storage,
    months: list[str],
    history: dict[str, pl.DataFrame],
    fingerprints: dict[str, str],
    result: LayerResult,
    on_partition: Callable[[str], None] | None,
) -> None:
    """The gold partitions of ``months`` computed by DuckDB (a year of months per query) or Spark (one query).

    The same definitions as the Polars path (:func:`readmit.data.features.gold_features`); the
    history pool is every silver month up to the last one of the query (later months cannot count).
    """
    from readmit.data.engines import engine_uri, month_key, open_engine, read_month, scratch

    sourced = []  # silver written before it kept the raw file's checksum has none: a null source
    for month in months:
        columns = storage.partition_columns(SILVER_TABLE, month)
        _check_silver(storage, month, columns, history[month]["snapshot_date"])
        if SOURCE_COLUMN in columns and INGESTED_COLUMN in columns:
            sourced.append(month)

    def uris(chosen: list[str]) -> list[str]:
        return [engine_uri(storage, storage.partition_path(SILVER_TABLE, m)) for m in chosen]

    with open_engine(engine, data_config) as eng, scratch(storage) as tmp:
        step = eng.months_per_query or len(months)
        for first in range(0, len(months), step):
            chosen, out = months[first:first + step], f"{tmp}/{first}-"  # engines create no parents
            parts = []
            if chosen_sourced := [m for m in chosen if m in sourced]:
                parts.append(eng.read_parquet(uris(chosen_sourced), {**SILVER_SCHEMA, **LINEAGE}))
            if chosen_unsourced := [m for m in chosen if m not in sourced]:
                parts.append(eng.read_parquet(uris(chosen_unsourced), SILVER_SCHEMA).with_columns(
                    nw.lit(None, dtype=nw.String).alias(SOURCE_COLUMN),
                    nw.lit(None, dtype=nw.Datetime("us", "UTC")).alias(INGESTED_COLUMN)))
            silver = parts[0] if len(parts) == 1 else nw.concat(parts, how="vertical")
            pool = eng.read_parquet(uris([m for m in history if m <= chosen[-1]]), HISTORY_STATE_SCHEMA)
            month = month_key(nw.col("snapshot_date"))
            features = gold_features(silver.select(*SILVER_COLUMNS), pool).with_columns(month)
            eng.write_by_month(features, engine_uri(storage, f"{out}features"))
            known = silver.filter(~nw.col("readmitted").is_null())  # known outcomes only
            eng.write_by_month(known.select(*KEY_COLUMNS, *label_exprs(), month), engine_uri(storage, f"{out}labels"))
            order = ["snapshot_date", "encounter_id"]
            for m in chosen:
                features = read_month(storage, f"{out}features", m, FEATURE_SCHEMA).sort(order)
                labels = read_month(storage, f"{out}labels", m, LABEL_SCHEMA).sort(order)
                _write_month(storage, m, features, labels, fingerprints, result, on_partition)


def build_gold(
    storage: Storage,
    *,
    start_month: str | None = None,
    end_month: str | None = None,
    months: list[str] | None = None,
    cascade: bool = True,
    on_partition: Callable[[str], None] | None = None,
    data_config: DataSection | None = None,
) -> LayerResult:
    """Write the FEATURE_STORE and LABEL_STORE partitions of every silver month in range (or of
    the silver ``months`` given: those an extract changed).

    ``data_config`` (default: the built-in defaults) chooses the engine (``engine``) and its
    settings; every engine writes the same partitions.

    Then rebuild every later gold month already built whose patient history came from silver
    that has changed since (see the module docstring); with ``cascade=False`` such months make
    the build refuse before it writes anything.
    """
    months = sorted(months) if months else months_in_range(storage, SILVER_TABLE, start_month, end_month)
    data_config = data_config or DataSection()
    history, fingerprints = silver_history(storage, keep_rows=data_config.engine == "polars")
    # Any built month after the first one chosen, not chosen itself, whose history changed.
    stale = {m: v for m, v in stale_months(storage, fingerprints, after=months[0]).items() if m not in months}
    if stale and not cascade:
        first, last = min(stale), max(stale)
        changed = sorted({m for ms in stale.values() for m in ms} - {UNRECORDED})
        why = [f"silver month(s) {', '.join(changed[:6])}{', ...' if len(changed) > 6 else ''} changed "
               "since they were built"] if changed else []
        if any(UNRECORDED in ms for ms in stale.values()):
            why.append("some carry no record of the silver they were built from")
        raise ReadmitInputError(
            f"{len(stale)} later gold month(s) ({first}..{last}) would keep a stale patient history: "
            f"{'; '.join(why)}",
            source=storage.uri_of(FEATURE_STORE),
            fix=f"allow the cascade (drop --no-cascade) or build gold from {months[0]} to {last} "
            "in one run",
        )
    result = LayerResult(layer="gold")
    if data_config.engine == "polars":
        _write_months(storage, sorted({*months, *stale}), history, fingerprints, result, on_partition)
    else:
        _write_months_on_engine(data_config.engine, data_config, storage, sorted({*months, *stale}), history,
                                fingerprints, result, on_partition)
    if stale:
        result.notes.append(
            f"rebuilt {len(stale)} later gold month(s) ({min(stale)}..{max(stale)}): their patient "
            "history was built from silver months that have changed since"
        )
    return result
