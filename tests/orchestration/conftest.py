"""Airflow in a temporary home: its own config, a fresh sqlite metadata DB, the repo's DAG folder.

Airflow reads AIRFLOW_HOME and its database location when it is first imported, so nothing may
import airflow before the ``airflow_home`` fixture runs (readmit's own modules never import it
at import time; only :mod:`readmit.orchestration.airflow_dags` does).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "airflow" / "dags"


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> Path:
    """AIRFLOW_HOME in a temp folder with an initialised sqlite DB (``airflow db migrate``'s job)."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != str(home):
        pytest.fail("airflow was imported before the airflow_home fixture; it would use another home")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from airflow.utils import db

    db.initdb()
    yield home
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


TINY_TRAINING = {
    "hyperparameter_tuning": {"n_iter": 1, "cv_folds": 2},
    "min_train_partitions": 3,
}


@pytest.fixture
def tiny_config(tmp_path):
    """Write a config with a tiny search budget (one candidate, two folds); returns its path."""
    import json

    def write(name: str = "model_config.json", **training) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps({"training_config": {**TINY_TRAINING, **training}}))
        return path

    return write
