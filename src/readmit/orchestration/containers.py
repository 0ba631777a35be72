"""Heavy steps in a container: an ECS task or a Kubernetes pod running the readmit image.

The container runs ``readmit step run STEP_ID`` (the image's entrypoint is ``readmit``) with the
settings as environment variables. Everything about the cluster comes from environment variables
read when the DAG file is parsed; a missing required one is an import error naming it. The
Airflow providers are imported here, inside the factories, only when that mode is chosen.

ECS (apache-airflow-providers-amazon), reference-project names as aliases:

==================================== =============================== =======================
variable                             alias                           default
==================================== =============================== =======================
READMIT_ECS_CLUSTER                  ECS_CLUSTER                     (required)
READMIT_ECS_TASK_DEFINITION_<GRAPH>  ECS_MODEL_TRAINING_TASK_DEF     READMIT_ECS_TASK_DEFINITION
READMIT_ECS_TASK_DEFINITION          ECS_TASK_DEF                    (required)
READMIT_ECS_SUBNETS (comma)          ECS_SUBNETS                     (required for FARGATE)
READMIT_ECS_SECURITY_GROUPS (comma)  ECS_SECURITY_GROUPS             none
READMIT_ECS_CONTAINER_NAME           ECS_CONTAINER_NAME              readmit
READMIT_ECS_LAUNCH_TYPE                                              FARGATE
READMIT_ECS_ASSIGN_PUBLIC_IP                                         DISABLED
READMIT_ECS_LOG_GROUP                                                none (no log fetching)
READMIT_ECS_LOG_STREAM_PREFIX                                        ecs
READMIT_AWS_REGION                   AWS_REGION, AWS_DEFAULT_REGION  the connection's
READMIT_AWS_CONN_ID                                                  aws_default
==================================== =============================== =======================

``<GRAPH>`` is the graph name upper-cased (``READMIT_ECS_TASK_DEFINITION_TRAINING``): training
usually wants a task definition with more CPU and memory than the medallion.

Kubernetes (apache-airflow-providers-cncf-kubernetes): ``READMIT_IMAGE`` (required),
``READMIT_K8S_NAMESPACE`` (default ``default``), ``READMIT_K8S_SERVICE_ACCOUNT`` (for S3 access
through IRSA / workload identity), ``READMIT_K8S_CONN_ID`` (default ``kubernetes_default``),
``READMIT_K8S_IMAGE_PULL_POLICY`` (default ``IfNotPresent``), ``READMIT_K8S_CPU`` and
``READMIT_K8S_MEMORY`` (resource requests, e.g. ``2`` and ``4Gi``; none by default).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from readmit.config import Settings
from readmit.orchestration.spark_submit import spark_factory
from readmit.orchestration.tasks import container_command, container_env, env_list, env_value
from readmit.pipeline import Graph, Step

# Reference-project aliases of the per-graph task definition.
_TASK_DEFINITION_ALIASES = {"training": ("ECS_MODEL_TRAINING_TASK_DEF",)}

OperatorFactory = Callable[[Step, dict[str, Any]], Any]


def ecs_factory(graph: Graph, settings: Settings) -> OperatorFactory:
    """Build EcsRunTaskOperators for the heavy steps of ``graph``."""
    from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator

    env = container_env(settings)
    cluster = env_value("READMIT_ECS_CLUSTER", "ECS_CLUSTER", required=True)
    task_definition = env_value(
        f"READMIT_ECS_TASK_DEFINITION_{graph.name.upper()}", *_TASK_DEFINITION_ALIASES.get(graph.name, ()),
        "READMIT_ECS_TASK_DEFINITION", "ECS_TASK_DEF", required=True,
    )
    container = env_value("READMIT_ECS_CONTAINER_NAME", "ECS_CONTAINER_NAME", default="readmit")
    launch_type = env_value("READMIT_ECS_LAUNCH_TYPE", default="FARGATE")
    subnets = env_list("READMIT_ECS_SUBNETS", "ECS_SUBNETS", required=launch_type == "FARGATE")
    network = None
    if subnets:
        network = {"awsvpcConfiguration": {
            "subnets": subnets,
            "securityGroups": env_list("READMIT_ECS_SECURITY_GROUPS", "ECS_SECURITY_GROUPS"),
            "assignPublicIp": env_value("READMIT_ECS_ASSIGN_PUBLIC_IP", default="DISABLED"),
        }}
    log_group = env_value("READMIT_ECS_LOG_GROUP")
    logs = {}
    if log_group:
        prefix = env_value("READMIT_ECS_LOG_STREAM_PREFIX", default="ecs")
        logs = {"awslogs_group": log_group, "awslogs_stream_prefix": f"{prefix}/{container}"}
    aws = {
        "aws_conn_id": env_value("READMIT_AWS_CONN_ID", default="aws_default"),
        "region_name": env_value("READMIT_AWS_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
    }

    def make(step: Step, common: dict[str, Any]) -> Any:
        return EcsRunTaskOperator(
            cluster=cluster,
            task_definition=task_definition,
            launch_type=launch_type,
            network_configuration=network,
            overrides={"containerOverrides": [{
                "name": container,
                "command": container_command(step, graph, settings),
                "environment": [{"name": k, "value": v} for k, v in env.items()],
            }]},
            container_name=container,
            propagate_tags="TASK_DEFINITION",
            reattach=True,  # a restarted worker picks up the running task instead of starting another
            **logs,
            **aws,
            **common,
        )

    return make


def kubernetes_factory(graph: Graph, settings: Settings) -> OperatorFactory:
    """Build KubernetesPodOperators for the heavy steps of ``graph``."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    env = container_env(settings)
    image = env_value("READMIT_IMAGE", required=True)
    requests = {k: v for k, v in (("cpu", env_value("READMIT_K8S_CPU")),
                                  ("memory", env_value("READMIT_K8S_MEMORY"))) if v}
    resources = None
    if requests:
        from kubernetes.client import models as k8s

        resources = k8s.V1ResourceRequirements(requests=requests)
    options = {
        "namespace": env_value("READMIT_K8S_NAMESPACE", default="default"),
        "service_account_name": env_value("READMIT_K8S_SERVICE_ACCOUNT"),
        "kubernetes_conn_id": env_value("READMIT_K8S_CONN_ID", default="kubernetes_default"),
        "image_pull_policy": env_value("READMIT_K8S_IMAGE_PULL_POLICY", default="IfNotPresent"),
    }

    def make(step: Step, common: dict[str, Any]) -> Any:
        return KubernetesPodOperator(
            name=f"readmit-{step.id}".replace("_", "-"),
            image=image,
            arguments=container_command(step, graph, settings),
            env_vars=dict(env),
            container_resources=resources,
            labels={"app": "readmit", "readmit-step": step.id.replace("_", "-")},
            get_logs=True,
            on_finish_action="delete_pod",
            **options,
            **common,
        )

    return make


FACTORIES: dict[str, Callable[[Graph, Settings], OperatorFactory | None]] = {
    "ecs": ecs_factory,
    "kubernetes": kubernetes_factory,
    "spark": spark_factory,  # not a container: spark-submit (readmit.orchestration.spark_submit)
}
