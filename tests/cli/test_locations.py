"""``readmit run`` shows where files went: the relative defaults resolved against the start directory."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from readmit import pipeline
from readmit.cli import app


@pytest.mark.slow
def test_run_summary_shows_the_absolute_default_roots(tmp_path, monkeypatch):
    for name in ("READMIT_DATAMART_URI", "DATAMART_BASE_URI", "READMIT_REGISTRY_URI", "READMIT_CONFIG",
                 "MODEL_CONFIG_S3_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    pipeline.write_synthetic("raw.csv", rows=400, seed=1, with_snapshot=False)  # too small: a gate stops it
    result = CliRunner().invoke(app, ["run", "--raw", "raw.csv", "--no-parallel"])
    assert result.exit_code == 1, result.output
    summary = " ".join(result.stdout.split())
    assert f"datamart: {tmp_path / 'datamart'} registry: {tmp_path / 'model_registry'}" in summary
    assert (tmp_path / "datamart" / "bronze").is_dir()
