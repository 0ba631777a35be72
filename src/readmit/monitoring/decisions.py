"""Bands and the keep / watch / retrain decision of a monitoring run, with its reasons.

Stability bands of PSI and CSI (``monitoring_config``; defaults from Yurdakul & Naranjo, 2020):
``< psi_warning`` (0.1) stable, ``psi_warning .. psi_alert`` (0.25) watch, ``> psi_alert`` act.

``retrain`` when any of these holds on the run's months:

- observed ROC-AUC (mature months pooled) under ``min_auc``;
- observed ROC-AUC more than ``auc_drop_alert`` under the model's own test-window ROC-AUC;
- the score's PSI or any feature's CSI in the act band in some month;
- calibration off: observed/expected (mature months pooled) outside
  ``observed_expected_low .. observed_expected_high``.

``watch`` when none of those holds but a PSI/CSI is in the watch band, or the *estimated*
ROC-AUC of immature months would trip a floor (an estimate alone never triggers a retrain).
Otherwise ``keep``. Every reason names the value, the month(s) and the limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from readmit.config import MonitoringSection
from readmit.monitoring.record import Decision, MonthResult, Summary

MAX_LISTED = 5


def band(value: float | None, cfg: MonitoringSection) -> str | None:
    """``stable`` | ``watch`` | ``act`` for a PSI/CSI value (None stays None)."""
    if value is None:
        return None
    if value > cfg.psi_alert:
        return "act"
    if value >= cfg.psi_warning:
        return "watch"
    return "stable"


def _drift_reasons(months: list[MonthResult], cfg: MonitoringSection, wanted: str) -> list[str]:
    """One reason for the score and one for the features whose PSI/CSI falls in band ``wanted``."""
    limit = f"> {cfg.psi_alert}" if wanted == "act" else f"{cfg.psi_warning}-{cfg.psi_alert}"
    hits: dict[str, list[tuple[float, str]]] = {}
    for m in months:
        values = {"score": m.score_psi, **m.csi}
        for name, value in values.items():
            if band(value, cfg) == wanted:
                hits.setdefault(name, []).append((value, m.month))
    reasons = []
    if "score" in hits:
        found = hits.pop("score")
        top = max(found)
        reasons.append(f"score PSI in the {wanted} band ({limit}) in {len(found)} of {len(months)} month(s), "
                       f"max {top[0]:.3f} in {top[1]}")
    if hits:
        ranked = sorted(hits.items(), key=lambda kv: max(kv[1]), reverse=True)
        listed = ", ".join(f"{name} ({len(found)}/{len(months)} months, max {max(found)[0]:.3f} in {max(found)[1]})"
                           for name, found in ranked[:MAX_LISTED])
        more = f" and {len(ranked) - MAX_LISTED} more" if len(ranked) > MAX_LISTED else ""
        reasons.append(f"feature CSI in the {wanted} band ({limit}): {listed}{more}")
    return reasons


def _span(months: list[str]) -> str:
    return months[0] if len(months) == 1 else f"{months[0]}..{months[-1]}"


def decide(
    months: Sequence[MonthResult | Mapping[str, Any]],
    summary: Summary | Mapping[str, Any],
    cfg: MonitoringSection,
    *,
    test_auc: float | None,
) -> Decision:
    """The decision of a run: its action and the reasons.

    ``months`` are the record's months; ``summary`` holds the pooled ``observed`` (mature months)
    and ``estimated`` (immature months) metrics with their month lists (either may be given as
    their JSON).
    """
    months = [MonthResult.model_validate(m) for m in months]
    summary = Summary.model_validate(summary)
    retrain: list[str] = []
    watch: list[str] = []
    observed, estimated = summary.observed, summary.estimated
    if observed and observed.auc_roc is not None:
        span, value = _span(summary.mature_months), observed.auc_roc
        if value < cfg.min_auc:
            retrain.append(f"observed ROC-AUC {value:.3f} on {span} is under the floor min_auc {cfg.min_auc}")
        if test_auc is not None and test_auc - value > cfg.auc_drop_alert:
            retrain.append(f"observed ROC-AUC {value:.3f} on {span} is {test_auc - value:.3f} under the model's "
                           f"test ROC-AUC {test_auc:.3f} (auc_drop_alert {cfg.auc_drop_alert})")
    if observed and observed.observed_expected is not None:
        oe = observed.observed_expected
        if not cfg.observed_expected_low <= oe <= cfg.observed_expected_high:
            retrain.append(f"calibration off: observed/expected {oe:.2f} on {_span(summary.mature_months)} is "
                           f"outside {cfg.observed_expected_low}-{cfg.observed_expected_high}")
    retrain += _drift_reasons(months, cfg, "act")
    watch += _drift_reasons(months, cfg, "watch")
    if estimated and estimated.auc_roc is not None:
        span, value = _span(summary.immature_months), estimated.auc_roc
        if value < cfg.min_auc:
            watch.append(f"estimated ROC-AUC {value:.3f} on {span} (labels not mature yet) is under min_auc {cfg.min_auc}")
        elif test_auc is not None and test_auc - value > cfg.auc_drop_alert:
            watch.append(f"estimated ROC-AUC {value:.3f} on {span} (labels not mature yet) is {test_auc - value:.3f} "
                         f"under the test ROC-AUC {test_auc:.3f}")
    if retrain:
        return Decision(action="retrain", reasons=retrain + watch)
    if watch:
        return Decision(action="watch", reasons=watch)
    checked = [f"PSI/CSI under {cfg.psi_warning}"]
    if observed and observed.auc_roc is not None:
        checked.append(f"observed ROC-AUC {observed.auc_roc:.3f} within limits")
    if estimated and estimated.auc_roc is not None:
        checked.append(f"estimated ROC-AUC {estimated.auc_roc:.3f} within limits")
    return Decision(action="keep", reasons=["every check within its band: " + "; ".join(checked)])
