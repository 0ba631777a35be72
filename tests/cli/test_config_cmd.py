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
