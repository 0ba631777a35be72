"""``readmit registry list | show | gc`` and ``readmit compare`` on broken, copied and littered registries."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from typer.testing import CliRunner

from readmit.cli import app
from readmit.registry import Registry

runner = CliRunner()
ALG = "xgboost"
FOLDER = "models/readmission"


def _save(uri: str, algorithm: str = ALG, oot: float = 0.65, test: float = 0.66) -> dict:
    perf = {"test": {"auc_roc": test}, "oot": {"auc_roc": oot}}
    return Registry(uri).save(algorithm, {"algorithm": algorithm}, {"performance": perf})


def test_registry_list_on_a_missing_bucket_is_an_error(s3_endpoint):
    for command in (["registry", "list"], ["registry", "show", ALG], ["compare"], ["registry", "gc"]):
        result = runner.invoke(app, [*command, "--registry", "s3://no-such-bucket-readmit/reg"])
        assert result.exit_code == 2, (command, result.output)
        assert "bucket 'no-such-bucket-readmit' does not exist" in result.stderr
        assert "aws s3 mb s3://no-such-bucket-readmit" in result.stderr and "no models yet" not in result.output


def test_registry_list_on_an_empty_bucket_says_no_models_yet(s3_uri):
    result = runner.invoke(app, ["registry", "list", "--registry", f"{s3_uri}/reg"])
    assert result.exit_code == 0 and "no models yet" in result.stderr


def test_registry_show_on_a_copied_registry_shows_the_copy(tmp_path):
    original, copy = tmp_path / "original", tmp_path / "copy"
    saved = _save(str(original))
    stored = json.loads((original / FOLDER / f"{ALG}_v{saved['version']}_metadata.json").read_text())
    assert str(original) not in json.dumps(stored)  # names relative to the registry only
    shutil.copytree(original, copy)
    shutil.rmtree(original)
    result = runner.invoke(app, ["registry", "show", ALG, "--registry", str(copy), "--json"])
    assert result.exit_code == 0, result.output
    paths = json.loads(result.stdout)["paths"]
    assert paths["artifact"] == str(copy / FOLDER / f"{ALG}_v{saved['version']}.pkl")
    result = runner.invoke(app, ["registry", "show", ALG, "--registry", str(copy)])
    artifact = copy / FOLDER / f"{ALG}_v{saved['version']}.pkl"
    assert f"artifact: {artifact}" in result.stdout.replace("\n", "")


def test_compare_with_truncated_latest_metadata_says_so(tmp_path):
    uri = str(tmp_path / "reg")
    good = _save(uri, "random_forest", oot=0.70, test=0.70)  # the best on test, where models are chosen
    _save(uri, "logistic_regression", oot=0.65)
    _save(uri, ALG, oot=0.60)
    latest = tmp_path / "reg" / FOLDER / "random_forest_latest_metadata.json"
    latest.write_bytes(latest.read_bytes()[:150])
    result = runner.invoke(app, ["compare", "--registry", uri])
    assert result.exit_code == 0, result.output
    assert "Recommended: random_forest" in result.stdout.replace("\n", " ")
    assert "warning (random_forest)" in result.stderr and good["version"] in result.stderr
    assert "corrupt or truncated" in result.stderr


def _age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.mark.parametrize("dry_run", [False, True])
def test_gc_removes_old_temporaries_and_lists_orphans(tmp_path, dry_run):
    uri = str(tmp_path / "reg")
    complete = _save(uri)
    folder = tmp_path / "reg" / FOLDER
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    old_tmp = folder / ".tmp-0123abcd-xgboost_latest.pkl"
    old_tmp.write_bytes(b"half")
    _age(old_tmp, 2 * 3600)
    nested = tmp_path / "reg" / "monitoring" / "readmission"
    nested.mkdir(parents=True)
    (nested / ".tmp-beef-latest_monitoring.json").write_bytes(b"{")
    _age(nested / ".tmp-beef-latest_monitoring.json", 2 * 3600)
    young_tmp = folder / ".tmp-4567-xgboost_v20990101_000000.pkl"  # a save writing right now
    young_tmp.write_bytes(b"in progress")
    (folder / "random_forest_v20240101_000000.pkl").write_bytes(b"killed before its metadata")
    (folder / "logistic_regression_v20240102_000000_metadata.json").write_text("{}")

    args = ["registry", "gc", "--registry", uri, "--json", *(["--dry-run"] if dry_run else [])]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted(report["temporaries"]) == sorted([str(old_tmp), str(nested / ".tmp-beef-latest_monitoring.json")])
    assert report["temporaries_too_young"] == [str(young_tmp)]
    assert [(o["file"].rsplit("/", 1)[-1], o["problem"]) for o in report["orphans"]] == [
        ("logistic_regression_v20240102_000000_metadata.json", "metadata without artifact"),
        ("random_forest_v20240101_000000.pkl", "artifact without metadata"),
    ]
    assert old_tmp.exists() == dry_run and young_tmp.exists()
    assert (folder / "random_forest_v20240101_000000.pkl").exists()  # listed, not removed
    for name, data in before.items():  # the complete version and latest pointers are untouched
        assert (folder / name).read_bytes() == data
    assert Registry(uri).load(ALG, complete["version"])[0] == {"algorithm": ALG}

    result = runner.invoke(app, ["registry", "gc", "--registry", uri, "--older-than", "0"])
    assert result.exit_code == 0, result.output
    assert not young_tmp.exists() and "orphan (artifact without metadata)" in result.stdout


def test_gc_on_s3_lists_orphans(s3_uri):
    uri = f"{s3_uri}/reg"
    complete = _save(uri)
    reg = Registry(uri)
    reg.storage.write_bytes(f"{FOLDER}/{ALG}_v20240101_000000.pkl", b"killed before its metadata")
    result = runner.invoke(app, ["registry", "gc", "--registry", uri, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["temporaries"] == []
    assert [o["file"] for o in report["orphans"]] == [reg.location(f"{ALG}_v20240101_000000.pkl")]
    assert reg.load(ALG, complete["version"])[0] == {"algorithm": ALG}


@pytest.mark.parametrize("name", ["..", "../x", "."])
def test_config_validate_refuses_model_names_that_leave_the_registry(tmp_path, name):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model_config": {"model_name": name}}))
    result = runner.invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "model_config.model_name" in result.stderr and "not a plain folder name" in result.stderr


def test_registry_list_names_unusable_versions(tmp_path, monkeypatch):
    monkeypatch.setenv("READMIT_REGISTRY_KEY", "a key")
    uri = str(tmp_path / "reg")
    saved = _save(uri)
    path = tmp_path / "reg" / FOLDER / f"{ALG}_v{saved['version']}_metadata.json"
    meta = json.loads(path.read_text())
    meta["performance"]["oot"]["auc_roc"] = 0.99  # tampered with
    path.write_text(json.dumps(meta))
    result = runner.invoke(app, ["registry", "list", "--registry", uri])
    assert result.exit_code == 0, result.output
    assert f"unusable {ALG} v{saved['version']}" in result.stderr and "signature does not match" in result.stderr
