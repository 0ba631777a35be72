"""Metrics of a scored window, the decision threshold, and ROC-AUC by month and by group.

The reference metric names (``accuracy``, ``precision``, ``recall``, ``f1``, ``auc_roc``) come
first; ``pr_auc`` (average precision), ``brier``, ``log_loss`` and ``gini`` (2 * AUC - 1) follow.
Hard-label metrics use one threshold, chosen on the test window (best F1, or the highest
threshold reaching the target recall) and applied unchanged to the out-of-time window.

A group (a month, an age band, a gender, a race) with fewer than ``MIN_GROUP_POSITIVES``
positives or no negatives gets ``auc_roc: null`` with its counts: an AUC on a handful of
positives is noise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

MIN_GROUP_POSITIVES = 10
LEAKAGE_AUC = 0.75


def auc(y: np.ndarray, p: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if y.size == 0 or y.min() == y.max():
        return None
    return float(roc_auc_score(y, p))


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


def evaluate_window(frame: pl.DataFrame, y: np.ndarray, p: np.ndarray, threshold: float,
                    *, by_month: bool = False) -> dict[str, Any]:
    """Metrics of one window, plus ROC-AUC by month (optional) and by subgroup."""
    result = binary_metrics(y, p, threshold)
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
    "choose_threshold",
    "evaluate_window",
    "grouped_auc",
    "leakage_warnings",
    "subgroup_columns",
]
