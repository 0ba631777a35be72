"""The whole output of every command's "a gate said no" path, as a terminal shows it (issue 21).

A failed gate is an answer, not a crash: the gate table (or the rules table) and the fix, exit 1,
no "unexpected ... (a bug?)", no traceback and no traceback log written. Each command runs as a
real subprocess (what a shell, a container and an Airflow task run), with READMIT_LOG_DIR pointing
at a folder that must stay empty.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-c", "from readmit.cli import main; main()"]
TINY = {"training_config": {"hyperparameter_tuning": {"n_iter": 1, "cv_folds": 2}, "min_train_partitions": 3,
                            "bootstrap": {"resamples": 20}}}


@pytest.fixture
def readmit(tmp_path):
    logs = tmp_path / "logs"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600, check=False,
                              cwd=tmp_path, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200",
                                                 "READMIT_LOG_DIR": str(logs)})
        return done

    yield run
    assert not logs.exists() or not any(logs.iterdir()), f"a log was written: {list(logs.iterdir())}"


def a_plain_failure(done: subprocess.CompletedProcess[str]) -> str:
    """The output of a failure that is an answer; returns stdout + stderr on one line each."""
    both = done.stdout + done.stderr
    assert done.returncode == 1, both
    for sign in ("unexpected", "a bug?", "Traceback", "Full traceback", "details:"):
        assert sign not in both, both
    return " ".join(done.stdout.split()), " ".join(done.stderr.split())


def config(tmp_path: Path, extra: dict | None = None) -> str:
    path = tmp_path / "model_config.json"
    path.write_text(json.dumps({**TINY, **(extra or {})}))
    return str(path)


def test_check_on_a_datamart_without_gold(readmit, tmp_path):
    out, err = a_plain_failure(readmit("check", "--config", config(tmp_path), "--datamart", str(tmp_path / "dm")))
    assert "Pre-training checks" in out
    assert "model_config │ pass" in out and "gold_data_exists │ FAIL" in out
    assert err.startswith("gate gold_data_exists failed: no partitions in gold/feature_store")
    assert "Fix: build the gold tables (`readmit medallion`)" in err
    assert not (tmp_path / "dm").exists()  # a check creates nothing


def test_step_run_of_a_failed_gate_is_the_container_command(readmit, tmp_path):
    done = readmit("step", "run", "check_gold_data_exists", "--config", config(tmp_path),
                   "--datamart", str(tmp_path / "dm"))
    _, err = a_plain_failure(done)
    result = json.loads(done.stdout)  # stdout is the result alone, for the container's caller
    assert result["name"] == "gold_data_exists" and result["passed"] is False
    assert err.startswith("gate check_gold_data_exists failed: no partitions")
    assert "Fix: build the gold tables" in err


@pytest.fixture(scope="module")
def synthetic_csv(tmp_path_factory) -> Path:
    import datetime as dt

    from readmit.data.synth import write_synthetic

    # one year of snapshot dates: 12 monthly partitions a layer, not 120 (the gate fails either way)
    return write_synthetic(tmp_path_factory.mktemp("synth") / "synthetic.csv", rows=3000, seed=5,
                           with_snapshot=True, start=dt.date(2008, 1, 1), end=dt.date(2008, 12, 31))


def test_run_on_a_failed_gate_stops_there_and_says_why(readmit, tmp_path, synthetic_csv):
    done = readmit("run", "--config", config(tmp_path, {"training_config": {**TINY["training_config"],
                                                                              "min_train_partitions": 1000}}),
                   "--raw", str(synthetic_csv), "--datamart", "dm", "--registry", "reg")
    out, err = a_plain_failure(done)
    assert "gate check_sufficient_training_data failed:" in err
    assert "fewer than training_config.min_train_partitions=1000" in err and "Fix:" in err
    assert err.endswith("Nothing after this gate ran; the registry is unchanged.")
    assert "check_sufficient_training_data failed" in err  # its progress line
    assert "datamart:" in out and "recommended:" not in out
    assert not (tmp_path / "reg" / "models").exists()


def test_promote_of_a_rejected_candidate_prints_the_rules(readmit, small_models_copy, tmp_path):
    base = json.loads(Path(small_models_copy.config).read_text())
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps({**base, "governance_config": {"min_auc_gain": 0.5}}))
    args = ["--config", str(strict), "--datamart", small_models_copy.datamart, "--registry", small_models_copy.registry]
    models = small_models_copy.models()
    assert readmit("promote", "--candidate", models["xgboost"], *args).returncode == 0
    out, err = a_plain_failure(readmit("promote", "--candidate", models["logistic_regression"], *args))
    assert "candidate vs champion, scored afresh" in out and "rules" in out
    assert "REJECTED" in out and "FAIL" in out
    assert f"the champion stays xgboost v{models['xgboost']}" in err
    assert f"readmit promote --candidate logistic_regression_v{models['logistic_regression']} --force --reason" in err
