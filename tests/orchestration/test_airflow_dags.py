"""The Airflow DAGs, loaded and run by real Airflow: DagBag, shapes, dag.test(), executor modes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_home")]

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "airflow" / "dags"
DAG_FILES = sorted(p.name for p in DAGS_FOLDER.glob("*.py"))
GATES = ["check_model_config", "check_gold_data_exists", "check_sufficient_training_data",
         "check_temporal_leakage", "check_single_source"]
ALGORITHMS = ["logistic_regression", "random_forest", "xgboost"]
TRAINS = [f"train_{a}" for a in ALGORITHMS]


@pytest.fixture
def local_env(monkeypatch, tmp_path, tiny_config):
    """The settings of a local-mode deployment, as environment variables."""
    env = {
        "READMIT_CONFIG": str(tiny_config()),
        "READMIT_DATAMART_URI": str(tmp_path / "datamart"),
        "READMIT_REGISTRY_URI": str(tmp_path / "registry"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("READMIT_EXECUTOR", raising=False)
    monkeypatch.delenv("READMIT_RAW", raising=False)
    return env


def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


def loaded_dags() -> dict:
    bag = dagbag()
    assert bag.import_errors == {}
    return {dag_id: bag.get_dag(dag_id) for dag_id in bag.dag_ids}


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


# -- shape (local mode) ---------------------------------------------------------------------------


def test_every_dag_file_loads_without_import_errors(local_env):
    bag = dagbag()
    assert bag.import_errors == {}
    assert DAG_FILES == ["diab_inference.py", "diab_medallion.py", "diab_model_training.py", "diab_monitoring.py"]
    assert sorted(bag.dag_ids) == ["diab_inference", "diab_medallion", "diab_model_training", "diab_monitoring"]


def test_training_dag_is_gates_then_parallel_training_then_compare(local_env):
    from airflow.providers.standard.operators.python import PythonOperator, ShortCircuitOperator

    from readmit.config import load_settings
    from readmit.pipeline import graph_steps

    dag = loaded_dags()["diab_model_training"]
    assert [t.task_id for t in dag.topological_sort()][:len(GATES)] == GATES
    assert set(dag.task_ids) == {*GATES, *TRAINS, "compare_models", "promote"}
    upstream = {t.task_id: set(t.upstream_task_ids) for t in dag.tasks}
    assert upstream["check_model_config"] == set()
    for earlier, later in pairwise(GATES):
        assert upstream[later] == {earlier}
    for train in TRAINS:
        assert upstream[train] == {"check_single_source"}
    assert upstream["compare_models"] == set(TRAINS)
    assert upstream["promote"] == {"compare_models"}

    for gate in GATES:
        assert type(dag.get_task(gate)) is ShortCircuitOperator
    for task_id in (*TRAINS, "compare_models", "promote"):
        assert type(dag.get_task(task_id)) is PythonOperator
        assert dag.get_task(task_id).retries == 0
    assert dag.max_active_runs == 1
    assert dag.schedule is None  # runs when triggered (or by the medallion), never on a timer
    assert dag.timetable.can_be_scheduled is False
    assert {"readmit", "training", "local"} <= set(dag.tags)
    docs = {s.id: s.doc for s in graph_steps("training", load_settings())}
    assert all(dag.get_task(t).doc_md == docs[t] for t in dag.task_ids)
    assert dag.get_task("train_xgboost").op_kwargs == {"step_id": "train_xgboost"}


def test_training_dag_follows_the_configured_algorithms(local_env, monkeypatch, tiny_config):
    monkeypatch.setenv("READMIT_CONFIG", str(tiny_config("two.json", algorithms=["xgboost", "random_forest"])))
    dag = loaded_dags()["diab_model_training"]
    assert set(dag.task_ids) == {*GATES, "train_xgboost", "train_random_forest", "compare_models", "promote"}


def test_medallion_dag_is_one_task_per_layer_with_an_overridable_month_range(local_env):
    dag = loaded_dags()["diab_medallion"]
    assert [t.task_id for t in dag.topological_sort()] == ["bronze", "silver", "gold"]
    assert dag.get_task("gold").upstream_task_ids == {"silver"}
    assert {k: dag.params[k] for k in ("start_month", "end_month")} == {
        "start_month": "1999-01", "end_month": "2008-12"}
    assert dag.get_task("silver").op_kwargs == {"step_id": "silver", "step_params": {
        "start_month": "{{ params.start_month }}", "end_month": "{{ params.end_month }}"}}
    assert dag.get_task("bronze").retries == 1 and dag.max_active_runs == 1


def test_local_mode_needs_no_provider_beyond_core_airflow(local_env):
    # A fresh interpreter where the ECS, Kubernetes and Spark operators (and the kubernetes client)
    # cannot be imported; Airflow's own provider discovery (get_provider_info) still works.
    code = (
        "import sys, importlib.abc\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith(('airflow.providers.amazon.aws', 'airflow.providers.cncf.kubernetes.operators',"
        " 'airflow.providers.apache.spark.operators', 'kubernetes', 'pyspark')):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "from readmit.orchestration.airflow_dags import build_dag\n"
        "assert {t.task_type for t in build_dag('training').tasks} == {'ShortCircuitOperator', 'PythonOperator'}\n"
        "assert {t.task_type for t in build_dag('medallion').tasks} == {'PythonOperator'}\n"
        "assert {t.task_type for t in build_dag('inference').tasks} == {'ShortCircuitOperator', 'PythonOperator',"
        " 'TriggerDagRunOperator'}\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('sklearn', 'xgboost')]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-3000:]


def test_an_unknown_executor_mode_is_an_import_error_that_says_so(local_env, monkeypatch):
    monkeypatch.setenv("READMIT_EXECUTOR", "lambda")
    errors = dagbag().import_errors
    assert len(errors) == len(DAG_FILES)
    assert all("READMIT_EXECUTOR" in e and "local, ecs, kubernetes" in e for e in errors.values())


# -- container modes (operators inspected; no cloud call) -------------------------------------------


@pytest.fixture
def s3_env(s3_uri, monkeypatch, tiny_config):
    """Settings on S3 (the config too), as a container deployment has them."""
    import boto3

    bucket, prefix = s3_uri[len("s3://"):].split("/", 1)
    boto3.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/conf/model_config.json",
                                  Body=tiny_config().read_bytes())
    env = {
        "READMIT_CONFIG": f"{s3_uri}/conf/model_config.json",
        "READMIT_DATAMART_URI": f"{s3_uri}/datamart",
        "READMIT_REGISTRY_URI": f"{s3_uri}/registry",
        "READMIT_RAW": f"{s3_uri}/raw/diabetic_data.csv",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


ECS_ENV = {
    "READMIT_EXECUTOR": "ecs",
    "READMIT_ECS_CLUSTER": "readmit-cluster",
    "READMIT_ECS_TASK_DEFINITION": "readmit-data:3",
    "READMIT_ECS_TASK_DEFINITION_TRAINING": "readmit-train",
    "READMIT_ECS_SUBNETS": "subnet-a, subnet-b",
    "READMIT_ECS_SECURITY_GROUPS": "sg-1",
    "READMIT_ECS_CONTAINER_NAME": "app",
    "READMIT_ECS_LOG_GROUP": "/ecs/readmit",
    "READMIT_AWS_REGION": "eu-west-1",
}


def test_ecs_mode_runs_heavy_steps_as_ecs_tasks_with_the_settings_as_environment(s3_env, monkeypatch):
    from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
    from airflow.providers.standard.operators.python import PythonOperator, ShortCircuitOperator

    for k, v in ECS_ENV.items():
        monkeypatch.setenv(k, v)
    dags = loaded_dags()
    training, medallion = dags["diab_model_training"], dags["diab_medallion"]
    environment = sorted(({"name": k, "value": v} for k, v in s3_env.items()), key=lambda e: e["name"])

    for gate in GATES:  # gates stay in the worker
        assert type(training.get_task(gate)) is ShortCircuitOperator
    assert type(training.get_task("compare_models")) is PythonOperator
    for algorithm in ALGORITHMS:
        op = training.get_task(f"train_{algorithm}")
        assert type(op) is EcsRunTaskOperator
        assert (op.cluster, op.task_definition, op.launch_type) == ("readmit-cluster", "readmit-train", "FARGATE")
        assert op.network_configuration == {"awsvpcConfiguration": {
            "subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"}}
        (override,) = op.overrides["containerOverrides"]
        assert override["name"] == "app"
        assert override["command"] == ["step", "run", f"train_{algorithm}"]
        assert sorted(override["environment"], key=lambda e: e["name"]) == environment
        assert op.awslogs_group == "/ecs/readmit" and op.awslogs_stream_prefix == "ecs/app"
        assert op.region_name == "eu-west-1" and op.retries == 0

    bronze = medallion.get_task("bronze")
    assert type(bronze) is EcsRunTaskOperator and bronze.task_definition == "readmit-data:3"
    assert bronze.overrides["containerOverrides"][0]["command"] == [
        "step", "run", "bronze", "--start", "{{ params.start_month }}", "--end", "{{ params.end_month }}"]
    assert "overrides" in bronze.template_fields  # the month range is rendered per run


def test_ecs_mode_accepts_the_reference_project_variable_names(s3_env, monkeypatch):
    monkeypatch.setenv("READMIT_EXECUTOR", "ecs")
    for k, v in {"ECS_CLUSTER": "ref-cluster", "ECS_TASK_DEF": "ref-data", "ECS_MODEL_TRAINING_TASK_DEF": "ref-train",
                 "ECS_SUBNETS": "subnet-r", "ECS_SECURITY_GROUPS": "sg-r", "ECS_CONTAINER_NAME": "ref"}.items():
        monkeypatch.setenv(k, v)
    dags = loaded_dags()
    train = dags["diab_model_training"].get_task("train_xgboost")
    assert (train.cluster, train.task_definition) == ("ref-cluster", "ref-train")
    assert train.overrides["containerOverrides"][0]["name"] == "ref"
    assert dags["diab_medallion"].get_task("gold").task_definition == "ref-data"


def test_ecs_mode_without_a_cluster_is_an_import_error_naming_the_variable(s3_env, monkeypatch):
    monkeypatch.setenv("READMIT_EXECUTOR", "ecs")
    errors = dagbag().import_errors
    assert len(errors) == len(DAG_FILES)
    assert all("READMIT_ECS_CLUSTER is not set" in e for e in errors.values())


def test_container_modes_refuse_local_locations(local_env, monkeypatch):
    for k, v in ECS_ENV.items():
        monkeypatch.setenv(k, v)
    errors = dagbag().import_errors
    assert len(errors) == len(DAG_FILES)
    message = next(iter(errors.values()))
    assert "READMIT_DATAMART_URI=" in message and "s3://" in message


def test_kubernetes_mode_runs_heavy_steps_as_pods(s3_env, monkeypatch):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.providers.standard.operators.python import ShortCircuitOperator

    for k, v in {"READMIT_EXECUTOR": "kubernetes", "READMIT_IMAGE": "123.dkr.ecr.eu-west-1.amazonaws.com/readmit:1.0",
                 "READMIT_K8S_NAMESPACE": "ml", "READMIT_K8S_SERVICE_ACCOUNT": "readmit-s3",
                 "READMIT_K8S_CPU": "2", "READMIT_K8S_MEMORY": "4Gi"}.items():
        monkeypatch.setenv(k, v)
    dags = loaded_dags()
    training = dags["diab_model_training"]
    assert type(training.get_task("check_temporal_leakage")) is ShortCircuitOperator
    pod = training.get_task("train_random_forest")
    assert type(pod) is KubernetesPodOperator
    assert pod.image == "123.dkr.ecr.eu-west-1.amazonaws.com/readmit:1.0"
    assert pod.namespace == "ml" and pod.service_account_name == "readmit-s3"
    assert pod.arguments == ["step", "run", "train_random_forest"]
    assert pod.name.startswith("readmit-train-random-forest")
    assert pod.env_vars == s3_env  # converted to V1EnvVar when the pod is built
    assert pod.container_resources.requests == {"cpu": "2", "memory": "4Gi"}
    gold = dags["diab_medallion"].get_task("gold")
    assert gold.arguments == ["step", "run", "gold", "--start", "{{ params.start_month }}",
                              "--end", "{{ params.end_month }}"]


def test_kubernetes_mode_needs_an_image(s3_env, monkeypatch):
    monkeypatch.setenv("READMIT_EXECUTOR", "kubernetes")
    monkeypatch.delenv("READMIT_IMAGE", raising=False)
    errors = dagbag().import_errors
    assert all("READMIT_IMAGE is not set" in e for e in errors.values()) and len(errors) == len(DAG_FILES)


# -- end to end: dag.test() on real data ------------------------------------------------------------


@pytest.mark.slow
def test_gate_failure_skips_training_and_compare_and_writes_nothing(local_env):
    dag = loaded_dags()["diab_model_training"]
    run = dag.test()  # the datamart is empty: no gold
    got = states(run)
    assert got["check_model_config"] == "success"
    assert got["check_gold_data_exists"] == "success"  # a short-circuit is a success that skips
    for task_id in ("check_sufficient_training_data", "check_temporal_leakage", "check_single_source", *TRAINS,
                    "compare_models", "promote"):
        assert got[task_id] == "skipped", (task_id, got)
    registry = Path(local_env["READMIT_REGISTRY_URI"])
    assert not registry.exists() or not any(p.is_file() for p in registry.rglob("*"))


@pytest.mark.slow  # dag.test()
def test_a_bug_inside_a_gate_fails_its_task_instead_of_skipping(local_env, monkeypatch):
    """An unexpected exception in a gate (here a lower function returning the wrong type) is a
    failed task, and what follows is upstream_failed: nobody mistakes a bug for a data finding."""
    monkeypatch.setattr("readmit.training.gates.Storage.list_partitions", lambda self, table: 2005)
    run = loaded_dags()["diab_model_training"].test()
    got = states(run)
    assert got["check_model_config"] == "success"
    assert got["check_gold_data_exists"] == "failed", got
    for task_id in ("check_sufficient_training_data", "check_temporal_leakage", *TRAINS, "compare_models"):
        assert got[task_id] == "upstream_failed", (task_id, got)


@pytest.mark.slow
def test_medallion_then_training_end_to_end_on_real_data(local_env, monkeypatch, uci_sample, tmp_path):
    from readmit.registry import COMPARISON_FILE, Registry
    from readmit.registry.aliases import get_alias
    from readmit.storage import Storage

    monkeypatch.setenv("READMIT_RAW", str(uci_sample))
    # A fresh parse per run, as a worker does: with Airflow 3.3.2, a second dag.test() of the same
    # parsed DAG object still renders the first run's dag_run.conf.

    # dag_run.conf overrides the month range: bronze alone, one month, in a scratch datamart
    scratch = tmp_path / "scratch"
    monkeypatch.setenv("READMIT_DATAMART_URI", str(scratch))
    run = loaded_dags()["diab_medallion"].test(run_conf={"start_month": "2003-02", "end_month": "2003-02"},
                                               mark_success_pattern="^(silver|gold)$")
    assert states(run)["bronze"] == "success"
    assert Storage(str(scratch)).list_partitions("bronze/encounters") == ["2003-02"]

    monkeypatch.setenv("READMIT_DATAMART_URI", local_env["READMIT_DATAMART_URI"])
    run = loaded_dags()["diab_medallion"].test()
    assert set(states(run).values()) == {"success"}, states(run)
    gold = Storage(local_env["READMIT_DATAMART_URI"]).list_partitions("gold/feature_store")
    assert gold[0] == "1999-01" and gold[-1] == "2008-12" and len(gold) == 120

    run = loaded_dags()["diab_model_training"].test()
    assert set(states(run).values()) == {"success"}, states(run)
    registry = Registry(local_env["READMIT_REGISTRY_URI"])
    folder = Path(local_env["READMIT_REGISTRY_URI"]) / "models" / "readmission"
    for algorithm in ALGORITHMS:
        meta = json.loads((folder / f"{algorithm}_latest_metadata.json").read_text())
        assert meta["algorithm"] == algorithm
        assert (folder / meta["artifact"]["file"]).is_file()
        assert 0.5 < meta["performance"]["oot"]["auc_roc"] < 0.75
    assert {m["algorithm"] for m in registry.list_models()} >= set(ALGORITHMS)
    comparison = json.loads((folder / COMPARISON_FILE).read_text())
    assert comparison["recommended"]
    decision = states(run)["promote"] == "success" and get_alias(registry, "champion")
    assert decision and decision["version"] == comparison["recommended"]["version"]  # first champion
