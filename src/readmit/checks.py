"""The result every gate returns: the CLI prints it, Airflow's ShortCircuitOperator reads
``passed``, and tests assert on it.

The gates themselves live with what they check: :mod:`readmit.training.gates` (before training),
:mod:`readmit.serving.gates` (before scoring), :mod:`readmit.monitoring.gates` (before monitoring
and retraining).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class CheckResult:
    """One gate's verdict: ``reason`` says what is wrong and how to fix it when ``passed`` is False."""

    name: str
    passed: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
