"""``readmit check | train | compare | registry``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from readmit.cli import app

CONFS = Path(__file__).resolve().parents[1] / "confs"
runner = CliRunner()


def _args(settings) -> list[str]:
    return ["--config", settings.config_uri, "--datamart", settings.datamart_uri, "--registry", settings.registry_uri]


def test_check_passes_with_a_table(make_settings):
    result = runner.invoke(app, ["check", *_args(make_settings()), "--as-of", "2024-01-01"])
    assert result.exit_code == 0, result.output
    for gate in ("model_config", "gold_data_exists", "sufficient_training_data", "temporal_leakage",
                 "single_source"):
        assert gate in result.output


def test_check_json(make_settings):
    result = runner.invoke(app, ["check", *_args(make_settings()), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["passed"] is True and len(data["checks"]) == 5


def test_check_fails_naming_the_gate_and_the_fix(make_settings, tmp_path):
    settings = make_settings({"training_config": {"min_train_partitions": 500}})
    result = runner.invoke(app, ["check", *_args(settings), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert [c["passed"] for c in data["checks"]] == [True, True, False, True, True]
    assert "gate sufficient_training_data failed" in result.stderr
    assert "Fix:" in result.stderr


def test_check_with_an_invalid_config_fails_the_config_gate(make_settings):
    settings = make_settings()
    args = _args(settings)
    args[1] = str(CONFS / "invalid" / "overlapping_windows.json")
    result = runner.invoke(app, ["check", *args])
    assert result.exit_code == 1
    assert "gate model_config failed" in result.stderr and "must not overlap" in result.stderr


def test_check_bad_as_of_is_usage_error(make_settings):
    result = runner.invoke(app, ["check", *_args(make_settings()), "--as-of", "yesterday"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.stderr


@pytest.mark.slow
def test_train_compare_and_registry(make_settings):
    settings = make_settings()
    args = _args(settings)
    result = runner.invoke(app, ["train", "--algorithm", "logistic_regression", "-a", "xgboost", *args, "--json"])
    assert result.exit_code == 0, result.output
    trained = json.loads(result.stdout)
    assert [t["algorithm"] for t in trained] == ["logistic_regression", "xgboost"]
    assert all(t["version"] and t["oot_auc_roc"] for t in trained)
    assert "searching" in result.stderr  # progress goes to stderr

    result = runner.invoke(app, ["train", "-a", "random_forest", *args])
    assert result.exit_code == 0, result.output
    assert "random_forest" in result.stdout and "OOT" in result.stdout

    result = runner.invoke(app, ["compare", "--config", settings.config_uri, "--registry", settings.registry_uri])
    assert result.exit_code == 0, result.output
    assert "Recommended:" in result.stdout and "latest_model_comparison.json" in result.stdout
    result = runner.invoke(app, ["compare", "--config", settings.config_uri, "--registry", settings.registry_uri,
                                 "--json"])
    assert json.loads(result.stdout)["recommended"]["algorithm"] in ("logistic_regression", "random_forest", "xgboost")

    reg_args = ["--config", settings.config_uri, "--registry", settings.registry_uri]
    result = runner.invoke(app, ["registry", "list", *reg_args, "--json"])
    rows = json.loads(result.stdout)
    assert len(rows) == 3 and all(r["latest"] for r in rows)
    result = runner.invoke(app, ["registry", "list", *reg_args])
    assert result.exit_code == 0 and "xgboost" in result.stdout

    version = trained[1]["version"]
    result = runner.invoke(app, ["registry", "show", f"xgboost_v{version}", *reg_args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["algorithm"] == "xgboost"
    result = runner.invoke(app, ["registry", "show", "xgboost", *reg_args])
    assert result.exit_code == 0 and "auc_roc" in result.stdout and version in result.stdout


def test_registry_show_unknown_and_train_unknown_are_exit_2(make_settings):
    settings = make_settings()
    result = runner.invoke(app, ["registry", "show", "nope", "--config", settings.config_uri,
                                 "--registry", settings.registry_uri])
    assert result.exit_code == 2 and "readmit registry list" in result.stderr
    result = runner.invoke(app, ["train", "-a", "svm", *_args(settings)])
    assert result.exit_code == 2 and "unknown algorithm" in result.stderr


def test_compare_without_models_is_exit_2(make_settings):
    settings = make_settings()
    result = runner.invoke(app, ["compare", "--config", settings.config_uri, "--registry", settings.registry_uri])
    assert result.exit_code == 2 and "readmit train" in result.stderr
