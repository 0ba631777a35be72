"""Scores made into probabilities: the tuned pipeline plus a calibrator fitted on data it did not fit.

:func:`fit_calibrated` fits, on the training window only:

1. the cross-fitted ("out-of-fold") scores: for each cross-validation fold (the same grouped
   folds the search used), the pipeline fitted on the fold's fitting part scores its held-out
   part, so every training row gets a score from a model that never saw its patient;
2. the pipeline once more on the whole training window: the model that is saved and served;
3. the calibrator (isotonic, or Platt's sigmoid on the log-odds) on the cross-fitted scores of
   the **last** ``recent_months`` months of the training window (0: all of it).

Why the last months: the patient-history features grow along the timeline (more earlier
encounters to count), so a score's meaning drifts; measured on the full UCI data, a calibrator
fitted on the whole 1999-2005 window left the later windows' observed/expected at 0.89-0.91, one
fitted on 2004-2005 at 0.98-0.99. Test and out-of-time rows never take part.

The saved :class:`CalibratedModel` holds one pipeline and one calibrator, so scoring costs one
prediction (and the reason codes read that one pipeline).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from readmit.errors import ReadmitInputError
from readmit.training.evaluate import logit

METHODS = ("isotonic", "sigmoid")
_EPS = 1e-9  # Platt's input: the raw score's log-odds, clipped this close to 0 and 1


class CalibratedModel(ClassifierMixin, BaseEstimator):
    """A fitted ``frame + prep + model`` pipeline whose scores go through a fitted calibrator.

    ``predict_proba(frame)[:, 1]`` is the calibrated P(readmitted within 30 days).
    """

    def __init__(self, pipeline: Any = None, calibrator: Any = None, method: str = "isotonic"):
        self.pipeline = pipeline
        self.calibrator = calibrator
        self.method = method

    @property
    def classes_(self) -> np.ndarray:
        return self.pipeline.classes_

    def calibrate(self, scores: np.ndarray) -> np.ndarray:
        """Raw positive-class scores of the pipeline -> calibrated probabilities."""
        scores = np.asarray(scores, dtype=np.float64)
        if self.method == "sigmoid":
            return self.calibrator.predict_proba(logit(scores, _EPS).reshape(-1, 1))[:, 1]
        return np.clip(self.calibrator.predict(scores), 0.0, 1.0)

    def predict_proba(self, X: Any) -> np.ndarray:
        p = self.calibrate(np.asarray(self.pipeline.predict_proba(X))[:, 1])
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


def fit_calibrator(scores: np.ndarray, y: np.ndarray, method: str) -> Any:
    """The calibrator ``method`` names, fitted on (raw score, label) pairs."""
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, y)
    if method == "sigmoid":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=1e6).fit(logit(scores, _EPS).reshape(-1, 1), y)
    raise ValueError(f"unknown calibration method {method!r} (use one of {', '.join(METHODS)})")


def _fit_and_score(pipe: Any, X: Any, y: np.ndarray, fit_rows: Any, held_out: Any) -> tuple[Any, np.ndarray]:
    fitted = clone(pipe).fit(X[fit_rows], y[fit_rows])
    scores = np.asarray(fitted.predict_proba(X[held_out]))[:, 1] if len(held_out) else np.empty(0)
    return fitted, scores


def fit_with_out_of_fold_scores(pipe: Any, X: Any, y: np.ndarray, folds: list,
                                n_jobs: int = 1) -> tuple[Any, np.ndarray, list[Any]]:
    """(the pipeline fitted on every row, every row's score from the pipeline fitted on the other
    folds' rows, the fitted fold pipelines): the fold fits and the final fit run side by side."""
    from joblib import Parallel, delayed

    everything = np.arange(len(y))
    jobs = [(everything, everything[:0]), *folds]
    done = Parallel(n_jobs=n_jobs)(delayed(_fit_and_score)(pipe, X, y, f, h) for f, h in jobs)
    scores = np.full(len(y), np.nan)
    for (_, held_out), (_, fold_scores) in zip(folds, done[1:], strict=True):
        scores[held_out] = fold_scores
    return done[0][0], scores, [fitted for fitted, _ in done[1:]]


def fit_calibrated(pipe: Any, X: Any, y: np.ndarray, folds: list, recent: np.ndarray, method: str,
                   n_jobs: int = 1) -> tuple[CalibratedModel, dict[str, Any]]:
    """Fit the pipeline on all of ``X`` and a calibrator on the cross-fitted scores of the ``recent``
    rows (a boolean mask); returns the model and what the calibrator was fitted on."""
    final, scores, _ = fit_with_out_of_fold_scores(pipe, X, y, folds, n_jobs)
    used = np.asarray(recent, dtype=bool) & ~np.isnan(scores)
    if not used.any() or y[used].min() == y[used].max():
        raise ReadmitInputError(
            f"the {int(used.sum())} calibration rows (the last months of the training window) hold one "
            "class only: a calibrator cannot be fitted on them",
            fix="raise training_config.calibration.recent_months (0 = the whole training window)")
    model = CalibratedModel(final, fit_calibrator(scores[used], y[used], method), method)
    info = {"rows": int(used.sum()), "positives": int(y[used].sum()), "mean_score": float(scores[used].mean())}
    return model, info
