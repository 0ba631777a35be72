"""Scoring in one pass: the calibrated risk and the reason-code contributions from one encoding.

The straightforward way (:func:`readmit.training.predict_proba`, then
:func:`readmit.serving.reasons.contributions`) encodes the frame twice per fitted pipeline and,
for XGBoost, predicts from one matrix and builds a second ``DMatrix`` for the contributions. Here
each pipeline encodes the frame once and builds one ``DMatrix`` (with every core), and both the
probability and the contributions are read from it. The calibrated risk is then computed from
that probability the way the model's own ``predict_proba`` computes it (training's
``CalibratedModel.calibrate``), so it is the same number, not an approximation.

Why not the margin from the contributions (they add up to it, so the prediction would be free):
their float32 row sums differ from XGBoost's own margin by up to ~1e-6, so the risk would too. A
plain prediction from the shared ``DMatrix`` costs about a fifth of the contributions.

The one-pass path knows two shapes around an XGBoost ``Pipeline(frame, prep, model)``: training's
:class:`readmit.training.calibration.CalibratedModel` (one pipeline + its ``calibrate``) and the
bare pipeline (``calibration: none``). Any other model (logistic regression, random forest, a wrapper it does not know) is scored the
straightforward way. :class:`Scorer` also checks the one-pass risk against
``predict_proba`` on the first rows it scores, and scores the straightforward way if they differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from readmit.serving.reasons import (
    add_up,
    contributions,
    feature_names,
    row_count,
    xgboost_contributions,
    xgboost_matrix,
)
from readmit.training import predict_proba

CHECK_ROWS = 256  # rows of the first frame scored both ways by a Scorer
TOLERANCE = 1e-9  # largest difference in risk the check accepts


@dataclass(frozen=True)
class Part:
    """One fitted XGBoost pipeline and what makes its probability the calibrated one (None: nothing)."""

    pipeline: Any
    calibrate: Callable[[np.ndarray], np.ndarray] | None


def _is_xgboost_pipeline(obj: Any) -> bool:
    steps = getattr(obj, "named_steps", None)
    return steps is not None and {"frame", "model"} <= set(steps) and hasattr(steps["model"], "get_booster")


def one_pass_parts(model: Any) -> list[Part] | None:
    """The pipelines (and calibrators) of a model the one-pass path can score exactly, else None."""
    from readmit.training.calibration import CalibratedModel

    if _is_xgboost_pipeline(model):
        return [Part(model, None)]
    if type(model) is CalibratedModel:
        return [Part(model.pipeline, model.calibrate)] if _is_xgboost_pipeline(model.pipeline) else None
    return None


def iteration_range(estimator: Any) -> tuple[int, int]:
    """The trees ``XGBClassifier.predict_proba`` uses (all, or up to the best iteration).

    XGBoost's own private ``_get_iteration_range`` (xgboost 2.1-3.x; pyproject.toml bounds it
    ``<4``) when it has one, else :func:`public_iteration_range`, its rule written with the public
    ``best_iteration``; ``tests/serving/test_scoring.py`` fails when the private one goes or the two differ.
    """
    get = getattr(estimator, "_get_iteration_range", None)
    return tuple(get(None)) if get is not None else public_iteration_range(estimator)


def public_iteration_range(estimator: Any) -> tuple[int, int]:
    """(0, best iteration + 1) after early stopping, (0, 0) (every tree) otherwise or for ``gblinear``."""
    if getattr(estimator, "booster", None) == "gblinear":
        return (0, 0)
    try:
        return (0, int(estimator.best_iteration) + 1)
    except AttributeError:
        return (0, 0)


def _encoding_key(encoder: Any) -> tuple:
    vocabulary = getattr(encoder, "vocabulary_", {})
    return (type(encoder), tuple(encoder.numeric), tuple(encoder.categorical),
            tuple((col, tuple(values)) for col, values in sorted(vocabulary.items())))


def score_one_pass(parts: list[Part], frame: Any) -> tuple[np.ndarray, tuple[np.ndarray, list[str]]]:
    """(risk, (contributions, feature names)) of ``frame`` from one encoding per pipeline."""
    risk = np.zeros(row_count(frame), dtype=np.float64)
    total = None
    X, last_key = None, None
    for part in parts:
        pipe = part.pipeline
        encoder, estimator = pipe.named_steps["frame"], pipe.named_steps["model"]
        prep = pipe.named_steps.get("prep", "passthrough")
        key = _encoding_key(encoder)  # a pipeline whose encoder agrees with the last one's reuses it
        if key != last_key:
            X, last_key = None, key
            X = encoder.transform(frame)
        matrix = xgboost_matrix(estimator, prep.transform(X) if prep != "passthrough" else X)
        proba = estimator.get_booster().predict(matrix, iteration_range=iteration_range(estimator))
        total = add_up(total, xgboost_contributions(estimator, matrix))
        del matrix
        risk += proba if part.calibrate is None else part.calibrate(proba)
    risk /= len(parts)  # the mean over pipelines, summed from zero as scikit-learn sums it
    return risk, (total / len(parts), feature_names(parts[-1].pipeline))


def score_straightforward(model: Any, frame: Any) -> tuple[np.ndarray, tuple[np.ndarray, list[str]] | None]:
    """(risk, contributions or None): ``predict_proba`` and :func:`reasons.contributions`."""
    risk = np.asarray(predict_proba(model, frame), dtype=np.float64)
    return risk, (contributions(model, frame) if row_count(frame) else None)


class Scorer:
    """Scores frames with one model: one pass when its shape allows it (checked on first use)."""

    def __init__(self, model: Any):
        self.model = model
        self.parts = one_pass_parts(model)
        self.checked = False

    @property
    def method(self) -> str:
        return "one-pass" if self.parts is not None else "straightforward"

    def score(self, frame: Any) -> tuple[np.ndarray, tuple[np.ndarray, list[str]] | None]:
        """(risk, (contributions, names) or None when the model has no native contributions)."""
        if self.parts is None or row_count(frame) == 0:
            return score_straightforward(self.model, frame)
        risk, found = score_one_pass(self.parts, frame)
        if not self.checked:
            head = frame.head(CHECK_ROWS) if hasattr(frame, "head") else frame[:CHECK_ROWS]
            expected = np.asarray(predict_proba(self.model, head), dtype=np.float64)
            self.checked = True
            if not np.allclose(risk[: len(expected)], expected, rtol=0, atol=TOLERANCE):
                self.parts = None
                return score_straightforward(self.model, frame)
        return risk, found
