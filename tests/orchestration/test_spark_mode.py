"""READMIT_EXECUTOR=spark: the medallion's layers as SparkSubmitOperators, run for real by dag.test()
with spark-submit (pyspark's own) on local[2], on real UCI data."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_home")]

SPARK_CONFIG = {  # what a 2-core machine can take: the test suite's Spark settings
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
}


@pytest.fixture
def spark_env(monkeypatch, tmp_path, uci_sample):
    """A spark-mode deployment: gold on Spark, the spark_default connection at local[2]."""
    config = tmp_path / "model_config.json"
    events = tmp_path / "spark-events"  # each submitted application's Spark event log
    events.mkdir()
    spark = {**SPARK_CONFIG, "spark.eventLog.enabled": "true", "spark.eventLog.dir": events.as_uri(),
             "spark.eventLog.compress": "false", "spark.eventLog.rolling.enabled": "false"}
    config.write_text(json.dumps({"data_config": {"engine": "spark", "spark": {"config": spark}}}))
    env = {
        "READMIT_EXECUTOR": "spark",
        "READMIT_CONFIG": str(config),
        "READMIT_RAW": str(uci_sample),
        "READMIT_DATAMART_URI": str(tmp_path / "datamart"),
        "READMIT_REGISTRY_URI": str(tmp_path / "registry"),
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        # pyspark's spark-submit, and this interpreter as the driver's Python
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_EVENTS": str(events),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def test_spark_mode_submits_the_medallion_layers_and_leaves_the_rest_in_the_worker(spark_env):
    from readmit.orchestration.airflow_dags import build_dag
    from readmit.orchestration.spark_submit import APPLICATION

    dag = build_dag("medallion")
    assert {t.task_type for t in dag.tasks} == {"SparkSubmitOperator"}
    bronze = dag.get_task("bronze")
    assert bronze.application == str(APPLICATION) and APPLICATION.is_file()
    assert bronze.application_args == ["bronze", "--start", "{{ params.start_month }}", "--end",
                                       "{{ params.end_month }}"]
    assert bronze.conf["spark.sql.shuffle.partitions"] == "4" and bronze.conf["spark.eventLog.enabled"] == "true"
    assert bronze.env_vars["READMIT_DATAMART_URI"] == spark_env["READMIT_DATAMART_URI"]
    command = " ".join(bronze._get_hook()._build_spark_submit_command(bronze.application))  # from spark_default
    assert command.startswith("spark-submit --master local[2] --conf spark.sql.shuffle.partitions=4")
    assert command.endswith(f"--name readmit-bronze {APPLICATION} bronze --start {{{{ params.start_month }}}} "
                            "--end {{ params.end_month }}")
    assert "spark" in dag.tags
    training = build_dag("training")
    assert {t.task_type for t in training.tasks} == {"ShortCircuitOperator", "PythonOperator"}
    assert {t.task_type for t in build_dag("inference").tasks} == {"ShortCircuitOperator", "PythonOperator",
                                                                   "TriggerDagRunOperator"}


def test_spark_settings_come_from_the_environment(spark_env, monkeypatch):
    from readmit.orchestration.airflow_dags import build_dag

    for k, v in {"READMIT_SPARK_CONN_ID": "emr_spark", "READMIT_SPARK_DEPLOY_MODE": "cluster",
                 "READMIT_SPARK_EXECUTOR_MEMORY": "8g", "READMIT_SPARK_NUM_EXECUTORS": "4",
                 "AIRFLOW_CONN_EMR_SPARK": json.dumps({"conn_type": "spark", "host": "yarn"})}.items():
        monkeypatch.setenv(k, v)
    gold = build_dag("medallion").get_task("gold")
    command = " ".join(gold._get_hook()._build_spark_submit_command(gold.application))
    for part in ("--master yarn", "--deploy-mode cluster", "--executor-memory 8g", "--num-executors 4",
                 # on YARN in cluster mode the settings reach the driver as application-master environment
                 f"--conf spark.yarn.appMasterEnv.READMIT_CONFIG={spark_env['READMIT_CONFIG']}"):
        assert part in command, (part, command)


@pytest.mark.slow
def test_medallion_dag_on_spark_builds_gold(spark_env):
    """dag.test(): three spark-submit runs on local[2]; gold is computed by Spark in the submitted driver."""
    from readmit.data.layers import FEATURE_STORE, LABEL_STORE
    from readmit.orchestration.airflow_dags import build_dag
    from readmit.storage import Storage

    run = build_dag("medallion").test(run_conf={"start_month": "2002-01", "end_month": "2002-03"})
    got = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}
    assert got == {"bronze": "success", "silver": "success", "gold": "success"}
    storage = Storage(spark_env["READMIT_DATAMART_URI"])
    assert storage.list_partitions(FEATURE_STORE) == ["2002-01", "2002-02", "2002-03"]
    assert storage.list_partitions(LABEL_STORE) == ["2002-01", "2002-02", "2002-03"]
    assert storage.read_partition(FEATURE_STORE, "2002-02").height > 0
    assert not storage.exists("_scratch")
    # one Spark application per layer, named after its step; gold's ran Spark jobs writing its
    # result to the datamart's scratch folder (the engine used the submitted session)
    logs = [path.read_text() for path in Path(spark_env["SPARK_EVENTS"]).iterdir()]
    started = {json.loads(line)["App Name"]: text for text in logs for line in text.splitlines()
               if '"Event":"SparkListenerApplicationStart"' in line}
    assert set(started) == {"readmit-bronze", "readmit-silver", "readmit-gold"}
    gold_log = started["readmit-gold"]
    assert '"Event":"SparkListenerJobStart"' in gold_log and "_scratch" in gold_log
