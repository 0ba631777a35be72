"""Airflow as users run it: scheduler, DAG processor and API server as processes, runs triggered
through the REST API as the UI's Trigger button does, task states read back from the API.

Airflow 3 in a temporary AIRFLOW_HOME with its own SQLite database (Airflow 3 accepts SQLite
with the LocalExecutor; Airflow 2 did not), SimpleAuthManager with every user an admin (the JWT
comes from ``GET /auth/token``), the API server on a free loopback port, the repository's DAG
folder, the real UCI sample and the tests' tiny training budget. Nothing here imports Airflow:
the test talks to the servers over HTTP only.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from readmit.registry import Registry
from readmit.registry.aliases import get_alias

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "airflow" / "dags"
ALGORITHMS = ["logistic_regression", "xgboost"]
GATES = ["check_model_config", "check_gold_data_exists", "check_sufficient_training_data",
         "check_temporal_leakage", "check_single_source"]
AFTER_GATES = [*(f"train_{a}" for a in ALGORITHMS), "compare_models", "promote"]
DAGS = ("diab_medallion", "diab_model_training", "diab_inference", "diab_monitoring")
RUN_TIMEOUT = 420  # seconds one DAG run may take on a loaded 2-core machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Airflow:
    url: str
    home: Path
    datamart: Path
    registry: Path
    token: str = ""

    def call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """What the UI's Trigger button does: POST a DAG run (no logical date)."""
        run = self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]

    def wait(self, dag_id: str, run_id: str) -> dict[str, str]:
        """Wait for the run to end; return {task_id: state}."""
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            run = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                break
            time.sleep(2)
        else:
            pytest.fail(f"{dag_id} run {run_id} still {run['state']} after {RUN_TIMEOUT}s; logs: {self.home}/logs")
        tis = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in tis}


def _wait_for(what: str, check, logs: list[Path], timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (urllib.error.URLError, ConnectionError, OSError, KeyError) as exc:
            error = exc
        time.sleep(1)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())
    pytest.fail(f"{what} not ready after {timeout}s ({error}):\n{tails}")


@pytest.fixture
def airflow(tmp_path, uci_sample) -> Iterator[Airflow]:
    home = tmp_path / "airflow_home"
    home.mkdir()
    config = tmp_path / "model_config.json"
    config.write_text(json.dumps({"training_config": {
        "algorithms": ALGORITHMS, "hyperparameter_tuning": {"n_iter": 1, "cv_folds": 2, "n_jobs": 1},
        "min_train_partitions": 3}}))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "READMIT_CONFIG": str(config),
        "READMIT_RAW": str(uci_sample),
        "READMIT_DATAMART_URI": str(tmp_path / "datamart"),
        "READMIT_REGISTRY_URI": str(tmp_path / "registry"),
        "READMIT_EXECUTOR": "local",
        "OMP_NUM_THREADS": "1",
        "POLARS_MAX_THREADS": "1",
    }
    airflow_cmd = [sys.executable, "-m", "airflow"]
    migrate = subprocess.run([*airflow_cmd, "db", "migrate"], env=env, capture_output=True, text=True,
                             timeout=300, check=False)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        for component in (["api-server", "--port", str(port), "--host", "127.0.0.1"], ["scheduler"],
                          ["dag-processor"]):
            log = home / f"{component[0]}.log"
            logs.append(log)
            with log.open("w") as out:
                procs.append(subprocess.Popen([*airflow_cmd, *component], env=env, stdout=out,
                                              stderr=subprocess.STDOUT, start_new_session=True))
        server = Airflow(url, home, tmp_path / "datamart", tmp_path / "registry")

        def token() -> str:
            with urllib.request.urlopen(f"{url}/auth/token", timeout=10) as response:
                return json.loads(response.read())["access_token"]

        server.token = _wait_for("the API server", token, logs)

        def parsed() -> bool:
            dags = {d["dag_id"] for d in server.call("GET", "/api/v2/dags?limit=100")["dags"]}
            return set(DAGS) <= dags

        _wait_for("the DAG processor (every diab_* DAG)", parsed, logs)
        for dag_id in ("diab_medallion", "diab_model_training", "diab_monitoring"):  # the UI's toggle:
            server.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})  # new DAGs start paused
        yield server
    finally:
        for proc in procs:  # each component leads its own process group (its workers included)
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_training_without_gold_then_medallion_training_and_inference_through_the_rest_api(airflow):
    # No gold yet: the second gate fails, every task after it is skipped, nothing is registered.
    states = airflow.wait("diab_model_training", airflow.trigger("diab_model_training"))
    assert states == {"check_model_config": "success", "check_gold_data_exists": "success",
                      **{t: "skipped" for t in [*GATES[2:], *AFTER_GATES]}}, states
    assert not (airflow.registry / "models").exists()

    states = airflow.wait("diab_medallion", airflow.trigger("diab_medallion"))
    assert states == {"bronze": "success", "silver": "success", "gold": "success"}, states
    assert (airflow.datamart / "gold" / "feature_store").is_dir()

    states = airflow.wait("diab_model_training", airflow.trigger("diab_model_training"))
    assert states == {t: "success" for t in [*GATES, *AFTER_GATES]}, states
    registry = Registry(str(airflow.registry))
    assert sorted({m["algorithm"] for m in registry.list_models()}) == sorted(ALGORITHMS)
    champion = get_alias(registry, "champion")
    assert champion is not None and champion["algorithm"] in ALGORITHMS
    assert "(training pipeline)" in champion["by"]

    # Inference scores the requested months, then starts diab_monitoring on exactly those months.
    # (Unpausing the monthly diab_inference also lets the scheduler start this month's run, so the
    # monitoring run to follow is found by its conf.)
    months = {"start_month": "2008-11", "end_month": "2008-12"}
    run_id = airflow.trigger("diab_inference", months)
    airflow.call("PATCH", "/api/v2/dags/diab_inference", {"is_paused": False})
    states = airflow.wait("diab_inference", run_id)
    assert states == {"check_champion": "success", "check_inference_gold": "success", "predict": "success",
                      "trigger_monitoring": "success"}, states
    assert {p.name for p in (airflow.datamart / "gold" / "model_predictions").iterdir()} >= {
        "snapshot_month=2008-11", "snapshot_month=2008-12"}
    monitoring = _wait_for("the triggered diab_monitoring run",
                           lambda: [r for r in airflow.runs("diab_monitoring") if r["conf"] == months], [])
    states = airflow.wait("diab_monitoring", monitoring[0]["dag_run_id"])
    assert states == {"check_predictions_exist": "success", "monitor": "success", "check_retrain_needed": "success",
                      "trigger_training": "skipped"}, states  # auto_retrain is off
    returned = airflow.call("GET", f"/api/v2/dags/diab_monitoring/dagRuns/{monitoring[0]['dag_run_id']}"
                                   "/taskInstances/monitor/xcomEntries/return_value")["value"]
    assert returned["months"] == ["2008-11", "2008-12"] and returned["action"] in ("keep", "watch", "retrain")
    record = json.loads(Path(returned["record"]).read_text())
    assert [m["month"] for m in record["months"]] == ["2008-11", "2008-12"]
    assert record["model"]["version"] == champion["version"] and record["decision"]["action"] == returned["action"]
