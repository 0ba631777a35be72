"""The A/B report: champion vs challenger arms on predictions whose labels are mature.

Serving assigns each patient to one arm by a stable hash, so the arms are two disjoint groups of
patients, each scored by its own model. On the months whose labels are mature this report gives
each arm's ROC-AUC, Brier score and the precision / recall of its flag, and the difference
(challenger - champion) with a 95% confidence interval from a **patient-level bootstrap**: each
resample draws patients (with all their encounters) with replacement within each arm, because
encounters of one patient are not independent. The resamples are training's patient bootstrap
(:func:`readmit.training.evaluate.patient_weights`, ``training_config.bootstrap.resamples`` of
them): weights on the rows, so all of them are computed at once with array operations
(:func:`weighted_metrics`).

Verdict, on ROC-AUC: *challenger better* when the interval lies above 0, *challenger worse* when
it lies below, otherwise *not enough evidence yet*, with the number of patients still needed for
an interval of this width to exclude 0 at the observed difference (the width shrinks as
1/sqrt(patients)). A Brier interval that disagrees is reported in the reason.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import polars as pl

from readmit.config import Settings
from readmit.data.layers import LABEL, LABEL_STORE, PREDICTIONS
from readmit.errors import ReadmitInputError
from readmit.jsonsafe import jsonable
from readmit.monitoring.monitor import read_predictions, write_record
from readmit.months import is_mature, months_between
from readmit.runtime import Progress
from readmit.storage import Storage
from readmit.training.evaluate import patient_weights, percentile_interval, weighted_auc

ARMS = ("champion", "challenger")
METRICS = ("auc_roc", "brier", "precision", "recall")
LATEST = "latest_ab_report.json"
Z95 = 1.959964
_CELLS_PER_CHUNK = 4_000_000  # bootstrap weights held at once (rows x resamples)


def weighted_metrics(p: np.ndarray, y: np.ndarray, flag: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    """ROC-AUC, Brier, precision and recall of rows weighted by each row of ``w`` (resamples x rows).

    ROC-AUC is training's weighted Mann-Whitney statistic (:func:`~readmit.training.evaluate.weighted_auc`).
    """
    w = np.atleast_2d(w).astype(np.float64)
    ys, fs = np.asarray(y, dtype=np.float64), np.asarray(flag, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        brier = w @ (np.asarray(p, dtype=np.float64) - ys) ** 2 / w.sum(axis=1)
        true_flags = w @ (fs * ys)
        precision = true_flags / (w @ fs)
        recall = true_flags / (w @ ys)
    return {"auc_roc": weighted_auc(ys, np.asarray(p, dtype=np.float64), w), "brier": brier,
            "precision": precision, "recall": recall}


def _bootstrap(arm: pl.DataFrame, samples: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each metric on ``samples`` patient-level resamples of one arm."""
    p, y = arm["risk"].to_numpy(), arm[LABEL].to_numpy()
    flag = arm["flag"].to_numpy()
    chunk = max(1, _CELLS_PER_CHUNK // max(arm.height, 1))
    parts: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
    for w in patient_weights(arm["patient_nbr"].to_numpy(), samples, rng, chunk=chunk):
        for name, values in weighted_metrics(p, y, flag, w).items():
            parts[name].append(values)
    return {m: np.concatenate(v) for m, v in parts.items()}


def _arm_summary(arm: pl.DataFrame) -> dict[str, Any]:
    point = weighted_metrics(arm["risk"].to_numpy(), arm[LABEL].to_numpy(), arm["flag"].to_numpy(),
                             np.ones(arm.height))
    models = arm.group_by("algorithm", "version").len().sort("len", descending=True)
    top = models.row(0, named=True)
    return {
        "algorithm": top["algorithm"],
        "version": str(top["version"]),
        "patients": arm["patient_nbr"].n_unique(),
        "rows": arm.height,
        "positives": int(arm[LABEL].sum()),
        **{m: float(point[m][0]) for m in METRICS},
    }


def verdict(diff: float, low: float, high: float, se: float, patients: int) -> dict[str, Any]:
    """The A/B verdict from the ROC-AUC difference and its 95% interval."""
    if low > 0:
        return {"verdict": "challenger better", "patients_needed": 0}
    if high < 0:
        return {"verdict": "challenger worse", "patients_needed": 0}
    needed = None
    if diff != 0 and se > 0:
        needed = max(0, math.ceil(patients * (Z95 * se / abs(diff)) ** 2) - patients)
    return {"verdict": "not enough evidence yet", "patients_needed": needed}


def ab_report(
    settings: Settings,
    *,
    start_month: str | None = None,
    end_month: str | None = None,
    as_of: date | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Compare the arms on mature months of [start_month, end_month] (default: every scored month)."""
    as_of = as_of or date.today()
    cfg = settings.config
    storage = Storage(settings.datamart_uri)
    stored = storage.list_partitions(PREDICTIONS)
    wanted = months_between(start_month or (stored[0] if stored else "1999-01"),
                            end_month or (stored[-1] if stored else "1999-01"))
    maturity = cfg.training_config.label_maturity_days
    months = [m for m in wanted if m in set(stored) and is_mature(m, as_of, maturity)]
    labelled_months = [m for m in months if m in set(storage.list_partitions(LABEL_STORE))]
    if not labelled_months:
        raise ReadmitInputError(
            f"no scored month with mature labels (as of {as_of}, label_maturity_days {maturity})",
            source=storage.uri_of(PREDICTIONS),
            fix="score earlier months (`readmit predict --start YYYY-MM --end YYYY-MM`) or wait until "
                "their labels mature; `--as-of` sets the date",
        )
    if progress:
        progress(f"reading predictions and labels of {len(labelled_months)} month(s)")
    predictions = read_predictions(storage, labelled_months)
    labels = storage.read_table(LABEL_STORE, labelled_months, columns=["encounter_id", LABEL])
    rows = predictions.join(labels.unique("encounter_id"), on="encounter_id", how="inner").filter(
        pl.col(LABEL).is_not_null())
    empty = [a for a in ARMS if "arm" not in rows.columns or rows.filter(pl.col("arm") == a).height == 0]
    if empty:
        raise ReadmitInputError(
            f"no labelled {' or '.join(empty)} arm in the predictions of {labelled_months[0]}..{labelled_months[-1]}",
            source=storage.uri_of(PREDICTIONS),
            fix="name a challenger (`readmit promote --candidate VERSION --as challenger`), enable "
                "inference_config.ab_test and rescore the months (`readmit predict`)",
        )
    arms = {a: rows.filter(pl.col("arm") == a) for a in ARMS}
    summary = {a: _arm_summary(frame) for a, frame in arms.items()}
    samples = cfg.training_config.bootstrap.resamples
    if progress:
        progress(f"patient-level bootstrap, {samples} resamples")
    rng = np.random.default_rng(cfg.model.random_state)
    boots = {a: _bootstrap(frame, samples, rng) for a, frame in arms.items()}
    difference = {}
    for m in METRICS:
        delta = boots["challenger"][m] - boots["champion"][m]
        delta = delta[np.isfinite(delta)]
        low, high = percentile_interval(delta, 0.95)
        difference[m] = {"value": summary["challenger"][m] - summary["champion"][m], "ci95": [float(low), float(high)],
                         "se": float(delta.std(ddof=1)) if delta.size > 1 else None}
    patients = sum(s["patients"] for s in summary.values())
    auc = difference["auc_roc"]
    outcome = verdict(auc["value"], *auc["ci95"], auc["se"] or 0.0, patients)
    reason = (f"ROC-AUC difference {auc['value']:+.4f} (95% CI {auc['ci95'][0]:+.4f} to {auc['ci95'][1]:+.4f}) "
              f"on {patients} patients")
    brier = difference["brier"]
    if outcome["verdict"] == "challenger better" and brier["ci95"][0] > 0:
        reason += f"; but its Brier score is worse ({brier['value']:+.4f}, CI above 0)"
    if outcome["patients_needed"]:
        reason += f"; about {outcome['patients_needed']} more patients for the interval to exclude 0"
    run_at = datetime.now(UTC)
    report = jsonable({
        "run_at": run_at.isoformat(),
        "as_of": as_of.isoformat(),
        "months": labelled_months,
        "bootstrap": {"samples": samples, "unit": "patient", "seed": cfg.model.random_state},
        "arms": summary,
        "difference": difference,
        **outcome,
        "reason": reason,
    })
    return write_record(settings, "ab_report", LATEST, run_at, report)
