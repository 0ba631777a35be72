"""``readmit promote | predict | registry aliases | registry history`` on the small registry (synthetic gold, three models)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from readmit.cli import app
from readmit.data.layers import PREDICTIONS
from readmit.storage import Storage

runner = CliRunner()


def _args(small_models) -> list[str]:
    return ["--config", small_models.config, "--datamart", small_models.datamart, "--registry", small_models.registry]


def test_promote_then_predict_then_aliases_and_history(small_models_copy):
    args = _args(small_models_copy)
    result = runner.invoke(app, ["predict", "--month", "2008-01", *args])
    assert result.exit_code == 2
    assert "no champion model yet" in result.stderr and "readmit promote" in result.stderr

    result = runner.invoke(app, ["promote", *args])
    assert result.exit_code == 0, result.output
    assert "PROMOTED" in result.stdout and "floor_min_auc" in result.stdout and "decision:" in result.stdout

    result = runner.invoke(app, ["predict", "--start", "2008-01", "--end", "2008-02", *args])
    assert result.exit_code == 0, result.output
    assert "2008-01" in result.stdout and "2008-02" in result.stdout and "mean risk" in result.stdout
    assert Storage(small_models_copy.datamart).list_partitions(PREDICTIONS) == ["2008-01", "2008-02"]

    result = runner.invoke(app, ["predict", "--month", "2008-03", "--json", *args])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [m["month"] for m in summary["months"]] == ["2008-03"] and summary["models"][0]["arm"] == "champion"

    result = runner.invoke(app, ["registry", "aliases", "--json", *args[:2], *args[4:]])
    assert result.exit_code == 0, result.output
    aliases = json.loads(result.stdout)
    assert aliases["challenger"] is None and aliases["champion"]["version"] == summary["models"][0]["version"]

    result = runner.invoke(app, ["registry", "history", *args[:2], *args[4:]])
    assert result.exit_code == 0, result.output
    assert "promotion" in result.stdout and "champion" in result.stdout


def test_a_rejected_candidate_exits_1_and_force_needs_a_reason(small_models_copy, tmp_path):
    config = tmp_path / "strict.json"
    base = json.loads(open(small_models_copy.config).read())
    config.write_text(json.dumps({**base, "governance_config": {"min_auc_gain": 0.5}}))
    args = ["--config", str(config), "--datamart", small_models_copy.datamart, "--registry", small_models_copy.registry]
    models = small_models_copy.models()
    assert runner.invoke(app, ["promote", "--candidate", models["xgboost"], *args]).exit_code == 0
    result = runner.invoke(app, ["promote", "--candidate", models["logistic_regression"], "--json", *args])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["decision"] == "REJECTED"

    result = runner.invoke(app, ["promote", "--candidate", models["logistic_regression"], "--force", *args])
    assert result.exit_code == 2 and "--force needs --reason" in result.stderr
    result = runner.invoke(app, ["promote", "--candidate", models["logistic_regression"], "--force",
                                 "--reason", "audit asked", *args])
    assert result.exit_code == 0 and "PROMOTED (FORCED)" in result.stdout

    result = runner.invoke(app, ["promote", "--rollback", "--reason", "undo", *args])
    assert result.exit_code == 0, result.output
    assert f"-> xgboost v{models['xgboost']}" in result.stdout


def test_predict_without_gold_names_the_month_and_the_command(small_models_copy):
    args = _args(small_models_copy)
    runner.invoke(app, ["promote", *args])
    result = runner.invoke(app, ["predict", "--month", "2010-05", *args])
    assert result.exit_code == 2
    assert "no gold for 2010-05" in result.stderr
    assert "readmit medallion --start 2010-05 --end 2010-05" in result.stderr
    result = runner.invoke(app, ["predict", "--month", "2008-01", "--start", "2008-01", *args])
    assert result.exit_code == 2 and "--month or --start/--end" in result.stderr


@pytest.mark.slow
def test_predict_on_spark_from_the_command_line(small_models_copy, spark_session):
    args = _args(small_models_copy)
    runner.invoke(app, ["promote", *args])
    result = runner.invoke(app, ["predict", "--month", "2008-01", "--engine", "pandas", *args])
    assert result.exit_code == 2 and "unknown engine 'pandas'" in result.stderr
    result = runner.invoke(app, ["predict", "--month", "2008-01", "--engine", "spark", *args])
    assert result.exit_code == 0, result.output
    assert "(scored by spark)" in result.stdout and "2008-01" in result.stdout
    assert Storage(small_models_copy.datamart).list_partitions(PREDICTIONS) == ["2008-01"]
