"""The pipeline: the graph of steps, the local runner that walks it, and the registration of a model.

- :mod:`readmit.pipeline.graph` - every step, what it depends on, which steps are gates, and how
  a step is called by id (:func:`run_step`): what Airflow, a container and ``readmit run`` share.
- :mod:`readmit.pipeline.runner` - ``readmit run``: walks the graphs on this machine.
- :mod:`readmit.pipeline.register` - the one way a model enters the registry (artifact, metadata,
  reference profile, model card).

The command line reaches the layers only through this package (``tests/test_layers.py``). It
calls the layers' own functions under their own names (``pipeline.run_medallion`` is
:func:`readmit.data.medallion.run_medallion`), listed in :data:`LAYER_FUNCTIONS` and imported on
first use, so ``import readmit.pipeline`` (every ``readmit`` command, Airflow's DAG parser)
imports no layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from readmit.pipeline.graph import (
    CLI_FLAGS,
    GRAPHS,
    LOCAL_RUN,
    Graph,
    Step,
    call_step,
    find_step,
    get_graph,
    graph_steps,
    run_step,
    step_command,
    summarize,
)
from readmit.pipeline.register import train, train_algorithm
from readmit.pipeline.runner import (
    Observer,
    Outcome,
    default_parallel,
    monitor_months,
    preflight,
    progress_callback,
    retrain,
    run_graphs,
)

# module -> the functions (and the registry class) the command line calls from it
_LAYERS: dict[str, tuple[str, ...]] = {
    "readmit.data.fetch": ("fetch_uci",),
    "readmit.data.synth": ("write_synthetic",),
    "readmit.data.medallion": ("resolve_layers", "run_medallion"),
    "readmit.data.extract": ("check_extract",),
    "readmit.training.gates": ("run_checks", "invalid_config_results"),
    "readmit.training.compare": ("compare_models",),
    "readmit.registry": ("Registry",),
    "readmit.registry.aliases": ("get_aliases", "alias_history"),
    "readmit.serving.predict": ("predict",),
    "readmit.serving.history": ("build_history_store",),
    "readmit.service": ("serve",),
    "readmit.monitoring.monitor": ("run_monitoring",),
    "readmit.monitoring.ab": ("ab_report",),
    "readmit.governance.promote": ("promote", "rollback", "name_challenger"),
    "readmit.report": ("build_report", "model_card"),
    "readmit.months": ("check_month",),
}
LAYER_FUNCTIONS: dict[str, str] = {name: module for module, names in _LAYERS.items() for name in names}

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from readmit.data.extract import check_extract
    from readmit.data.fetch import fetch_uci
    from readmit.data.medallion import resolve_layers, run_medallion
    from readmit.data.synth import write_synthetic
    from readmit.governance.promote import name_challenger, promote, rollback
    from readmit.monitoring.ab import ab_report
    from readmit.monitoring.monitor import run_monitoring
    from readmit.months import check_month
    from readmit.registry import Registry
    from readmit.registry.aliases import alias_history, get_aliases
    from readmit.report import build_report, model_card
    from readmit.service import serve
    from readmit.serving.history import build_history_store
    from readmit.serving.predict import predict
    from readmit.training.compare import compare_models
    from readmit.training.gates import invalid_config_results, run_checks


def __getattr__(name: str) -> Any:
    """A name of :data:`LAYER_FUNCTIONS`, imported from its layer now (PEP 562)."""
    module = LAYER_FUNCTIONS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *LAYER_FUNCTIONS})


__all__ = [
    # the graph, the runner, the registration
    "CLI_FLAGS", "GRAPHS", "LAYER_FUNCTIONS", "LOCAL_RUN", "Graph", "Observer", "Outcome", "Step", "call_step",
    "default_parallel", "find_step", "get_graph", "graph_steps", "monitor_months", "preflight", "progress_callback",
    "retrain", "run_graphs", "run_step", "step_command", "summarize", "train", "train_algorithm",
    # LAYER_FUNCTIONS
    "Registry", "ab_report", "alias_history", "build_history_store", "build_report", "check_extract",
    "check_month", "compare_models", "fetch_uci", "get_aliases",
    "invalid_config_results", "model_card", "name_challenger", "predict", "promote", "resolve_layers", "rollback",
    "run_checks", "run_medallion", "run_monitoring", "serve", "write_synthetic",
]
