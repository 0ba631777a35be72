"""The gates of the inference graph: a champion exists and verifies; the months' gold exists.

Each returns a :class:`~readmit.checks.CheckResult` and never raises: a failed gate
skips the scoring (in Airflow the run ends *skipped*, not failed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from readmit.checks import CheckResult
from readmit.config import Settings
from readmit.errors import ReadmitError
from readmit.registry import Registry
from readmit.registry.aliases import get_alias
from readmit.storage import Storage


def _guarded(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    try:
        return check()
    except ReadmitError as exc:
        return CheckResult(name, False, " ".join(str(exc).split()), {"error": type(exc).__name__})
    except Exception as exc:  # a gate reports; it never crashes the run
        return CheckResult(name, False, f"the check could not run ({type(exc).__name__}: {exc})",
                           {"error": type(exc).__name__})


def check_champion(settings: Settings, **_: Any) -> CheckResult:
    """The champion alias is set and its artifact matches its sha256 (checked without unpickling)."""
    name = "check_champion"

    def check() -> CheckResult:
        registry = Registry.for_settings(settings)
        record = get_alias(registry, "champion")
        if record is None:
            return CheckResult(name, False, "no champion model yet. Fix: train and compare, then promote one "
                               "(`readmit promote`, or the promote step of diab_model_training)")
        meta = registry.verify(record["algorithm"], record["version"])
        return CheckResult(name, True, f"champion {record['algorithm']} v{record['version']} verifies "
                           f"(sha256 {meta['artifact']['sha256'][:12]}...)",
                           {"algorithm": record["algorithm"], "version": record["version"]})

    return _guarded(name, check)


def check_inference_gold(settings: Settings, start_month: str | None = None, end_month: str | None = None,
                         **_: Any) -> CheckResult:
    """Every month to score has a gold/feature_store partition (default: the latest month)."""
    from readmit.serving.predict import resolve_months

    name = "check_inference_gold"

    def check() -> CheckResult:
        months = resolve_months(Storage(settings.datamart_uri), start_month or None, end_month or None)
        span = months[0] if len(months) == 1 else f"{months[0]}..{months[-1]}"
        return CheckResult(name, True, f"gold exists for {span}", {"months": months})

    return _guarded(name, check)
