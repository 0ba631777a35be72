"""docker-compose.yaml is not run here (no Docker engine); what can drift from the code is checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from readmit.config import load_settings

pytestmark = pytest.mark.airflow  # PyYAML comes with Airflow

REPO = Path(__file__).resolve().parents[2]


def test_the_compose_file_mounts_the_dags_and_sets_the_variables_readmit_reads(monkeypatch):
    from importlib.metadata import version

    import yaml

    airflow_version = version("apache-airflow")  # not `import airflow`: it would settle on another AIRFLOW_HOME

    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    services = compose["services"]
    airflow_services = [s for s in services.values() if s.get("image") == "readmit-airflow:local"]
    assert {s["command"] for s in airflow_services} == {"db migrate", "api-server", "scheduler", "dag-processor"}
    env = airflow_services[0]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    mounts = dict(v.removesuffix(":ro").split(":") for v in airflow_services[0]["volumes"] if v.startswith("./"))
    assert mounts["./airflow/dags"] == env["AIRFLOW__CORE__DAGS_FOLDER"] and (REPO / "airflow" / "dags").is_dir()
    assert Path(env["READMIT_CONFIG"]).parent.as_posix() == mounts["./conf"]
    # Airflow 3, the tested major version; the variables are the ones a task's settings come from.
    assert airflow_services[0]["build"]["dockerfile_inline"].startswith(f"FROM apache/airflow:{airflow_version[0]}.")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(str(REPO / "conf" / "model_config.json"))
    assert settings.datamart_uri == "s3://readmit/datamart" and settings.registry_uri == "s3://readmit/model_registry"
    readmit_vars = {k for k in env if k.startswith("READMIT_")}
    assert readmit_vars == set(settings.env()) | {"READMIT_EXECUTOR"}
    assert "minio-init" in services and "mc mb --ignore-existing local/readmit" in services["minio-init"]["entrypoint"]
