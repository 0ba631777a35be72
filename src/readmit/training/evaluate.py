"""Metrics of a scored window, the decision threshold, and ROC-AUC by month and by group.

The reference metric names (``accuracy``, ``precision``, ``recall``, ``f1``, ``auc_roc``) come
first; ``pr_auc`` (average precision), ``brier``, ``log_loss`` and ``gini`` (2 * AUC - 1) follow.
Hard-label metrics use one threshold, chosen on the test window (best F1, or the highest
threshold reaching the target recall) and applied unchanged to the out-of-time window.

A group (a month, an age band, a gender, a race) with fewer than ``MIN_GROUP_POSITIVES``
positives or no negatives gets ``auc_roc: null`` with its counts: an AUC on a handful of
positives is noise.

A risk score is a probability, so each window is also judged as one (``calibration``): the Brier
score beside the prevalence baseline (always predicting the window's positive rate) and the skill
over it, observed/expected events (calibration-in-the-large), the calibration slope (logistic
regression of the outcome on the score's logit; 1 is ideal, below 1 means over-confident) and
intercept (with the slope fixed at 1; 0 is ideal), the expected calibration error, and a
reliability table over ``RELIABILITY_BINS`` bins of equal count (deciles of predicted risk).

Confidence intervals (``ci``) come from a bootstrap that resamples **patients**, not rows: a
patient's encounters are correlated, so resampling rows would give intervals that are too narrow.
Each draw weights every encounter by how often its patient was drawn (:func:`patient_weights`,
the one patient bootstrap: the A/B report draws its resamples here too); ROC-AUC and Brier are
computed for all draws at once (rank-based AUC in numpy, :func:`weighted_auc`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl

MIN_GROUP_POSITIVES = 10
LEAKAGE_AUC = 0.75
RELIABILITY_BINS = 10
_EPS = 1e-6


def auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC-AUC of (y, p): :func:`weighted_auc` with every row weighing one (what
    ``sklearn.metrics.roc_auc_score`` computes, without its ~5 ms of input checks per call:
    permutation importance and the grouped AUCs call this hundreds of times). The larger label is
    the positive one; ``None`` when one class is missing."""
    y, p = np.asarray(y), np.asarray(p, dtype=np.float64)
    if y.size == 0 or y.min() == y.max():
        return None
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"auc: labels {y.shape} and scores {p.shape} must be one row each, the same length")
    if np.unique(y).size > 2:
        raise ValueError("auc: the labels hold more than two classes")
    if not np.isfinite(p).all():
        raise ValueError("auc: the scores hold NaN or infinity")
    # weights of one: the sums are counts, exact in float64
    return float(weighted_auc(y == y.max(), p, np.ones((1, y.size)))[0])


def choose_threshold(y: np.ndarray, p: np.ndarray, rule: str = "best_f1", target_recall: float = 0.5) -> float:
    """The probability cut-off: best F1 on (y, p), or the highest one with recall >= target."""
    from sklearn.metrics import precision_recall_curve

    if y.size == 0 or y.max() == 0:
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y, p)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    if rule == "target_recall":
        ok = np.flatnonzero(recall >= target_recall)
        return float(thresholds[ok[-1]]) if ok.size else float(thresholds[0])
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    return float(thresholds[int(np.argmax(f1))])


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    """Every metric of one window at ``threshold``."""
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        brier_score_loss,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
    )

    y = np.asarray(y).astype(int)
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    pred = (p >= threshold).astype(int)
    both = y.size > 0 and y.min() != y.max()
    roc = auc(y, p)
    return {
        "accuracy": float(accuracy_score(y, pred)) if y.size else None,
        "precision": float(precision_score(y, pred, zero_division=0)) if y.size else None,
        "recall": float(recall_score(y, pred, zero_division=0)) if y.size else None,
        "f1": float(f1_score(y, pred, zero_division=0)) if y.size else None,
        "auc_roc": roc,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "brier": float(brier_score_loss(y, p)) if y.size else None,
        "log_loss": float(log_loss(y, p, labels=[0, 1])) if y.size else None,
        "gini": None if roc is None else 2 * roc - 1,
        "threshold": float(threshold),
        "samples": int(y.size),
        "positives": int(y.sum()),
        "positive_rate": float(y.mean()) if y.size else None,
        "predicted_positive_rate": float(pred.mean()) if y.size else None,
    }


def grouped_auc(y: np.ndarray, p: np.ndarray, groups: list[Any] | np.ndarray,
                min_positives: int = MIN_GROUP_POSITIVES) -> dict[str, dict[str, Any]]:
    """ROC-AUC per group value; ``null`` with the counts when a group is too small to judge."""
    groups = np.asarray(["Missing" if g is None else str(g) for g in groups], dtype=object)
    out: dict[str, dict[str, Any]] = {}
    for value in sorted(set(groups.tolist())):
        mask = groups == value
        yy, pp = y[mask], p[mask]
        positives, n = int(yy.sum()), int(yy.size)
        enough = positives >= min_positives and positives < n
        out[value] = {
            "auc_roc": auc(yy, pp) if enough else None,
            "samples": n,
            "positives": positives,
            **({} if enough else {"note": f"fewer than {min_positives} positives or no negatives"}),
        }
    return out


def age_band(midpoint: Any) -> str:
    """``75`` -> ``"[70-80)"`` (age_midpoint back to the UCI age band)."""
    if midpoint is None or (isinstance(midpoint, float) and math.isnan(midpoint)):
        return "Missing"
    lo = int(midpoint) // 10 * 10
    return f"[{lo}-{lo + 10})"


def subgroup_columns(frame: pl.DataFrame) -> dict[str, list[Any]]:
    """The fairness slices available in a gold frame: age band, gender, race."""
    out: dict[str, list[Any]] = {}
    if "age" in frame.columns:
        out["age_band"] = frame["age"].to_list()
    elif "age_midpoint" in frame.columns:
        out["age_band"] = [age_band(v) for v in frame["age_midpoint"].to_list()]
    for col in ("gender", "race"):
        if col in frame.columns:
            out[col] = frame[col].to_list()
    return out


# -- calibration ------------------------------------------------------------------------------


def logit(p: np.ndarray, eps: float = _EPS) -> np.ndarray:
    """log(p / (1 - p)), with ``p`` clipped to [eps, 1 - eps] so 0 and 1 stay finite."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p / (1 - p))


def _loglik(z: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(y * z - np.logaddexp(0, z)))


def _logistic_fit(x: np.ndarray, y: np.ndarray, *, slope: bool) -> tuple[float, float]:
    """(intercept, slope) of ``y ~ a + b * x`` by damped Newton steps; ``slope=False`` fixes b = 1."""
    theta = np.array([0.0, 1.0])
    design = np.column_stack([np.ones_like(x), x])
    free = 2 if slope else 1
    current = _loglik(design @ theta, y)
    for _ in range(100):
        z = design @ theta
        mu = 0.5 * (1 + np.tanh(z / 2))  # the logistic function without overflow
        w = np.maximum(mu * (1 - mu), 1e-12)
        g = design[:, :free].T @ (y - mu)
        h = (design[:, :free] * w[:, None]).T @ design[:, :free]
        try:
            step = np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            return float("nan"), float("nan")
        scale = 1.0
        while scale > 1e-6:  # halve the step until the likelihood does not fall
            trial = theta.copy()
            trial[:free] += scale * step
            value = _loglik(design @ trial, y)
            if value >= current - 1e-12:
                break
            scale /= 2
        theta, current = trial, value
        if np.abs(scale * step).max() < 1e-9:
            break
    return float(theta[0]), float(theta[1])


def reliability_table(y: np.ndarray, p: np.ndarray, bins: int = RELIABILITY_BINS) -> list[dict[str, Any]]:
    """Observed rate against mean predicted risk in ``bins`` bins of equal count (tied scores stay together)."""
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], y[order]
    edges = np.unique(np.quantile(ps, np.linspace(0, 1, bins + 1)[1:-1]))
    which = np.searchsorted(edges, ps, side="right")
    rows = []
    for b in range(len(edges) + 1):
        mask = which == b
        if mask.any():
            rows.append({"bin": len(rows) + 1, "count": int(mask.sum()), "mean_predicted": float(ps[mask].mean()),
                         "observed_rate": float(ys[mask].mean())})
    return rows


def calibration_slope(y: np.ndarray, p: np.ndarray) -> float | None:
    """Slope of the logistic recalibration ``logit P(y=1) = a + b * logit(p)`` (1 = well
    calibrated; below 1 the scores are too extreme); None without both classes."""
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0 or y.min() == y.max():
        return None
    return _logistic_fit(logit(p), y, slope=True)[1]


def calibration_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """How far the scores are from probabilities (see the module doc)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if y.size == 0:
        return {}
    prevalence = float(y.mean())
    brier = float(np.mean((p - y) ** 2))
    baseline = prevalence * (1 - prevalence)
    table = reliability_table(y, p)
    both = 0 < prevalence < 1
    intercept = _logistic_fit(logit(p), y, slope=False)[0] if both else None
    slope = calibration_slope(y, p)
    return {
        "brier": brier,
        "brier_baseline": baseline,
        "brier_skill": (1 - brier / baseline) if baseline > 0 else None,
        "observed_expected": prevalence / float(p.mean()) if p.mean() > 0 else None,
        "slope": slope,
        "intercept": intercept,
        "ece": float(sum(r["count"] * abs(r["observed_rate"] - r["mean_predicted"]) for r in table) / y.size),
        "reliability": table,
    }


# -- patient bootstrap ------------------------------------------------------------------------


def weighted_auc(y: np.ndarray, p: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC-AUC of every row of ``weights`` (draws x rows): the weighted Mann-Whitney statistic;
    ties count one half."""
    order = np.argsort(p, kind="stable")
    ps, ys, ws = p[order], y[order].astype(bool), weights[:, order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    pos = np.add.reduceat(np.where(ys, ws, 0.0), starts, axis=1)
    neg = np.add.reduceat(np.where(ys, 0.0, ws), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    total = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos * (below + 0.5 * neg)).sum(axis=1) / total


def patient_weights(patients: np.ndarray, resamples: int, rng: np.random.Generator, *,
                    chunk: int = 50) -> Iterator[np.ndarray]:
    """The patient bootstrap, ``chunk`` draws at a time: weights (draws x rows) giving each row the
    number of times its patient was drawn, patients drawn with replacement as many as there are."""
    _, index = np.unique(np.asarray(patients), return_inverse=True)
    n_patients = int(index.max()) + 1 if index.size else 0
    for done in range(0, resamples, chunk):
        b = min(chunk, resamples - done)
        draws = rng.integers(0, n_patients, size=(b, n_patients))
        offsets = (np.arange(b)[:, None] * n_patients + draws).ravel()
        counts = np.bincount(offsets, minlength=b * n_patients).reshape(b, n_patients).astype(np.float64)
        yield counts[:, index]


def percentile_interval(values: np.ndarray, level: float = 0.95) -> list[float]:
    """The central ``level`` interval of the finite ``values`` (a draw can have no positive)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return [float("nan"), float("nan")]
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    return [float(np.quantile(v, lo)), float(np.quantile(v, hi))]


def bootstrap_ci(y: np.ndarray, p: np.ndarray, patients: np.ndarray, *, resamples: int = 300,
                 level: float = 0.95, seed: int = 0, chunk: int = 50) -> dict[str, Any]:
    """Percentile intervals of ROC-AUC and Brier over ``resamples`` draws of patients."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if y.size == 0 or y.min() == y.max():
        return {"auc_roc": None, "brier": None, "resamples": 0, "level": level, "unit": "patient"}
    aucs, briers = [], []
    sq = (p - y) ** 2
    for w in patient_weights(patients, resamples, np.random.default_rng(seed), chunk=chunk):
        aucs.append(weighted_auc(y, p, w))
        briers.append(w @ sq / w.sum(axis=1))
    return {"auc_roc": percentile_interval(np.concatenate(aucs), level),
            "brier": percentile_interval(np.concatenate(briers), level), "resamples": resamples, "level": level,
            "unit": "patient"}


# -- one window -------------------------------------------------------------------------------


def unseen_patients_metrics(frame: pl.DataFrame, y: np.ndarray, p: np.ndarray,
                            train_patients: pl.Series) -> dict[str, Any]:
    """ROC-AUC, Brier and calibration-in-the-large on the patients never seen in training."""
    seen = frame["patient_nbr"].is_in(train_patients.implode()).to_numpy()
    new = ~seen
    yy, pp = y[new], p[new]
    patients = frame["patient_nbr"]
    n_patients = patients.n_unique()
    unseen_patients = patients.filter(pl.Series(new)).n_unique()
    return {
        "samples": int(new.sum()),
        "positives": int(yy.sum()),
        "patients": int(unseen_patients),
        "share_of_patients": round(unseen_patients / n_patients, 4) if n_patients else None,
        "auc_roc": auc(yy, pp),
        "brier": float(np.mean((pp - yy) ** 2)) if yy.size else None,
        "observed_expected": float(yy.mean() / pp.mean()) if yy.size and pp.mean() > 0 else None,
    }


def evaluate_window(frame: pl.DataFrame, y: np.ndarray, p: np.ndarray, threshold: float,
                    *, by_month: bool = False, train_patients: pl.Series | None = None,
                    resamples: int = 0, level: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Metrics of one window, its calibration, ROC-AUC by month (optional) and by subgroup;
    with ``resamples``, patient-bootstrap intervals; with ``train_patients``, the metrics on the
    patients never seen in training."""
    result = binary_metrics(y, p, threshold)
    result["calibration"] = calibration_metrics(y, p)
    if resamples:
        result["ci"] = bootstrap_ci(y, p, frame["patient_nbr"].to_numpy(), resamples=resamples, level=level,
                                    seed=seed)
    if train_patients is not None:
        result["unseen_patients"] = unseen_patients_metrics(frame, y, p, train_patients)
    if by_month:
        months = frame["snapshot_date"].dt.strftime("%Y-%m").to_list()
        result["auc_roc_by_month"] = grouped_auc(y, p, months)
    result["auc_roc_by_group"] = {
        name: grouped_auc(y, p, values) for name, values in subgroup_columns(frame).items()
    }
    return result


def leakage_warnings(performance: dict[str, dict[str, Any]]) -> list[str]:
    """A warning for every window whose ROC-AUC is implausibly high for this data."""
    warnings = []
    for window, metrics in performance.items():
        value = metrics.get("auc_roc")
        if value is not None and value > LEAKAGE_AUC:
            warnings.append(
                f"{window} ROC-AUC {value:.3f} > {LEAKAGE_AUC}: honest models on this data reach "
                "0.64-0.68; treat this as leakage (a feature that knows the outcome) until shown otherwise"
            )
    return warnings


__all__ = [
    "LEAKAGE_AUC",
    "MIN_GROUP_POSITIVES",
    "age_band",
    "auc",
    "binary_metrics",
    "bootstrap_ci",
    "calibration_metrics",
    "calibration_slope",
    "choose_threshold",
    "evaluate_window",
    "grouped_auc",
    "leakage_warnings",
    "patient_weights",
    "percentile_interval",
    "reliability_table",
    "subgroup_columns",
    "unseen_patients_metrics",
    "weighted_auc",
]
