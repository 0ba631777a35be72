"""The scoring contract every engine runs: a batch of gold rows in, prediction rows out.

One definition of a prediction (:data:`PREDICTION_SCHEMA`, :func:`score_batch`) shared by the
local path (:mod:`readmit.serving.predict`, in chunks of one month) and Spark's executors
(:mod:`readmit.serving.spark_predict`, on Arrow batches), so neither imports the other. A row
is: ``risk`` = the model's calibrated probability (:mod:`readmit.serving.scoring`), ``flag`` =
risk >= the model's stored threshold, ``risk_band`` from ``inference_config.risk_bands``,
``top_reasons`` (:mod:`readmit.serving.reasons`), and which model scored it (algorithm, version,
alias, arm).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl

from readmit.config import InferenceSection
from readmit.data.features import DEATH_OR_HOSPICE, death_or_hospice
from readmit.errors import ReadmitInputError
from readmit.serving import ab
from readmit.serving.reasons import base_pipelines, reason_lists, reasons_available
from readmit.serving.scoring import Scorer
from readmit.training.split import FeatureSpec

KEYS = ("encounter_id", "patient_nbr", "snapshot_date")
SORT = ("snapshot_date", "encounter_id")  # the row order of a predictions partition
PREDICTION_SCHEMA: dict[str, pl.DataType] = {
    "encounter_id": pl.Int64(), "patient_nbr": pl.Int64(), "snapshot_date": pl.Date(), "risk": pl.Float64(),
    "flag": pl.Boolean(), "risk_band": pl.String(), "top_reasons": pl.List(pl.String()), "algorithm": pl.String(),
    "version": pl.String(), "alias": pl.String(), "arm": pl.String(), "scored_at": pl.Datetime("us", "UTC"),
}
PREDICTION_COLUMNS = tuple(PREDICTION_SCHEMA)
NULL_CATEGORY = "__null__"  # how the model's encoder names a missing category


@dataclass
class ScoringModel:
    """A loaded, verified model and where it scores: its alias (None for --model) and arm."""

    model: Any
    metadata: dict[str, Any]
    alias: str | None
    arm: str

    @cached_property
    def scorer(self) -> Scorer:
        return Scorer(self.model)

    @property
    def algorithm(self) -> str:
        return self.metadata["algorithm"]

    @property
    def version(self) -> str:
        return self.metadata["version"]

    @property
    def threshold(self) -> float:
        return float((self.metadata.get("threshold") or {}).get("value", 0.5))

    def features(self) -> tuple[list[str], list[str]]:
        """(numeric, categorical) the model was trained on: its metadata, else its encoder."""
        stored = self.metadata.get("features") or {}
        if stored.get("numeric") is not None and stored.get("categorical") is not None:
            return list(stored["numeric"]), list(stored["categorical"])
        pipes = base_pipelines(self.model)
        if pipes:
            encoder = pipes[0].named_steps["frame"]
            return list(encoder.numeric), list(encoder.categorical)
        spec = FeatureSpec.default()
        return list(spec.numeric), list(spec.categorical)

    def vocabulary(self) -> dict[str, list[str]]:
        """Every category value some fitted part of the model saw in training, per column."""
        seen: dict[str, list[str]] = {}
        for pipe in base_pipelines(self.model):
            for col, values in getattr(pipe.named_steps["frame"], "vocabulary_", {}).items():
                seen[col] = list(dict.fromkeys([*seen.get(col, []), *values]))
        return seen

    def vocabulary_sets(self) -> dict[str, frozenset[str]]:
        """:meth:`vocabulary` as sets, made once per loaded model (an online answer tests each row)."""
        return self._vocabulary_sets

    @cached_property
    def _vocabulary_sets(self) -> dict[str, frozenset[str]]:
        return {col: frozenset(values) for col, values in self.vocabulary().items()}

    def describe(self) -> dict[str, Any]:
        return {"arm": self.arm, "alias": self.alias, "algorithm": self.algorithm, "version": self.version,
                "threshold": self.threshold, "reasons": "native" if reasons_available(self.model) else "unavailable",
                "scoring": self.scorer.method}


# -- checks--------------------------------------------------------------------------------------


def check_features(frame: pl.DataFrame, numeric: list[str], categorical: list[str], source: str) -> None:
    """Raise naming every feature column that is missing or has a type the model cannot read."""
    missing = [c for c in (*numeric, *categorical) if c not in frame.columns]
    wrong = [f"{c} ({frame.schema[c]}, expected a number)" for c in numeric
             if c in frame.columns and not (frame.schema[c].is_numeric() or frame.schema[c] == pl.Null)]
    wrong += [f"{c} ({frame.schema[c]}, expected text)" for c in categorical
              if c in frame.columns and frame.schema[c] not in (pl.String, pl.Categorical, pl.Enum, pl.Null)]
    missing_keys = [c for c in KEYS if c not in frame.columns]
    problems = []
    if missing or missing_keys:
        problems.append(f"missing column(s) {', '.join(missing_keys + missing)}")
    if wrong:
        problems.append(f"column(s) of the wrong type: {', '.join(wrong)}")
    if problems:
        raise ReadmitInputError(
            "the feature store does not match what the model was trained on: " + "; ".join(problems),
            source=source,
            fix="rebuild gold with the readmit version that trained the model (`readmit medallion --layer gold`), "
                "or retrain on the current gold (`readmit train`)",
        )


def unseen_counts(frame: pl.DataFrame, vocabulary: dict[str, list[str]]) -> dict[str, int]:
    """Per categorical feature, the rows whose value was never seen in training (0s left out)."""
    if not vocabulary or frame.height == 0:
        return {}
    counts = frame.select(
        (~pl.col(c).cast(pl.String).fill_null(NULL_CATEGORY).is_in(vocab)).sum().alias(c)
        for c, vocab in vocabulary.items() if c in frame.columns
    ).row(0, named=True)
    return {k: int(v) for k, v in counts.items() if v}


def add_counts(total: dict[str, int], counts: dict[str, int]) -> None:
    """Add ``counts`` (per feature) into ``total``."""
    for k, v in counts.items():
        total[k] = total.get(k, 0) + v


def risk_band(risk: np.ndarray, cut_points: list[float], labels: list[str]) -> pl.Series:
    codes = np.searchsorted(np.asarray(cut_points), risk, side="right")
    return pl.Series("risk_band", np.asarray(labels, dtype=object)[codes], dtype=pl.String)


def keep_scorable(frame: pl.DataFrame, exclude_death_hospice: bool) -> pl.DataFrame:
    """The rows that are scored: encounters ending in death or hospice are left out when
    ``training_config.exclude_death_hospice`` is set (they cannot be readmitted)."""
    if exclude_death_hospice and DEATH_OR_HOSPICE in frame.columns:
        return frame.filter(~death_or_hospice())
    return frame


# -- scoring-------------------------------------------------------------------------------------


def score_frame(frame: pl.DataFrame, scorer: ScoringModel, bands: Any, scored_at: datetime) -> pl.DataFrame:
    """Prediction rows (PREDICTION_COLUMNS) for ``frame``, all scored by one model."""
    risk, found = scorer.scorer.score(frame)
    return frame.select(*KEYS).with_columns(
        pl.Series("risk", risk, dtype=pl.Float64),
        pl.Series("flag", risk >= scorer.threshold, dtype=pl.Boolean),
        risk_band(risk, bands.cut_points, bands.labels),
        reason_lists(found, frame.height),
        pl.lit(scorer.algorithm, pl.String).alias("algorithm"),
        pl.lit(scorer.version, pl.String).alias("version"),
        pl.lit(scorer.alias, pl.String).alias("alias"),
        pl.lit(scorer.arm, pl.String).alias("arm"),
        pl.lit(scored_at, pl.Datetime("us", "UTC")).alias("scored_at"),
    ).select(PREDICTION_COLUMNS)


def score_batch(
    frame: pl.DataFrame, scorers: list[ScoringModel], inference: InferenceSection, scored_at: datetime,
    counted: dict[str, int],
) -> pl.DataFrame:
    """Prediction rows for a batch of (already filtered) rows, in no particular order: the one
    definition of a prediction that every engine runs (here, and on Spark's executors).

    With two scorers (an A/B test) each patient's arm picks the model. Unseen category values
    are added to ``counted`` per feature.
    """
    if len(scorers) == 1:
        parts = [(scorers[0], frame)]
    else:
        mask = pl.Series(ab.challenger_mask(inference.ab_test, frame["patient_nbr"].to_numpy()))
        parts = [(scorers[0], frame.filter(~mask)), (scorers[1], frame.filter(mask))]
    out = []
    for scorer, part in parts:
        if part.height == 0:
            continue
        add_counts(counted, unseen_counts(part, scorer.vocabulary()))
        out.append(score_frame(part, scorer, inference.risk_bands, scored_at))
    if not out:
        return score_frame(frame.clear(), scorers[0], inference.risk_bands, scored_at)
    return pl.concat(out)


Scored = Iterator[tuple[str, int, pl.DataFrame, dict[str, int]]]  # (month, gold rows, predictions, unseen)
