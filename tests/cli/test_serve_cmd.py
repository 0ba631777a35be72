"""``readmit promote | predict | registry aliases | registry history`` on the small registry (synthetic gold, three models)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from readmit.cli import app
from readmit.data.layers import PREDICTIONS
from readmit.storage import Storage

runner = CliRunner()
ALGORITHMS = ("logistic_regression", "xgboost", "random_forest")


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
    result = runner.invoke(app, ["predict", "--month", "2008-01", "--engine", "pandas", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "'pandas' is not one of 'polars', 'duckdb', 'spark'" in result.stderr
    result = runner.invoke(app, ["predict", "--month", "2008-01", "--engine", "spark", *args])
    assert result.exit_code == 0, result.output
    assert "(scored by spark)" in result.stdout and "2008-01" in result.stdout
    assert Storage(small_models_copy.datamart).list_partitions(PREDICTIONS) == ["2008-01"]


def test_an_ab_test_starts_when_the_user_names_the_challenger(small_models_copy, tmp_path):
    config = tmp_path / "ab.json"
    base = json.loads(open(small_models_copy.config).read())
    config.write_text(json.dumps({**base, "inference_config": {"ab_test": {"enabled": True, "challenger_share": 0.5,
                                                                           "salt": "rf-vs-champion"}}}))
    args = ["--config", str(config), "--datamart", small_models_copy.datamart, "--registry", small_models_copy.registry]
    reg_args = ["--config", str(config), "--registry", small_models_copy.registry]
    models = small_models_copy.models()
    assert runner.invoke(app, ["promote", *args]).exit_code == 0  # the rules choose the champion
    champion = json.loads(runner.invoke(app, ["registry", "aliases", "--json", *reg_args]).stdout)["champion"]
    other = next(a for a in ("random_forest", "logistic_regression") if a != champion["algorithm"])

    result = runner.invoke(app, ["predict", "--month", "2008-01", *args])
    assert result.exit_code == 2 and "no challenger" in result.stderr
    assert "readmit promote --candidate VERSION --as challenger" in result.stderr

    result = runner.invoke(app, ["promote", "--as", "challenger", *args])
    assert result.exit_code == 2 and "--as challenger needs --candidate VERSION" in result.stderr
    result = runner.invoke(app, ["promote", "--candidate", champion["version"], "--as", "challenger", *args])
    assert result.exit_code == 2 and "is the champion; it cannot also be the challenger" in result.stderr
    result = runner.invoke(app, ["promote", "--candidate", models[other], "--as", "challenger", "--force",
                                 "--reason", "x", *args])
    assert result.exit_code == 2 and "takes no --rollback or --force" in result.stderr
    result = runner.invoke(app, ["promote", "--candidate", models[other], "--as", "rival", *args])
    assert result.exit_code == 2 and "rival" in result.output
    assert runner.invoke(app, ["registry", "aliases", "--json", *reg_args]).stdout.count('"challenger": null') == 1

    # No --reason: the event still says why (the default); the rules are not consulted.
    result = runner.invoke(app, ["promote", "--candidate", models[other], "--as", "challenger", *args])
    assert result.exit_code == 0, result.output
    assert f"CHALLENGER SET: challenger - -> {other} v{models[other]}" in result.stdout
    assert "named the challenger by hand" in result.stdout and "event: " in result.stdout
    result = runner.invoke(app, ["promote", "--candidate", models[other], "--as", "challenger", *args])
    assert result.exit_code == 0 and "UNCHANGED" in result.stdout and "already the challenger" in result.stdout
    result = runner.invoke(app, ["promote", "--candidate", f"xgboost_v{models['xgboost']}", "--as", "challenger",
                                 "--reason", "A/B the booster", "--json", *args])
    if champion["algorithm"] == "xgboost":
        assert result.exit_code == 2
    else:
        assert result.exit_code == 0 and json.loads(result.stdout)["reason"] == "A/B the booster"
        result = runner.invoke(app, ["promote", "--candidate", models[other], "--as", "challenger",
                                     "--reason", "back to the first rival", *args])
        assert result.exit_code == 0
    events = json.loads(runner.invoke(app, ["registry", "history", "--json", *reg_args]).stdout)
    named = [e for e in events if e["alias"] == "challenger"]
    assert named[0]["event"] == "alias_set" and named[0]["named"] is True
    assert named[0]["to"] == {"algorithm": other, "version": models[other]} and named[0]["by"]
    assert named[0]["reason"] == "named the challenger by hand (readmit promote --as challenger)"
    aliases = json.loads(runner.invoke(app, ["registry", "aliases", "--json", *reg_args]).stdout)
    assert aliases["challenger"]["version"] == models[other] and aliases["champion"] == champion

    result = runner.invoke(app, ["predict", "--month", "2008-01", "--json", *args])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [(m["arm"], m["algorithm"]) for m in summary["models"]] == [
        ("champion", champion["algorithm"]), ("challenger", other)]
    assert summary["ab_test"]["salt"] == "rf-vs-champion" and set(summary["arms"]) == {"champion", "challenger"}
    frame = Storage(small_models_copy.datamart).read_table(PREDICTIONS, ["2008-01"])
    assert sorted(frame["algorithm"].unique()) == sorted({champion["algorithm"], other})

    # Swapping the challenger while the test runs is allowed, and says what it does to the arms.
    third = next(a for a in ALGORITHMS if a not in (champion["algorithm"], other))
    result = runner.invoke(app, ["promote", "--candidate", models[third], "--as", "challenger", *args])
    assert result.exit_code == 0, result.output
    assert "the A/B test with salt 'rf-vs-champion' has run since" in result.stderr
    assert "Change inference_config.ab_test.salt to start a new test" in result.stderr
