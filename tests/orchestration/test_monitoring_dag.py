"""diab_monitoring, loaded and run by real Airflow: shape, a month without predictions, a decision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_home")]

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "airflow" / "dags"
TASKS = ["check_predictions_exist", "monitor", "check_retrain_needed", "trigger_training"]


def monitoring_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    return bag.get_dag("diab_monitoring")


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


def deploy(monkeypatch, tmp_path, config: dict, datamart: str, registry: str) -> None:
    path = tmp_path / "deployed_config.json"
    path.write_text(json.dumps(config))
    for key, value in {"READMIT_CONFIG": str(path), "READMIT_DATAMART_URI": datamart,
                       "READMIT_REGISTRY_URI": registry}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("READMIT_EXECUTOR", raising=False)


def test_the_dag_is_gate_monitor_gate_trigger_on_the_last_month_by_default(monkeypatch, tmp_path):
    from airflow.providers.standard.operators.python import PythonOperator, ShortCircuitOperator
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    deploy(monkeypatch, tmp_path, {}, str(tmp_path / "dm"), str(tmp_path / "reg"))
    dag = monitoring_dag()
    assert [t.task_id for t in dag.topological_sort()] == TASKS
    assert [type(dag.get_task(t)) for t in TASKS] == [ShortCircuitOperator, PythonOperator, ShortCircuitOperator,
                                                      TriggerDagRunOperator]
    assert dag.get_task("trigger_training").trigger_dag_id == "diab_model_training"
    assert {k: dag.params[k] for k in ("start_month", "end_month")} == {"start_month": "2008-12",
                                                                         "end_month": "2008-12"}
    months = {"start_month": "{{ params.start_month }}", "end_month": "{{ params.end_month }}"}
    assert dag.get_task("check_predictions_exist").op_kwargs == {"step_id": "check_predictions_exist",
                                                                 "step_params": months}
    assert dag.get_task("monitor").op_kwargs == {"step_id": "monitor", "step_params": months}


@pytest.fixture
def served_env(small_served, small_own_registry, monkeypatch, tmp_path):
    """Deploy the small registry's 2008 predictions with a config whose monitoring_config is ``**monitoring``."""
    config = json.loads(Path(small_served.settings.config_uri).read_text())

    def make(**monitoring) -> Path:
        deploy(monkeypatch, tmp_path, {**config, "monitoring_config": monitoring}, small_served.settings.datamart_uri,
               small_own_registry.registry_uri)
        return Path(small_own_registry.registry_uri) / "monitoring" / "readmission"

    return make


@pytest.mark.slow
def test_a_month_without_predictions_is_skipped_not_failed(served_env):
    records = served_env()
    run = monitoring_dag().test(run_conf={"start_month": "2008-12", "end_month": "2008-12"})
    assert states(run) == {"check_predictions_exist": "success", "monitor": "skipped",
                           "check_retrain_needed": "skipped", "trigger_training": "skipped"}
    assert not records.exists()


@pytest.mark.slow
def test_a_retrain_decision_is_returned_and_only_triggers_training_when_auto_retrain_is_set(served_env):
    from airflow.models.dagrun import DagRun

    # Bands so tight that any drift is in the act band: the decision is retrain.
    records = served_env(psi_warning=0.0001, psi_alert=0.0002)
    run = monitoring_dag().test(run_conf={"start_month": "2008-10", "end_month": "2008-11"})
    assert states(run) == {"check_predictions_exist": "success", "monitor": "success",
                           "check_retrain_needed": "success", "trigger_training": "skipped"}
    (monitor,) = [ti for ti in run.get_task_instances() if ti.task_id == "monitor"]
    returned = monitor.xcom_pull(task_ids="monitor")
    latest = json.loads((records / "latest_monitoring.json").read_text())
    assert returned["action"] == latest["decision"]["action"] == "retrain"
    assert returned["reasons"] == latest["decision"]["reasons"] and returned["months"] == ["2008-10", "2008-11"]

    served_env(psi_warning=0.0001, psi_alert=0.0002, auto_retrain=True)
    run = monitoring_dag().test(run_conf={"start_month": "2008-10", "end_month": "2008-11"})
    assert set(states(run).values()) == {"success"}, states(run)
    assert DagRun.find(dag_id="diab_model_training"), "the training DAG was not triggered"
