"""Airflow DAGs built from the pipeline graph: one task per step, the same ids and dependencies.

A DAG file is two lines::

    from readmit.orchestration.airflow_dags import build_dag
    dag = build_dag("training")

Which operator runs a step depends on the executor mode, ``READMIT_EXECUTOR``:

- ``local`` (default): every step is a PythonOperator calling :func:`readmit.pipeline.run_step`
  in the Airflow worker.
- ``ecs`` / ``kubernetes``: heavy steps (medallion layers, training) run the readmit image as an
  ECS task / Kubernetes pod (:mod:`readmit.orchestration.containers`); the other steps stay in
  the worker.
- ``spark``: the medallion's layers are submitted to Spark with the Apache Spark provider's
  SparkSubmitOperator (:mod:`readmit.orchestration.spark_submit`); every other step stays in
  the worker.

Gates are always ShortCircuitOperators in the worker (they are cheap): a failed gate logs its
reason and skips everything downstream, so the run ends with those tasks *skipped*, not failed.
A step that starts another graph (``Step.triggers``) is a TriggerDagRunOperator; with
``Step.months_from`` the triggered run's conf is the first and last month that step's result
(its XCom) lists: ``diab_inference`` starts ``diab_monitoring`` on the months it scored.

Parsing a DAG file reads the config (``READMIT_CONFIG``, for the list of algorithms and the
default month range) and the executor's environment variables; it imports no provider the mode
does not use and touches no data.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator, ShortCircuitOperator
from airflow.sdk import DAG, Param

from readmit.config import Settings, load_settings
from readmit.errors import ReadmitInputError
from readmit.orchestration.tasks import run_gate, run_task, templated_params
from readmit.pipeline import Graph, Step, get_graph, graph_steps

EXECUTOR_MODES = ("local", "ecs", "kubernetes", "spark")
SCHEDULE_START = datetime(2026, 1, 1, tzinfo=UTC)  # scheduled DAGs: no catch-up before this
_MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"


def executor_mode(mode: str | None = None) -> str:
    """The executor mode: ``mode`` if given, else ``READMIT_EXECUTOR``, else ``local``."""
    mode = (mode or os.environ.get("READMIT_EXECUTOR") or "local").strip().lower()
    if mode not in EXECUTOR_MODES:
        raise ReadmitInputError(
            f"unknown executor mode {mode!r} (READMIT_EXECUTOR)",
            fix=f"set READMIT_EXECUTOR to one of: {', '.join(EXECUTOR_MODES)}",
        )
    return mode


def dag_params(graph: Graph, settings: Settings) -> dict[str, Param]:
    """The DAG's params (the trigger form; ``dag_run.conf`` overrides them)."""
    if graph.latest_month:  # empty = the latest gold month
        return {
            name: Param(default, type="string", pattern=f"^$|{_MONTH_PATTERN}",
                        description=f"{name.replace('_', ' ')} (YYYY-MM, inclusive); empty: the latest gold month")
            for name, default in graph.runtime_params(settings).items()
        }
    return {
        name: Param(default, type="string", pattern=_MONTH_PATTERN,
                    description=f"{name.replace('_', ' ')} (YYYY-MM, inclusive); default from the config")
        for name, default in graph.runtime_params(settings).items()
    }


def months_conf(task_id: str, defaults: dict[str, str]) -> dict[str, str]:
    """A triggered run's month range (Jinja): the first and last ``months[].month`` of ``task_id``'s
    XCom; where the task ran in a container (no XCom), the run's own ``start_month``/``end_month``,
    and where those are empty, the triggered graph's ``defaults``."""
    pull = f"{{% set r = ti.xcom_pull(task_ids={task_id!r}) %}}"
    return {name: f"{pull}{{{{ r['months'][{index}]['month'] if r and r['months'] else "
                  f"(params.{name} or {defaults[name]!r}) }}}}"
            for name, index in (("start_month", 0), ("end_month", -1))}


def build_dag(graph_name: str, *, settings: Settings | None = None, executor: str | None = None) -> DAG:
    """The DAG of graph ``graph_name`` for the configured algorithms and the executor mode."""
    graph = get_graph(graph_name)
    settings = settings or load_settings()
    mode = executor_mode(executor)
    container = None
    if mode != "local":
        from readmit.orchestration.containers import FACTORIES

        container = FACTORIES[mode](graph, settings)  # None: this mode runs none of the graph's steps
    worker_params = templated_params(graph, settings)

    def operator(step: Step) -> Any:
        common = {"task_id": step.id, "doc_md": step.doc}
        op_kwargs = {"step_id": step.id, "step_params": worker_params} if worker_params else {"step_id": step.id}
        if step.gate:
            return ShortCircuitOperator(python_callable=run_gate, op_kwargs=op_kwargs, **common)
        if step.triggers:
            from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

            triggered = get_graph(step.triggers)
            conf = months_conf(step.months_from, triggered.runtime_params(settings)) if step.months_from else None
            return TriggerDagRunOperator(trigger_dag_id=triggered.dag_id, conf=conf, **common)
        if container is not None and step.heavy:
            return container(step, common)
        return PythonOperator(python_callable=run_task, op_kwargs=op_kwargs, **common)

    with DAG(
        dag_id=graph.dag_id,
        description=graph.doc.split(". ")[0],
        doc_md=graph.doc,
        schedule=graph.schedule,
        start_date=SCHEDULE_START if graph.schedule else None,
        catchup=False,
        max_active_runs=1,
        params=dag_params(graph, settings),
        tags=["readmit", graph.name, mode],
        default_args={"owner": "readmit", "retries": graph.retries, "retry_delay": timedelta(minutes=5)},
    ) as dag:
        tasks: dict[str, Any] = {}
        for step in graph_steps(graph.name, settings):
            tasks[step.id] = operator(step)
            for upstream in step.depends_on:
                tasks[upstream] >> tasks[step.id]
    return dag
