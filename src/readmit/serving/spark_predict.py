"""Batch scoring on Spark: the verified model applied to Arrow batches on the executors.

``readmit predict --engine spark`` (or ``data_config.engine: spark``). The driver (this process)
resolves the months and loads and verifies the models exactly as the local path does
(:mod:`readmit.serving.predict`: sha256, and the HMAC signature when the registry is signed).
Spark reads the months' ``gold/feature_store`` partitions and every executor applies
:func:`readmit.serving.batch.score_batch`, the function the local path runs, to its Arrow
batches (``DataFrame.mapInArrow``); the models travel to the executors inside that function.

The result comes back through the datamart's scratch folder (:mod:`readmit.data.engines`):
Spark writes it partitioned by month, the driver reads one month at a time, sorts it as the
local path does and writes ``gold/model_predictions/snapshot_month=YYYY-MM`` through
:class:`readmit.storage.Storage` (atomic); the scratch folder is removed afterwards.

Each output group of rows of one month carries that group's count of category values never
seen in training on its first row (column ``_unseen``, JSON), so the summary counts them as the
local path does. The executors need readmit and the model's libraries installed, like the driver.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import narwhals as nw
import polars as pl

from readmit.config import InferenceSection, Settings
from readmit.data.engines import (
    MONTH_KEY,
    engine_uri,
    month_key,
    open_engine,
    read_month,
    scratch,
)
from readmit.data.layers import FEATURE_STORE
from readmit.months import month_number
from readmit.serving.batch import (
    PREDICTION_SCHEMA,
    SORT,
    Scored,
    ScoringModel,
    add_counts,
    check_features,
    keep_scorable,
    score_batch,
)
from readmit.storage import Storage

UNSEEN = "_unseen"  # JSON {feature: count} on the first row of each scored group, else null
SCORED_SCHEMA: dict[str, pl.DataType] = {**PREDICTION_SCHEMA, UNSEEN: pl.String()}  # one month, read back
OUTPUT_SCHEMA: dict[str, pl.DataType] = {**SCORED_SCHEMA, MONTH_KEY: pl.Int64()}  # what the executors return
_SPARK_DDL = {pl.Int64(): "BIGINT", pl.Date(): "DATE", pl.Float64(): "DOUBLE", pl.Boolean(): "BOOLEAN",
              pl.String(): "STRING", pl.List(pl.String()): "ARRAY<STRING>", pl.Datetime("us", "UTC"): "TIMESTAMP"}


def output_ddl() -> str:
    """The Spark schema of what the executors return (DDL), from OUTPUT_SCHEMA."""
    return ", ".join(f"`{name}` {_SPARK_DDL[dtype]}" for name, dtype in OUTPUT_SCHEMA.items())


@dataclass
class BatchScorer:
    """What ``mapInArrow`` runs on an executor: gold Arrow batches in, prediction batches out."""

    scorers: list[ScoringModel]
    inference: InferenceSection
    exclude_death_hospice: bool
    scored_at: datetime
    arrow_schema: Any  # the pyarrow schema Spark expects back

    def __call__(self, batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            frame = pl.from_arrow(batch)
            for (key,), group in frame.partition_by(MONTH_KEY, as_dict=True).items():
                kept = keep_scorable(group, self.exclude_death_hospice)
                if kept.height == 0:
                    continue
                unseen: dict[str, int] = {}
                out = score_batch(kept, self.scorers, self.inference, self.scored_at, unseen)
                marks = pl.Series(UNSEEN, [json.dumps(unseen)] + [None] * (out.height - 1), pl.String)
                out = out.with_columns(pl.lit(key, pl.Int64).alias(MONTH_KEY), marks).select(list(OUTPUT_SCHEMA))
                yield from out.to_arrow().cast(self.arrow_schema).to_batches()


def _unseen_total(marks: pl.Series) -> dict[str, int]:
    total: dict[str, int] = {}
    for text in marks.drop_nulls():
        add_counts(total, json.loads(text))
    return total


def score_on_spark(
    settings: Settings, storage: Storage, months: list[str], scorers: list[ScoringModel],
    features: tuple[list[str], list[str]], scored_at: datetime, progress: Callable[[str], None] | None,
) -> Scored:
    """Score ``months`` on Spark; yield (month, gold rows, sorted predictions, unseen counts) per month."""
    from pyspark.sql.pandas.types import to_arrow_schema

    with open_engine("spark", settings.config.data_config) as engine:
        spark = engine.native
        uris = [engine_uri(storage, storage.partition_path(FEATURE_STORE, m)) for m in months]
        gold = spark.read.parquet(*uris)
        check_features(pl.from_arrow(gold.limit(0).toArrow()), *features, storage.uri_of(FEATURE_STORE))
        gold = nw.from_native(gold).with_columns(month_key(nw.col("snapshot_date"))).to_native()
        rows = {r[MONTH_KEY]: r["count"] for r in gold.groupBy(MONTH_KEY).count().collect()}
        schema = spark.createDataFrame([], output_ddl()).schema
        scorer = BatchScorer(scorers, settings.config.inference_config,
                             settings.config.training_config.exclude_death_hospice, scored_at,
                             to_arrow_schema(schema, timezone=spark.conf.get("spark.sql.session.timeZone")))
        if progress is not None:
            progress(f"scoring {months[0]}..{months[-1]} on Spark")
        with scratch(storage) as rel:
            engine.write_by_month(nw.from_native(gold.mapInArrow(scorer, schema)), engine_uri(storage, rel))
            for month in months:
                if progress is not None:
                    progress(f"writing {month}")
                part = read_month(storage, rel, month, SCORED_SCHEMA)
                predictions = part.drop(UNSEEN).sort(*SORT)
                yield month, rows.get(month_number(month), 0), predictions, _unseen_total(part[UNSEEN])
