"""``READMIT_EXECUTOR=spark``: the medallion's layers submitted to Spark with ``SparkSubmitOperator``.

The Apache Spark provider (``apache-airflow-providers-apache-spark``, in the ``airflow`` extra)
runs ``spark-submit`` from the Airflow worker with the application
:mod:`readmit.orchestration.spark_app` (shipped in the package) and the arguments
``STEP_ID --start M --end M``; that application starts the submitted Spark session and calls
:func:`readmit.pipeline.run_step`, so a layer built with ``data_config.engine: spark`` computes
on the cluster. The other graphs' steps (training, scoring, monitoring) and every gate stay
PythonOperators in the worker. The provider is imported here, inside the factory, only in this
mode.

Where Spark runs comes from the Airflow connection (master ``local[*]``, ``yarn``,
``spark://host:7077``, ``k8s://...``; deploy mode, queue in its extra):

============================== ==========================================================
variable                       default
============================== ==========================================================
READMIT_SPARK_CONN_ID          ``spark_default``
READMIT_SPARK_DEPLOY_MODE      the connection's (``client`` or ``cluster``)
READMIT_SPARK_DRIVER_MEMORY    Spark's (e.g. ``4g``)
READMIT_SPARK_EXECUTOR_MEMORY  Spark's
READMIT_SPARK_NUM_EXECUTORS    Spark's
============================== ==========================================================

Spark properties are ``data_config.spark.config``, the ones readmit's own sessions use; the
settings (``Settings.env()``) go to the driver as environment variables. In ``cluster`` deploy
mode the driver runs on the cluster, so the datamart must be a location it reaches (``s3://``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from readmit.config import Settings
from readmit.orchestration.tasks import env_value, templated_params
from readmit.pipeline import CLI_FLAGS, Graph, Step

SPARK_GRAPHS = ("medallion",)  # the graphs whose heavy steps are submitted to Spark
APPLICATION = Path(__file__).with_name("spark_app.py")


def application_args(step: Step, params: dict[str, str]) -> list[str]:
    """``STEP_ID --start M --end M``: what :mod:`readmit.orchestration.spark_app` parses."""
    args = [step.id]
    for name, value in params.items():
        args += [CLI_FLAGS[name], value]
    return args


def spark_factory(graph: Graph, settings: Settings) -> Any:
    """Build SparkSubmitOperators for the heavy steps of ``graph``; None for a graph not on Spark."""
    if graph.name not in SPARK_GRAPHS:
        return None
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    params = templated_params(graph, settings)
    num_executors = env_value("READMIT_SPARK_NUM_EXECUTORS")
    options = {
        "conn_id": env_value("READMIT_SPARK_CONN_ID", default="spark_default"),
        "deploy_mode": env_value("READMIT_SPARK_DEPLOY_MODE"),
        "driver_memory": env_value("READMIT_SPARK_DRIVER_MEMORY"),
        "executor_memory": env_value("READMIT_SPARK_EXECUTOR_MEMORY"),
        "num_executors": int(num_executors) if num_executors else None,
        "conf": dict(settings.config.data_config.spark.config),
        "env_vars": settings.env(),
    }

    def make(step: Step, common: dict[str, Any]) -> Any:
        return SparkSubmitOperator(
            application=str(APPLICATION),
            application_args=application_args(step, params),
            name=f"readmit-{step.id}",
            **options,
            **common,
        )

    return make
