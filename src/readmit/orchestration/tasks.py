"""What an Airflow task runs, in the worker or in a container. Nothing here imports Airflow.

In the worker, the settings come from the worker's environment (``READMIT_CONFIG``,
``READMIT_DATAMART_URI``, ``READMIT_REGISTRY_URI``, ``READMIT_RAW``), read when the task runs.
A container gets the same variables (:func:`container_env`) and runs
``readmit step run STEP_ID`` (:func:`container_command`), which calls the same
:func:`readmit.pipeline.run_step`.
"""

from __future__ import annotations

import logging
from typing import Any

from readmit.config import Settings, from_env, load_settings
from readmit.errors import ConfigError, ReadmitInputError
from readmit.pipeline import (
    Graph,
    Step,
    call_step,
    find_step,
    progress_callback,
    run_step,
    step_command,
    summarize,
)
from readmit.storage import is_remote

log = logging.getLogger(__name__)

def _log_locations(settings: Settings) -> None:
    """Where this task reads and writes (local paths already made absolute by load_settings)."""
    log.info("datamart: %s  registry: %s", settings.datamart_uri, settings.registry_uri)


def run_gate(step_id: str, step_params: dict[str, Any] | None = None) -> bool:
    """A ShortCircuitOperator's callable: run the gate, log its reason, return whether it passed.

    A config that became invalid after the DAG was parsed fails the gate (downstream skipped)
    instead of crashing the task. ``step_params`` are the rendered run-time parameters (a month
    range), passed to gates that take them.
    """
    try:
        settings = load_settings()
    except ConfigError as exc:
        log.warning("gate %s FAILED: %s -- skipping everything downstream", step_id, " ".join(str(exc).split()))
        return False
    _log_locations(settings)
    result = run_step(step_id, settings, **(step_params or {}))
    if result.passed:
        log.info("gate %s passed: %s", step_id, result.reason)
    else:
        log.warning("gate %s FAILED: %s -- skipping everything downstream", step_id, result.reason)
    if result.details:
        log.info("details: %s", summarize(result.details))
    return bool(result.passed)


def run_task(step_id: str, step_params: dict[str, Any] | None = None) -> Any:
    """A PythonOperator's callable: run the step; its JSON-safe result goes to XCom.

    ``step_params`` are the rendered run-time parameters (no ``**kwargs`` here: Airflow would
    pass the whole task context through them).
    """
    settings = load_settings()
    _log_locations(settings)
    _, step = find_step(step_id, settings)
    progress = progress_callback(step, log.info)
    result = summarize(call_step(step, settings, **(step_params or {}), progress=progress))
    log.info("step %s finished: %s", step_id, result)
    return result


def templated_params(graph: Graph, settings: Settings) -> dict[str, str]:
    """Each run-time parameter as a Jinja template reading the DAG run's params."""
    return {name: f"{{{{ params.{name} }}}}" for name in graph.runtime_params(settings)}


def container_command(step: Step, graph: Graph, settings: Settings) -> list[str]:
    """The arguments after the image's ``readmit`` entrypoint (Jinja-templated month range)."""
    return step_command(step, templated_params(graph, settings))


def container_env(settings: Settings) -> dict[str, str]:
    """The environment that reproduces ``settings`` in a container; every location must be remote.

    A container has no access to the Airflow machine's disk: a local datamart or registry would
    be written inside the container and lost when it stops.
    """
    env = settings.env()
    local = {k: v for k, v in env.items() if not is_remote(v)}
    if local:
        listing = ", ".join(f"{k}={v}" for k, v in sorted(local.items()))
        raise ReadmitInputError(
            f"container executor modes need remote locations, got local {listing}",
            fix="set these variables to s3:// URIs where the Airflow DAG processor runs "
                "(or use READMIT_EXECUTOR=local)",
        )
    return env


def env_value(*names: str, default: str | None = None, required: bool = False) -> str | None:
    """The first environment variable of ``names`` that is set (the readmit name first)."""
    value = from_env(names)
    if value:
        return value
    if required and default is None:
        raise ReadmitInputError(
            f"environment variable {names[0]} is not set",
            fix=f"set {names[0]} where the Airflow DAG processor and workers run"
                + (f" (alias: {', '.join(names[1:])})" if names[1:] else "")
                + "; see docs/deployment.md",
        )
    return default


def env_list(*names: str, required: bool = False) -> list[str]:
    """A comma-separated environment variable as a list."""
    value = env_value(*names, required=required) or ""
    return [v.strip() for v in value.split(",") if v.strip()]
