"""Batch inference: score gold/feature_store months with a registered model, write predictions.

For each month in order (memory holds one month, scored in chunks of ``inference_config.batch_size`` rows):

1. read the month's ``gold/feature_store`` partition and check it against the features the
   model was trained on (a missing column or a column of the wrong type is an input error
   naming them); encounters ending in death or hospice are left out when
   ``training_config.exclude_death_hospice`` is set (they cannot be readmitted), and counted;
2. pick the arm of every patient (:mod:`readmit.serving.ab`) when an A/B test is enabled and the
   champion is scoring; otherwise one model scores every row;
3. score: ``risk`` = :func:`readmit.training.predict_proba` (the model's calibrated probability),
   ``flag`` = risk >= the model's stored threshold, ``risk_band`` from
   ``inference_config.risk_bands``, ``top_reasons`` (:mod:`readmit.serving.reasons`); for
   XGBoost both come from one encoding and one ``DMatrix`` per fitted pipeline
   (:mod:`readmit.serving.scoring`, the same numbers);
4. write ``gold/model_predictions/snapshot_month=YYYY-MM/data.parquet`` atomically: a rerun
   replaces that month and nothing else.

Category values never seen in training are scored (the model's encoder gives them their own
code) and counted per feature in the summary.

With ``engine="spark"`` (``--engine spark``, or ``data_config.engine``) steps 1-3 run on Spark's
executors (:mod:`readmit.serving.spark_predict`) through :func:`readmit.serving.batch.score_batch`,
the function this module scores its chunks with, and step 4 is the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from readmit.config import Settings
from readmit.data.engines import ENGINES
from readmit.data.layers import FEATURE_STORE, PREDICTIONS
from readmit.errors import ArtifactError, ReadmitInputError
from readmit.months import months_between
from readmit.registry import Registry
from readmit.registry.aliases import get_alias, load_alias
from readmit.serving import ab
from readmit.serving.batch import (
    SORT,
    Scored,
    ScoringModel,
    check_features,
    keep_scorable,
    score_batch,
)
from readmit.storage import Storage


@dataclass
class MonthResult:
    month: str
    rows: int
    scored: int
    excluded_death_hospice: int
    mean_risk: float | None
    flagged: int
    bands: dict[str, int]
    arms: dict[str, int]
    unseen_categories: dict[str, int]
    path: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class PredictionResult:
    table: str
    scored_at: str
    models: list[dict[str, Any]]
    ab_test: dict[str, Any] | None
    engine: str = "polars"
    months: list[MonthResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        scored = sum(m.scored for m in self.months)
        risk_sum = sum((m.mean_risk or 0.0) * m.scored for m in self.months)
        unseen: dict[str, int] = {}
        arms: dict[str, int] = {}
        for m in self.months:
            for k, v in m.unseen_categories.items():
                unseen[k] = unseen.get(k, 0) + v
            for k, v in m.arms.items():
                arms[k] = arms.get(k, 0) + v
        return {
            "table": self.table,
            "scored_at": self.scored_at,
            "models": self.models,
            "ab_test": self.ab_test,
            "engine": self.engine,
            "rows": sum(m.rows for m in self.months),
            "scored": scored,
            "excluded_death_hospice": sum(m.excluded_death_hospice for m in self.months),
            "mean_risk": risk_sum / scored if scored else None,
            "flagged": sum(m.flagged for m in self.months),
            "arms": arms,
            "unseen_categories": unseen,
            "months": [m.as_dict() for m in self.months],
        }


# -- which months --------------------------------------------------------------------------------


def resolve_months(storage: Storage, start_month: str | None, end_month: str | None) -> list[str]:
    """Every calendar month from start to end (default: the latest gold month); each must have gold."""
    available = storage.list_partitions(FEATURE_STORE)
    if not start_month and not end_month:
        if not available:
            raise ReadmitInputError(
                "there is no gold to score", source=storage.uri_of(FEATURE_STORE),
                fix="build it first (`readmit medallion`), or check --datamart",
            )
        return [available[-1]]
    months = months_between(start_month or end_month, end_month or start_month)
    missing = [m for m in months if m not in set(available)]
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise ReadmitInputError(
            f"no gold for {shown} (gold/feature_store has no partition for "
            f"{'this month' if len(missing) == 1 else 'these months'})",
            source=storage.uri_of(FEATURE_STORE),
            fix=f"build it first: `readmit medallion --start {missing[0]} --end {missing[-1]}`",
        )
    return months


# -- which models --------------------------------------------------------------------------------


def resolve_models(
    settings: Settings, registry: Registry, alias: str | None, version: str | None
) -> tuple[list[ScoringModel], dict[str, Any] | None]:
    """The models that score (one, or champion + challenger under an A/B test) and the test state."""
    if version:
        meta = registry.metadata(version)
        model, meta = registry.load(meta["algorithm"], meta["version"])
        champion = get_alias(registry, "champion")
        is_champion = champion is not None and (champion["algorithm"], champion["version"]) == (
            meta["algorithm"], meta["version"])
        return [ScoringModel(model, meta, None, "champion" if is_champion else "challenger")], None
    alias = alias or "champion"
    model, meta, _ = load_alias(registry, alias)
    models = [ScoringModel(model, meta, alias, alias)]
    test = settings.config.inference_config.ab_test
    if alias != "champion" or not test.enabled:
        return models, None
    if get_alias(registry, "challenger") is None:
        raise ArtifactError(
            "inference_config.ab_test is enabled but there is no challenger",
            source=registry.location("aliases/challenger.json"),
            fix="name one (`readmit promote --candidate VERSION --as challenger`), or disable "
                "inference_config.ab_test",
        )
    c_model, c_meta, _ = load_alias(registry, "challenger")
    state = ab.start_or_check(registry, test)
    return [*models, ScoringModel(c_model, c_meta, "challenger", "challenger")], state


# -- scoring -------------------------------------------------------------------------------------


def score_month(
    frame: pl.DataFrame, scorers: list[ScoringModel], settings: Settings, scored_at: datetime,
    counted: dict[str, int],
) -> pl.DataFrame:
    """Score one month's (already filtered) rows in chunks of inference_config.batch_size, sorted by
    date and id."""
    inference = settings.config.inference_config
    size = inference.batch_size
    out = [score_batch(frame.slice(offset, size), scorers, inference, scored_at, counted)
           for offset in range(0, max(frame.height, 1), size)]
    return pl.concat(out).sort(*SORT)


def _counts(column: pl.Series) -> dict[str, int]:
    return {value: int(n) for value, n in column.value_counts(sort=True).iter_rows()}


def predict(
    settings: Settings,
    start_month: str | None = None,
    end_month: str | None = None,
    *,
    alias: str | None = None,
    version: str | None = None,
    engine: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> PredictionResult:
    """Score every month from ``start_month`` to ``end_month`` (default: the latest gold month).

    The model: ``version`` (a registry version), else ``alias`` (default ``champion``; with an
    enabled A/B test the champion and the challenger split the patients). ``engine`` (default
    ``data_config.engine``): ``spark`` scores on Spark's executors
    (:mod:`readmit.serving.spark_predict`); ``polars`` and ``duckdb`` score here, a month at a time.
    """
    storage = Storage(settings.datamart_uri)
    registry = Registry.for_settings(settings)
    if alias and version:
        raise ReadmitInputError("give either --alias or --model, not both", fix="drop one of them")
    engine = check_engine(engine or settings.config.data_config.engine)
    months = resolve_months(storage, start_month or None, end_month or None)
    scorers, test_state = resolve_models(settings, registry, alias, version)
    scored_at = datetime.now(UTC)
    numeric, categorical = scorers[0].features()
    for other in scorers[1:]:
        n2, c2 = other.features()
        numeric += [c for c in n2 if c not in numeric]
        categorical += [c for c in c2 if c not in categorical]
    result = PredictionResult(
        table=storage.uri_of(PREDICTIONS),
        scored_at=scored_at.isoformat(),
        models=[s.describe() for s in scorers],
        ab_test=None if test_state is None else {k: test_state.get(k) for k in ("salt", "challenger_share", "started_at")},
        engine=engine,
    )
    if engine == "spark":
        from readmit.serving.spark_predict import score_on_spark

        scored = score_on_spark(settings, storage, months, scorers, (numeric, categorical), scored_at, progress)
    else:
        scored = _score_here(settings, storage, months, scorers, (numeric, categorical), scored_at, progress)
    for month, rows, predictions, unseen in scored:
        storage.write_partition(PREDICTIONS, month, predictions)
        risk = predictions["risk"]
        result.months.append(MonthResult(
            month=month,
            rows=rows,
            scored=predictions.height,
            excluded_death_hospice=rows - predictions.height,
            mean_risk=float(risk.mean()) if predictions.height else None,
            flagged=int(predictions["flag"].sum()),
            bands=_counts(predictions["risk_band"]),
            arms=_counts(predictions["arm"]),
            unseen_categories=unseen,
            path=storage.uri_of(storage.partition_path(PREDICTIONS, month)),
        ))
    return result





def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ReadmitInputError(f"unknown engine {engine!r}", fix=f"use one of: {', '.join(ENGINES)}")
    return engine


def _score_here(
    settings: Settings, storage: Storage, months: list[str], scorers: list[ScoringModel],
    features: tuple[list[str], list[str]], scored_at: datetime, progress: Callable[[str], None] | None,
) -> Scored:
    """Each month in this process: read its gold partition, check it, score it in chunks."""
    exclude = settings.config.training_config.exclude_death_hospice
    for month in months:
        if progress is not None:
            progress(f"scoring {month}")
        source = storage.uri_of(storage.partition_path(FEATURE_STORE, month))
        frame = storage.read_partition(FEATURE_STORE, month)
        check_features(frame, *features, source)
        rows, frame = frame.height, keep_scorable(frame, exclude)
        unseen: dict[str, int] = {}
        predictions = score_month(frame, scorers, settings, scored_at, unseen)
        del frame  # not held while the caller writes this month and the next month is read
        yield month, rows, predictions, unseen


def predict_step(
    settings: Settings,
    start_month: str | None = None,
    end_month: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> PredictionResult:
    """The ``predict`` step of the inference graph: the champion (A/B when enabled) scores the months."""
    return predict(settings, start_month or None, end_month or None, progress=progress)
