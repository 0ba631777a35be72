"""Performance per month when labels arrive late: observed where mature, estimated where not.

A 30-day readmission label is known only once the 30 days (``training_config.label_maturity_days``)
after discharge have passed. A month is *mature* on a date ``as_of`` when
``last day of the month + label_maturity_days <= as_of``; its predictions are then joined to
gold's labels and get observed ROC-AUC, PR-AUC, Brier score, observed/expected ratio (observed
positive rate / mean predicted risk) and calibration slope (the slope of a logistic regression
of the label on logit(risk): 1 is ideal, below 1 the scores are too extreme).

An immature month gets an **estimated** performance from the calibrated probabilities alone, in
the spirit of confidence-based performance estimation (CBPE, NannyML): if the risks are
calibrated, a row with risk ``p`` is a positive with probability ``p``. Sorting rows by risk,
the expected true positives above a cut are the sum of their ``p`` and the expected false
positives the sum of their ``1 - p``; that gives an expected ROC curve, and its area is the
expected ROC-AUC. The expected positive rate is the mean risk. Both hold only as far as the
model is calibrated on the month, which is what the observed/expected ratio of mature months
checks.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def expected_auc(p: np.ndarray) -> float | None:
    """The ROC-AUC to expect if ``p`` are calibrated probabilities of the positive class.

    Ties share their expected positives and negatives (the trapezoid between them).
    """
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        return None
    values, inverse = np.unique(p, return_inverse=True)  # ascending
    pos = np.bincount(inverse, weights=p)[::-1]  # descending risk
    neg = np.bincount(inverse, weights=1.0 - p)[::-1]
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        return None
    tpr = np.concatenate([[0.0], np.cumsum(pos) / total_pos])
    fpr = np.concatenate([[0.0], np.cumsum(neg) / total_neg])
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2))


def estimated_performance(p: np.ndarray) -> dict[str, Any]:
    p = np.asarray(p, dtype=np.float64)
    return {"auc_roc": expected_auc(p), "positive_rate": float(p.mean()) if p.size else None}


def observed_performance(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """ROC-AUC, PR-AUC, Brier, observed/expected and calibration slope of labelled rows."""
    from sklearn.metrics import average_precision_score, brier_score_loss

    from readmit.training.evaluate import auc, calibration_slope

    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=np.float64)
    both = y.size > 0 and y.min() != y.max()
    mean_p = float(p.mean()) if p.size else 0.0
    return {
        "auc_roc": auc(y, p),
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "brier": float(brier_score_loss(y, p)) if y.size else None,
        "observed_expected": float(y.mean() / mean_p) if y.size and mean_p > 0 else None,
        "slope": calibration_slope(y, p),
        "positives": int(y.sum()),
        "labelled": int(y.size),
    }
