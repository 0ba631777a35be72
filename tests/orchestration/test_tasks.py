"""What an Airflow task runs (gate, step) and what a container gets (command, environment)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest

from readmit.config import ReadmitConfig, Settings
from readmit.errors import ReadmitInputError
from readmit.orchestration import tasks
from readmit.pipeline import GRAPHS, graph_steps


def settings(datamart="s3://b/dm", registry="s3://b/reg", config_uri="s3://b/conf.json", raw=None) -> Settings:
    return Settings(config=ReadmitConfig(), config_uri=config_uri, raw_path=raw,
                    datamart_uri=datamart, registry_uri=registry)


def test_container_env_is_the_settings_as_variables():
    assert tasks.container_env(settings(raw="s3://b/raw.zip")) == {
        "READMIT_DATAMART_URI": "s3://b/dm", "READMIT_REGISTRY_URI": "s3://b/reg",
        "READMIT_CONFIG": "s3://b/conf.json", "READMIT_RAW": "s3://b/raw.zip",
    }


def test_container_env_refuses_local_locations_and_names_them():
    with pytest.raises(ReadmitInputError) as err:
        tasks.container_env(settings(registry="./model_registry", config_uri="conf/model_config.json"))
    message = str(err.value)
    assert "READMIT_CONFIG=conf/model_config.json" in message
    assert "READMIT_REGISTRY_URI=./model_registry" in message
    assert "READMIT_DATAMART_URI" not in message and "READMIT_EXECUTOR=local" in message


def test_container_command_is_readmit_step_run_with_the_templated_month_range():
    s = settings()
    medallion, training = GRAPHS["medallion"], GRAPHS["training"]
    gold = graph_steps("medallion", s)[-1]
    assert tasks.container_command(gold, medallion, s) == [
        "step", "run", "gold", "--start", "{{ params.start_month }}", "--end", "{{ params.end_month }}"]
    train = next(x for x in graph_steps("training", s) if x.id == "train_xgboost")
    assert tasks.container_command(train, training, s) == ["step", "run", "train_xgboost"]


def test_env_value_prefers_the_readmit_name_then_aliases_and_says_what_to_set(monkeypatch):
    monkeypatch.delenv("READMIT_X", raising=False)
    monkeypatch.setenv("REF_X", "alias")
    assert tasks.env_value("READMIT_X", "REF_X") == "alias"
    monkeypatch.setenv("READMIT_X", "mine")
    assert tasks.env_value("READMIT_X", "REF_X") == "mine"
    monkeypatch.delenv("REF_X")
    monkeypatch.delenv("READMIT_X")
    assert tasks.env_value("READMIT_X", default="d") == "d"
    with pytest.raises(ReadmitInputError, match=r"(?s)READMIT_X is not set.*alias: REF_X"):
        tasks.env_value("READMIT_X", "REF_X", required=True)
    monkeypatch.setenv("READMIT_X", " a, b ,,")
    assert tasks.env_list("READMIT_X") == ["a", "b"]


@dataclass
class Check:
    name: str
    passed: bool
    reason: str
    details: dict = field(default_factory=dict)

    def as_dict(self):
        return {"name": self.name, "passed": self.passed}


def test_run_gate_returns_passed_and_logs_the_reason(monkeypatch, caplog):
    monkeypatch.setattr(tasks, "load_settings", lambda: settings())
    monkeypatch.setattr(tasks, "run_step", lambda step_id, s: Check(step_id, False, "no gold partitions"))
    with caplog.at_level(logging.INFO, logger=tasks.__name__):
        assert tasks.run_gate("check_gold_data_exists") is False
    assert "check_gold_data_exists FAILED: no gold partitions" in caplog.text


def test_run_gate_with_a_config_invalid_since_parsing_fails_the_gate(monkeypatch, caplog):
    from readmit.errors import ConfigError

    def invalid():
        raise ConfigError("conf.json", ["temporal_splits.test.start_date: must not overlap"])

    monkeypatch.setattr(tasks, "load_settings", invalid)
    with caplog.at_level(logging.INFO, logger=tasks.__name__):
        assert tasks.run_gate("check_model_config") is False
    assert "check_model_config FAILED" in caplog.text and "must not overlap" in caplog.text


def test_run_task_runs_the_step_logs_its_progress_and_returns_a_json_safe_result(monkeypatch, caplog):
    import readmit.data.medallion as medallion
    from readmit.data.layers import LayerResult

    monkeypatch.setattr(tasks, "load_settings", lambda: settings())
    seen = {}

    def fake_medallion(s, *, layers, start_month=None, end_month=None, progress=None):
        seen.update(layers=layers, start_month=start_month, end_month=end_month)
        progress("silver", "partition", "2001-02")
        return [LayerResult("silver", ["2001-01", "2001-02"], rows_in=10, rows_out=9)]

    monkeypatch.setattr(medallion, "run_medallion", fake_medallion)
    with caplog.at_level(logging.INFO, logger=tasks.__name__):
        result = tasks.run_task("silver", {"start_month": "2001-01", "end_month": "2001-02"})
    assert seen == {"layers": ("silver",), "start_month": "2001-01", "end_month": "2001-02"}
    assert result[0]["partitions"] == 2 and result[0]["rows_out"] == 9
    assert "silver 2001-02" in caplog.text
