"""diab_inference, loaded and run by real Airflow on the small registry (synthetic gold, three models)."""

from __future__ import annotations

from pathlib import Path

import pytest

from readmit.data.layers import PREDICTIONS
from readmit.registry import Registry
from readmit.registry.aliases import set_alias
from readmit.storage import Storage

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_home")]

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "airflow" / "dags"
TASKS = ["check_champion", "check_inference_gold", "predict", "trigger_monitoring"]


@pytest.fixture
def env(monkeypatch, small_models_copy):
    """A local-mode deployment over a copy of the small_models gold and registry (no champion yet)."""
    for name, value in {"READMIT_CONFIG": small_models_copy.config, "READMIT_DATAMART_URI": small_models_copy.datamart,
                        "READMIT_REGISTRY_URI": small_models_copy.registry}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("READMIT_EXECUTOR", raising=False)
    return small_models_copy


def inference_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    return bag.get_dag("diab_inference")


def states(run) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}


def crown(small_models, algorithm="xgboost"):
    set_alias(Registry(small_models.registry), "champion", algorithm, small_models.models()[algorithm], reason="t", by="tests")


def test_inference_dag_is_two_gates_then_predict_then_monitoring_monthly(env):
    from airflow.providers.standard.operators.python import PythonOperator, ShortCircuitOperator
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    dag = inference_dag()
    assert [t.task_id for t in dag.topological_sort()] == TASKS
    assert type(dag.get_task("check_champion")) is ShortCircuitOperator
    assert type(dag.get_task("check_inference_gold")) is ShortCircuitOperator
    assert type(dag.get_task("predict")) is PythonOperator
    trigger = dag.get_task("trigger_monitoring")
    assert type(trigger) is TriggerDagRunOperator and trigger.trigger_dag_id == "diab_monitoring"
    assert "xcom_pull(task_ids='predict')" in trigger.conf["start_month"]
    assert "params.end_month or '2008-12'" in trigger.conf["end_month"]  # no XCom (a container): the run's months
    assert dag.schedule == "@monthly" and dag.catchup is False
    assert {k: dag.params[k] for k in ("start_month", "end_month")} == {"start_month": "", "end_month": ""}
    templated = {"start_month": "{{ params.start_month }}", "end_month": "{{ params.end_month }}"}
    assert dag.get_task("check_inference_gold").op_kwargs == {"step_id": "check_inference_gold",
                                                              "step_params": templated}


@pytest.mark.slow  # dag.test()
def test_without_a_champion_the_run_is_skipped_not_failed(env):
    run = inference_dag().test()
    assert states(run) == {"check_champion": "success", "check_inference_gold": "skipped", "predict": "skipped",
                           "trigger_monitoring": "skipped"}
    assert Storage(env.datamart).list_partitions(PREDICTIONS) == []


@pytest.mark.slow  # dag.test()
def test_a_month_without_gold_skips_the_scoring(env):
    crown(env)
    run = inference_dag().test(run_conf={"start_month": "2011-01", "end_month": "2011-01"})
    assert states(run) == {"check_champion": "success", "check_inference_gold": "success", "predict": "skipped",
                           "trigger_monitoring": "skipped"}
    assert Storage(env.datamart).list_partitions(PREDICTIONS) == []


@pytest.mark.slow  # dag.test()
def test_a_tampered_champion_fails_its_gate_and_nothing_is_scored(env):
    crown(env)
    registry = Registry(env.registry)
    registry.storage.write_bytes(registry.rel(f"xgboost_v{env.models()['xgboost']}.pkl"), b"not the model")
    run = inference_dag().test()
    assert states(run)["predict"] == "skipped"
    assert Storage(env.datamart).list_partitions(PREDICTIONS) == []


def monitoring_confs() -> list[dict]:
    from airflow.models.dagrun import DagRun

    return [r.conf for r in sorted(DagRun.find(dag_id="diab_monitoring"), key=lambda r: r.id)]


@pytest.mark.slow
def test_the_champion_scores_the_requested_months_and_by_default_the_latest_then_monitoring_starts(env):
    crown(env)
    before = monitoring_confs()
    run = inference_dag().test(run_conf={"start_month": "2008-01", "end_month": "2008-02"})
    assert set(states(run).values()) == {"success"}, states(run)
    storage = Storage(env.datamart)
    assert storage.list_partitions(PREDICTIONS) == ["2008-01", "2008-02"]
    assert set(storage.read_partition(PREDICTIONS, "2008-02")["alias"]) == {"champion"}
    # diab_monitoring was triggered on the months just scored
    assert monitoring_confs()[len(before):] == [{"start_month": "2008-01", "end_month": "2008-02"}]

    run = inference_dag().test()
    assert set(states(run).values()) == {"success"}, states(run)
    assert storage.list_partitions(PREDICTIONS) == ["2008-01", "2008-02", "2008-12"]
    assert monitoring_confs()[len(before) + 1:] == [{"start_month": "2008-12", "end_month": "2008-12"}]
