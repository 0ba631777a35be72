"""The monitoring graph's gates: predictions exist for the months; a retrain is asked for.

Each returns a :class:`~readmit.checks.CheckResult` and never raises (Airflow's
ShortCircuitOperator skips what follows a failed gate).
"""

from __future__ import annotations

from readmit.checks import CheckResult
from readmit.config import Settings
from readmit.errors import ReadmitError


def check_predictions_exist(settings: Settings, *, start_month: str, end_month: str) -> CheckResult:
    """Every month of [start_month, end_month] has a ``gold/model_predictions`` partition."""
    from readmit.monitoring.monitor import prediction_months

    name = "check_predictions_exist"
    try:
        found, missing = prediction_months(settings, start_month, end_month)
    except ReadmitError as exc:
        return CheckResult(name, False, " ".join(str(exc).split()), {"error": type(exc).__name__})
    if missing:
        return CheckResult(
            name, False,
            f"no predictions for {', '.join(missing)}. Fix: score them first "
            f"(`readmit predict --start {missing[0]} --end {missing[-1]}`, or the diab_inference DAG)",
            {"missing": missing, "found": found},
        )
    return CheckResult(name, True, f"predictions exist for {start_month}..{end_month}", {"months": found})


def check_retrain_needed(settings: Settings) -> CheckResult:
    """The latest monitoring decision is ``retrain`` and ``monitoring_config.auto_retrain`` is set."""
    from readmit.monitoring.monitor import read_latest

    name = "check_retrain_needed"
    try:
        record = read_latest(settings)
    except (ReadmitError, ValueError) as exc:
        return CheckResult(name, False, f"cannot read the latest monitoring record ({exc})")
    action = record.decision.action if record else None
    if action != "retrain":
        return CheckResult(name, False, f"the decision is {action or 'not made yet'}: no retraining",
                           {"action": action})
    if not settings.config.monitoring_config.auto_retrain:
        return CheckResult(name, False, "the decision is retrain, but monitoring_config.auto_retrain is off: "
                           "a person decides (`readmit train` and `readmit compare`, or trigger diab_model_training)",
                           {"action": action})
    return CheckResult(name, True, "the decision is retrain and auto_retrain is on: starting training",
                       {"action": action, "reasons": record.decision.reasons})
