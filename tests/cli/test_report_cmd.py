"""``readmit report``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from readmit.cli import app

runner = CliRunner()


def test_report_command_writes_the_page_and_says_where(registry_copy):
    s = registry_copy
    args = ["report", "--config", s.config_uri, "--datamart", s.datamart_uri, "--registry", s.registry_uri]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert Path(data["path"]).is_file() and Path(data["latest"]).read_bytes() == Path(data["path"]).read_bytes()
    assert data["bytes"] == Path(data["path"]).stat().st_size
    assert data["sections"]["models"] == "shown" and data["sections"]["over-time"] == "partial"
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "Report:" in table.stdout and "Latest:" in table.stdout and "some inputs missing" in table.stdout


def test_report_command_with_a_bad_config_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"unknown_key": 1}')
    result = runner.invoke(app, ["report", "--config", str(bad), "--registry", str(tmp_path / "r")])
    assert result.exit_code == 2 and "unknown_key" in result.stderr
