"""The figures the report computes from scores: curves, calibration, net benefit, groups, importance.

Pure functions of ``y`` (0/1 outcomes) and ``p`` (calibrated probabilities) — no I/O — so each
one is testable on a few numbers. Metrics already in a model's metadata are read from there, not
recomputed; these are what the metadata does not hold (whole curves, per-group flag rates).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from readmit.training.evaluate import MIN_GROUP_POSITIVES, auc, grouped_auc

CURVE_POINTS = 200  # points kept per curve: enough for a smooth line, small in the file
DECISION_THRESHOLDS = np.round(np.arange(0.01, 0.51, 0.01), 2)
SMALL_GROUP_ROWS = 100  # below this many rows a group's rates are too noisy to judge


def _thin(*arrays: np.ndarray, points: int = CURVE_POINTS) -> list[list[float]]:
    n = arrays[0].size
    keep = np.unique(np.linspace(0, n - 1, min(n, points)).round().astype(int)) if n else np.array([], int)
    return [np.asarray(a)[keep].astype(float).round(5).tolist() for a in arrays]


def roc_points(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """The ROC curve (false- and true-positive rates), thinned to ``CURVE_POINTS``."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    x, t = _thin(fpr, tpr)
    return {"fpr": x, "tpr": t, "auc_roc": auc(y, p)}


def pr_points(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """The precision-recall curve, thinned, and the prevalence (a random model's precision)."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, p)
    r, pr = _thin(recall[::-1], precision[::-1])
    return {"recall": r, "precision": pr, "pr_auc": float(average_precision_score(y, p)),
            "prevalence": float(np.mean(y))}


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Observed rate against mean predicted risk in ``bins`` equal-count bins (deciles of risk)."""
    order = np.argsort(p, kind="stable")
    out = []
    for i, idx in enumerate(np.array_split(order, bins)):
        if idx.size == 0:
            continue
        out.append({"bin": i, "count": int(idx.size), "mean_predicted": float(p[idx].mean()),
                    "observed_rate": float(y[idx].mean())})
    return out


def calibration_stats(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    """Observed/expected, calibration slope and intercept (logistic recalibration), ECE (10 bins)."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y).astype(int)
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    expected = float(p.sum())
    out: dict[str, float | None] = {
        "observed_expected": float(y.sum()) / expected if expected > 0 else None,
        "slope": None,
        "intercept": None,
        "ece": float(sum(b["count"] * abs(b["observed_rate"] - b["mean_predicted"])
                         for b in reliability(y, p)) / max(y.size, 1)),
    }
    if y.size and y.min() != y.max():
        logit = np.log(p / (1 - p)).reshape(-1, 1)
        fit = LogisticRegression(C=1e6, solver="lbfgs").fit(logit, y)
        out["slope"], out["intercept"] = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    return out


def score_histogram(y: np.ndarray, p: np.ndarray, bins: int = 40) -> dict[str, Any]:
    """Share of each outcome's patients per risk bin (so both outcomes are on one scale)."""
    top = float(np.quantile(p, 0.995)) if p.size else 1.0
    edges = np.linspace(0.0, max(top, 1e-3), bins + 1)
    out: dict[str, Any] = {"edges": edges.round(5).tolist()}
    for name, mask in (("readmitted", y == 1), ("not_readmitted", y == 0)):
        counts, _ = np.histogram(np.minimum(p[mask], edges[-1]), bins=edges)
        out[name] = (counts / max(int(mask.sum()), 1)).round(6).tolist()
    return out


def decision_thresholds(stored: float | None) -> np.ndarray:
    """0.01, 0.02, ... up to 0.50, or further when the stored threshold lies beyond (at most 0.95)."""
    top = min(0.95, max(0.5, (stored or 0) + 0.05))
    return np.round(np.arange(0.01, top + 1e-9, 0.01), 2)


def decision_curve(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray = DECISION_THRESHOLDS) -> dict[str, Any]:
    """Net benefit of flagging patients with risk >= t, of flagging everyone and no one.

    net benefit(t) = TP/n - FP/n * t/(1-t): the readmissions caught, less the needless follow-ups
    weighted by the odds at which a clinician is indifferent (Vickers & Elkin, 2006).
    """
    y = np.asarray(y).astype(int)
    n = max(y.size, 1)
    prevalence = float(y.mean()) if y.size else 0.0
    model, everyone = [], []
    for t in thresholds:
        odds = t / (1 - t)
        flagged = p >= t
        tp = int((flagged & (y == 1)).sum())
        fp = int((flagged & (y == 0)).sum())
        model.append(round(tp / n - fp / n * odds, 6))
        everyone.append(round(prevalence - (1 - prevalence) * odds, 6))
    return {"thresholds": [float(t) for t in thresholds], "model": model, "everyone": everyone}


def at_threshold(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    """What a stored threshold means per 100 patients: flagged, and readmissions caught."""
    y = np.asarray(y).astype(int)
    flagged = p >= threshold
    n_flagged = int(flagged.sum())
    caught = int((flagged & (y == 1)).sum())
    return {
        "threshold": float(threshold),
        "patients": int(y.size),
        "flagged": n_flagged,
        "flagged_per_100": 100.0 * n_flagged / max(y.size, 1),
        "caught_per_100_flagged": 100.0 * caught / n_flagged if n_flagged else None,
        "share_of_readmissions_caught": caught / int(y.sum()) if y.sum() else None,
    }


def group_table(y: np.ndarray, p: np.ndarray, groups: list[Any], threshold: float) -> list[dict[str, Any]]:
    """Per group: rows, readmissions, ROC-AUC, observed/expected, flag rate, and whether it is too small.

    ROC-AUC follows :func:`readmit.training.evaluate.grouped_auc` (null under
    ``MIN_GROUP_POSITIVES`` positives); a group is "small" under that or ``SMALL_GROUP_ROWS`` rows.
    """
    y = np.asarray(y).astype(int)
    labels = np.asarray(["Missing" if g is None else str(g) for g in groups], dtype=object)
    aucs = grouped_auc(y, p, labels)
    rows = []
    for value, info in aucs.items():
        mask = labels == value
        expected = float(p[mask].sum())
        rows.append({
            "group": value,
            "rows": info["samples"],
            "readmissions": info["positives"],
            "auc_roc": info["auc_roc"],
            "observed_expected": info["positives"] / expected if expected > 0 else None,
            "flag_rate": float((p[mask] >= threshold).mean()),
            "small": info["positives"] < MIN_GROUP_POSITIVES or info["samples"] < SMALL_GROUP_ROWS,
        })
    return sorted(rows, key=lambda r: -r["rows"])


def native_importance(model: Any, features: list[str]) -> dict[str, float] | None:
    """The estimator's own importance per input feature, when it has one per feature (trees)."""
    from readmit.training import fitted_pipelines

    # one pipeline in a calibrated model (one per fold in older ones: their importances averaged)
    estimators = [p.steps[-1][1] if hasattr(p, "steps") else p for p in fitted_pipelines(model)]
    found = [getattr(e, "feature_importances_", None) for e in estimators]
    if any(v is None or len(v) != len(features) for v in found):
        return None
    values = np.mean(found, axis=0)
    total = float(np.sum(values)) or 1.0
    return {f: float(v) / total for f, v in zip(features, values, strict=True)}


def permutation_importance(model: Any, frame: Any, y: np.ndarray, *, rows: int = 5000, repeats: int = 2,
                           seed: int = 42) -> dict[str, dict[str, float]]:
    """Drop in ROC-AUC when one feature's values are shuffled, on up to ``rows`` rows of ``frame``.

    ``model`` is a saved readmit Pipeline (``frame`` -> ``prep`` -> ``model``): the frame is encoded
    once, then each encoded column is shuffled and the rest of the pipeline scores the matrix.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(y).astype(int)
    take = np.sort(rng.choice(y.size, size=min(rows, y.size), replace=False))
    from readmit.training import fitted_pipelines

    model = fitted_pipelines(model)[0]  # a calibrated model: the pipeline inside it
    encoder, rest = model.steps[0][1], model[1:]
    X = encoder.transform(frame[take])
    yy = y[take]
    names = list(encoder.get_feature_names_out())
    base = auc(yy, rest.predict_proba(X)[:, 1])
    out: dict[str, dict[str, float]] = {}
    if base is None:
        return out
    for j, name in enumerate(names):
        drops = []
        for _ in range(repeats):
            shuffled = X.copy()
            shuffled[:, j] = rng.permutation(shuffled[:, j])
            drops.append(base - (auc(yy, rest.predict_proba(shuffled)[:, 1]) or base))
        out[name] = {"mean": float(np.mean(drops)), "std": float(np.std(drops))}
    return out
