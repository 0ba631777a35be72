"""``readmit run`` and ``readmit step list|run`` on a random slice of the real UCI data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from readmit.cli import app
from readmit.storage import Storage

runner = CliRunner()
ALGORITHMS = ["logistic_regression", "random_forest", "xgboost"]


@pytest.fixture
def where(tmp_path, uci_sample):
    """Options pointing every location into tmp_path, with a tiny search budget."""

    def options(**training) -> list[str]:
        config = tmp_path / "model_config.json"
        config.write_text(json.dumps({"training_config": {
            "hyperparameter_tuning": {"n_iter": 1, "cv_folds": 2}, "min_train_partitions": 3, **training}}))
        return ["--config", str(config), "--raw", str(uci_sample),
                "--datamart", str(tmp_path / "datamart"), "--registry", str(tmp_path / "registry")]

    return options


def registry_files(tmp_path: Path) -> list[str]:
    folder = tmp_path / "registry" / "models" / "readmission"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_step_list_shows_both_graphs_in_order():
    result = runner.invoke(app, ["step", "list", "--json"])
    assert result.exit_code == 0, result.output
    steps = json.loads(result.stdout)
    assert [s["step"] for s in steps][:4] == ["bronze", "silver", "gold", "check_model_config"]
    training = [s for s in steps if s["graph"] == "training"]
    assert [s["step"] for s in training][-2:] == ["compare_models", "promote"]
    assert training[-2] == {**training[-2], "step": "compare_models", "kind": "light"}
    assert [s["step"] for s in steps if s["graph"] == "inference"] == [
        "check_champion", "check_inference_gold", "predict", "trigger_monitoring"]
    assert [s["step"] for s in steps if s["graph"] == "monitoring"] == [
        "check_predictions_exist", "monitor", "check_retrain_needed", "trigger_training"]
    assert {s["step"]: s["kind"] for s in steps}["train_xgboost"] == "heavy"


def test_step_run_is_the_container_command_for_one_layer_and_month(where, tmp_path):
    result = runner.invoke(app, ["step", "run", "bronze", "--start", "2003-02", "--end", "2003-02", *where()])
    assert result.exit_code == 0, result.output
    (layer,) = json.loads(result.stdout)
    assert layer["layer"] == "bronze" and layer["partitions"] == 1 and layer["first"] == "2003-02"
    assert Storage(str(tmp_path / "datamart")).list_partitions("bronze/encounters") == ["2003-02"]


def test_step_run_refuses_a_month_range_for_a_training_step(where):
    result = runner.invoke(app, ["step", "run", "train_xgboost", "--start", "2003-02", *where()])
    assert result.exit_code == 2
    assert "--start/--end do not apply to train_xgboost" in result.stderr


def test_step_run_of_an_unknown_step_lists_the_known_ones(where):
    result = runner.invoke(app, ["step", "run", "train_catboost", *where()])
    assert result.exit_code == 2
    assert "unknown step 'train_catboost'" in result.stderr and "train_xgboost" in result.stderr


def test_step_run_of_a_failing_gate_exits_1_with_the_reason(where):
    result = runner.invoke(app, ["step", "run", "check_gold_data_exists", *where()])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["passed"] is False
    assert "gate check_gold_data_exists failed" in result.stderr


def test_run_stops_at_the_failed_gate_names_it_and_trains_nothing(where, tmp_path):
    result = runner.invoke(app, ["run", "--json", *where(min_train_partitions=1000)])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["failed_gate"]["step"] == "check_sufficient_training_data"
    assert report["failed_gate"]["passed"] is False and "Fix:" in report["failed_gate"]["reason"]
    status = {s["step"]: s["status"] for s in report["steps"]}
    assert status["gold"] == "done" and status["check_sufficient_training_data"] == "failed"
    assert {status[f"train_{a}"] for a in ALGORITHMS} | {status["compare_models"], status["promote"]} == {"skipped"}
    assert "gate check_sufficient_training_data failed" in result.stderr
    assert registry_files(tmp_path) == []


@pytest.mark.slow
def test_run_end_to_end_then_rerun_in_parallel(where, tmp_path):
    options = where()
    result = runner.invoke(app, ["run", "--json", "--no-parallel", *options])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["parallel"] is False and report["failed_gate"] is None
    assert [s["step"] for s in report["steps"]] == [
        "bronze", "silver", "gold", "check_model_config", "check_gold_data_exists",
        "check_sufficient_training_data", "check_temporal_leakage", "check_single_source",
        *[f"train_{a}" for a in ALGORITHMS], "compare_models", "promote"]
    assert {s["status"] for s in report["steps"]} == {"done"}
    assert report["recommended"]["algorithm"] in ALGORITHMS and report["recommended"]["reason"]
    assert report["promotion"]["decision"] == "PROMOTED"  # the first eligible model becomes champion
    assert report["promotion"]["candidate"]["version"] == report["recommended"]["version"]
    trained = {s["step"]: s["result"] for s in report["steps"] if s["step"].startswith("train_")}
    for algorithm in ALGORITHMS:
        meta = trained[f"train_{algorithm}"]
        assert meta["algorithm"] == algorithm
        assert 0.5 < meta["performance"]["oot"]["auc_roc"] < 0.75
    files = registry_files(tmp_path)
    assert "latest_model_comparison.json" in files
    assert all(f"{a}_latest_metadata.json" in files for a in ALGORITHMS)
    # every registered version has its model card, and the report covers the whole flow
    for algorithm in ALGORITHMS:
        version = trained[f"train_{algorithm}"]["version"]
        assert {f"{algorithm}_v{version}_model_card.md", f"{algorithm}_v{version}_model_card.json"} <= set(files)
    no_raw = options[:2] + options[4:]  # --config C --datamart D --registry R
    page = runner.invoke(app, ["report", "--json", *no_raw])
    assert page.exit_code == 0, page.output
    page = json.loads(page.stdout)
    assert page["champion"] == report["recommended"]["algorithm"]
    assert all(page["sections"][s] == "shown" for s in ("data", "models", "usefulness", "fairness", "lineage"))
    assert Path(page["latest"]).is_file() and page["bytes"] < 5_000_000

    # Rerunning is safe: same gold partitions, one more version of every model.
    result = runner.invoke(app, ["run", "--parallel", *options])
    assert result.exit_code == 0, result.output
    assert "recommended:" in result.stdout and "Brier" in result.stdout and "O/E" in result.stdout
    assert all(a in result.stdout for a in ALGORITHMS)
    assert "training in parallel" in result.stdout
    assert "champion:" in result.stdout
    assert "HTML report: `readmit report --datamart" in " ".join(result.stdout.split())  # where the page comes from
    assert len(Storage(str(tmp_path / "datamart")).list_partitions("gold/feature_store")) == 120
    for algorithm in ALGORITHMS:
        versions = [f for f in registry_files(tmp_path)
                    if f.startswith(f"{algorithm}_v") and f.endswith("_metadata.json")]
        assert len(versions) == 2, versions


@pytest.mark.parametrize(("cpus", "n_jobs", "algorithms", "expected"), [
    (2, -1, ALGORITHMS, False),  # each search already takes both cores: measured slower in parallel
    (2, 1, ALGORITHMS, False),   # 3 single-core searches do not fit in 2 cores
    (8, 1, ALGORITHMS, True),
    (8, 2, ALGORITHMS, True),
    (8, -1, ALGORITHMS, False),
    (8, 1, ["xgboost"], False),  # nothing to run side by side
])
def test_parallel_by_default_only_when_every_search_gets_its_own_cores(monkeypatch, cpus, n_jobs, algorithms,
                                                                        expected):
    from readmit import runtime
    from readmit.cli.run_cmd import default_parallel
    from readmit.config import Settings, parse_config

    monkeypatch.setattr(runtime, "available_cpus", lambda: cpus)
    cfg = parse_config({"training_config": {"algorithms": algorithms,
                                            "hyperparameter_tuning": {"n_jobs": n_jobs}}})
    settings = Settings(config=cfg, config_uri=None, raw_path=None, datamart_uri="d", registry_uri="r")
    assert default_parallel(settings) is expected


def test_version_is_the_packages():
    import tomllib

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert result.stdout == f"readmit {pyproject['project']['version']}\n"


@pytest.mark.slow
def test_run_demo_needs_no_download_and_says_it_is_synthetic(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("READMIT_RAW", "READMIT_CONFIG", "READMIT_DATAMART_URI", "READMIT_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["run", "--demo"])
    assert result.exit_code == 0, result.output
    assert "demo: 20,000 SYNTHETIC encounters (no download; not the UCI data)" in " ".join(result.stderr.split())
    out = " ".join(result.stdout.split())
    assert "champion: PROMOTED" in out and "demo done: the figures above come from synthetic data" in out
    report = tmp_path / "readmit-demo" / "registry" / "reports" / "readmit_report_latest.html"
    assert f"HTML report: {report}" in out and report.stat().st_size > 10_000
    refused = runner.invoke(app, ["run", "--demo", "--raw", "x.csv"])
    assert refused.exit_code == 2 and "--demo brings its own data and config" in refused.stderr

