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
