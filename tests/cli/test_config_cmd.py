import json
from pathlib import Path

from typer.testing import CliRunner

from readmit.cli import app

CONFS = Path(__file__).resolve().parents[1] / "confs"
runner = CliRunner()


def test_validate_default_config():
    result = runner.invoke(app, ["config", "validate", str(CONFS / "valid" / "default.json")])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "2006-01-01 .. 2007-12-31" in result.output


def test_validate_invalid_config_lists_everything_and_exits_2():
    result = runner.invoke(app, ["config", "validate", str(CONFS / "invalid" / "many_problems.json")])
    assert result.exit_code == 2
    out = result.output
    assert "invalid configuration" in out
    assert "training_config.hyperparameter_tuning.n_iter" in out
    assert "unknown_section" in out
    assert "temporal_splits.test" in out


def test_schema_is_json():
    result = runner.invoke(app, ["config", "schema"])
    assert result.exit_code == 0
    assert "temporal_splits" in json.loads(result.output)["properties"]


def test_error_message_is_printed_as_text_not_markup(tmp_path):
    # Brackets in a path (or a zip member label) must survive; rich would eat "[draft]" as a tag.
    missing = tmp_path / "[draft]" / "model_config.json"
    result = runner.invoke(app, ["config", "validate", str(missing)])
    assert result.exit_code == 2
    assert str(missing) in result.output.replace("\n", "")
    odd = tmp_path / "[" / "x]" / "c.json"  # the path contains "[/x]", a closing tag to rich
    result = runner.invoke(app, ["config", "validate", str(odd)])
    assert result.exit_code == 2 and str(odd) in result.output.replace("\n", "")


def test_validate_refuses_duplicate_keys_with_exit_2(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text('{"model_config": {"random_state": 1, "random_state": 2}}')
    result = runner.invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 2
    assert "model_config.random_state: duplicate key" in result.output


def test_validate_the_reference_projects_file_lists_what_each_key_became():
    result = runner.invoke(app, ["config", "validate", str(CONFS / "reference" / "model_config.json")])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "13 translated, 6 not followed" in out
    assert "model_config.model_registry_bucket -> model_config.registry_uri = s3://diab-readmit-123456-model-registry/models" in out
    assert "inference_config.prediction_threshold -> training_config.threshold = fixed 0.5" in out
    assert "monitoring_config.minimum_performance_threshold.auc_roc -> monitoring_config.min_auc = 0.7" in out
    assert "warning training_config.class_weight -> not used: readmit fits without class weights" in out
    assert "(Out-of-Time window: 1 year holdout" in out


def test_translate_writes_readmits_own_keys_which_validate_unchanged(tmp_path):
    out = tmp_path / "native.json"
    result = runner.invoke(app, ["config", "translate", str(CONFS / "reference" / "model_config.json"),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "13 key(s) translated, 6 dropped" in result.stdout
    assert result.stderr.count("warning:") == 6 and "training_config.feature_selection dropped" in result.stderr
    native = json.loads(out.read_text())
    assert native["model_config"] == {"random_state": 42,
                                      "registry_uri": "s3://diab-readmit-123456-model-registry/models"}
    assert native["training_config"]["threshold"] == {"rule": "fixed", "value": 0.5}
    again = runner.invoke(app, ["config", "validate", str(out)])
    assert again.exit_code == 0 and "reference project keys" not in again.output
    shown = [json.loads(runner.invoke(app, ["config", "show", str(p)]).stdout)
             for p in (out, CONFS / "reference" / "model_config.json")]
    assert shown[0] == shown[1]


def test_every_key_of_the_schema_has_a_description():
    schema = json.loads(runner.invoke(app, ["config", "schema"]).stdout)
    defs, missing = schema["$defs"], []

    def walk(obj, path):
        for key, prop in obj.get("properties", {}).items():
            if not prop.get("description"):
                missing.append(path + key)
            ref = prop.get("$ref") or next((p["$ref"] for p in prop.get("anyOf", []) if "$ref" in p), None)
            if ref:
                walk(defs[ref.split("/")[-1]], f"{path}{key}.")

    walk(schema, "")
    assert missing == []
    assert len(json.dumps(schema)) > 10_000  # the ~90 keys, not a stub


def test_docs_configuration_md_is_generated_from_the_models():
    # after changing a key: readmit config docs --out docs/configuration.md
    page = (CONFS.parents[1] / "docs" / "configuration.md").read_text()
    result = runner.invoke(app, ["config", "docs"])
    assert result.exit_code == 0
    assert result.stdout == page, "docs/configuration.md is stale: run `readmit config docs --out docs/configuration.md`"
    assert "| `min_auc` | number | `0.6` | Alert, and retrain, below this ROC-AUC" in page


def test_a_command_on_the_reference_config_warns_once_per_key_not_followed(tmp_path):
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "from readmit.cli import main; main()", "check", "--config",
         str(CONFS / "reference" / "model_config.json"), "--datamart", str(tmp_path / "dm")],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "300"})
    assert done.returncode == 1  # no gold here; the config itself passes its gate
    assert "model_config │ pass" in " ".join(done.stdout.split())
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 6, done.stderr
    assert sum("training_config.class_weight: not used" in w for w in warnings) == 1


def test_the_seeds_change_algorithms_example_validates_on_the_command_line(tmp_path):
    path = tmp_path / "seed.json"
    path.write_text(json.dumps({"training_config": {"algorithms": ["xgboost"], "hyperparameter_tuning": True}}))
    result = runner.invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "algorithms: xgboost" in result.output
    assert "training_config.hyperparameter_tuning -> training_config.hyperparameter_tuning.method = random_search" \
        in " ".join(result.output.split())
