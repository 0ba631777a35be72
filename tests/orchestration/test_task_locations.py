"""An Airflow task logs the absolute locations it uses: its working directory never decides silently."""

from __future__ import annotations

import logging

from readmit.orchestration import tasks


def test_a_task_logs_its_absolute_locations(tmp_path, monkeypatch, caplog):
    for name in ("READMIT_DATAMART_URI", "DATAMART_BASE_URI", "READMIT_REGISTRY_URI", "READMIT_CONFIG",
                 "MODEL_CONFIG_S3_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # the worker's working directory; the built-in defaults apply
    with caplog.at_level(logging.INFO, logger=tasks.log.name):
        assert tasks.run_gate("check_model_config") is True
    assert f"datamart: {tmp_path / 'datamart'}  registry: {tmp_path / 'model_registry'}" in caplog.text
