"""``readmit monitor`` and ``readmit ab-report`` on the small registry's predictions, locally and on S3 (moto server)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from readmit.cli import app

runner = CliRunner()


def args(settings) -> list[str]:
    return ["--config", settings.config_uri, "--datamart", settings.datamart_uri, "--registry", settings.registry_uri]


def test_monitor_prints_observed_and_estimated_months_and_the_decision(small_own_registry):
    result = runner.invoke(app, ["monitor", "--start", "2008-01", "--end", "2008-12", "--as-of", "2008-10-15",
                                 *args(small_own_registry)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Monitoring logistic_regression" in out and "labels as of 2008-10-15" in out
    assert out.count("mature ") >= 8 and out.count("estimated") >= 3  # 2008-01..08 / 2008-09..11
    assert "no predictions for: 2008-12" in out
    assert "Decision: " in out and "Written to " in out


def test_monitor_json_is_the_record(small_own_registry):
    result = runner.invoke(app, ["monitor", "--start", "2008-09", "--end", "2008-09", "--as-of", "2008-10-15",
                                 "--json", *args(small_own_registry)])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert [m["labels"] for m in record["months"]] == ["immature"]
    assert record["decision"]["action"] in ("keep", "watch", "retrain")


def test_monitor_without_predictions_or_with_a_bad_date_exits_2_saying_what_to_do(small_own_registry):
    result = runner.invoke(app, ["monitor", "--start", "2007-01", "--end", "2007-03", *args(small_own_registry)])
    assert result.exit_code == 2
    assert "no predictions for 2007-01..2007-03" in result.stderr and "readmit predict" in result.stderr
    result = runner.invoke(app, ["monitor", "--start", "2008-01", "--end", "2008-02", "--as-of", "15/10/2008",
                                 *args(small_own_registry)])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.stderr


def test_ab_report_prints_both_arms_the_intervals_and_a_verdict(small_own_registry):
    result = runner.invoke(app, ["ab-report", "--as-of", "2008-10-15", *args(small_own_registry)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "mature months 2008-01..2008-08" in out
    assert "champion" in out and "challenger" in out and "95% CI" in out
    assert "Verdict: challenger" in out or "Verdict: not enough evidence yet" in out


def test_monitor_and_ab_report_on_s3(served, s3_uri):
    """The real data (slow): the champion has no profile yet, so monitoring backfills it on S3."""
    import s3fs

    from serving.model_fixtures import upload

    fs = s3fs.S3FileSystem()
    bucket = s3_uri[len("s3://"):]
    for table in ("gold/feature_store", "gold/label_store", "gold/model_predictions"):  # one bulk put each
        upload(Path(served.settings.datamart_uri) / table, f"{bucket}/datamart/{table}")
    upload(Path(served.settings.registry_uri) / "models", f"{bucket}/registry/models")
    remote = ["--config", served.settings.config_uri, "--datamart", f"{s3_uri}/datamart",
              "--registry", f"{s3_uri}/registry"]
    result = runner.invoke(app, ["monitor", "--start", "2008-07", "--end", "2008-10", "--as-of", "2008-10-15",
                                 "--json", *remote])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert [m["labels"] for m in record["months"]] == ["mature", "mature", "immature", "immature"]
    assert record["path"].startswith(f"{s3_uri}/registry/monitoring/readmission/monitoring_")
    assert fs.exists(f"{bucket}/registry/monitoring/readmission/latest_monitoring.json")
    assert fs.exists(f"{bucket}/registry/models/readmission/{served.champion['algorithm']}_v"
                     f"{served.champion['version']}_profile.json")  # backfilled on S3
    result = runner.invoke(app, ["ab-report", "--as-of", "2008-10-15", "--json", *remote])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["months"] == [f"2008-{i:02d}" for i in range(1, 9)]
    assert fs.exists(f"{bucket}/registry/monitoring/readmission/latest_ab_report.json")
