"""``readmit serve`` over real HTTP (uvicorn on loopback, httpx) on models of synthetic raw data."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import polars as pl
import pytest

from read_only import own_copy, writable_copy
from readmit import pipeline
from readmit.data.layers import PREDICTIONS
from readmit.errors import ReadmitInputError
from readmit.registry import Registry
from readmit.registry.aliases import set_alias
from readmit.service.app import create_app
from readmit.serving.history import HistoryStore, store_path
from readmit.serving.online import gold_rows, silver_rows
from readmit.storage import Storage
from service.live_server import (
    READER,
    TOKEN,
    LiveServer,
    auth,
    copy_datamart,
    raw_records,
    reader_config,
    reaped,
    uvicorn_workers,
)
from serving.model_fixtures import Served

AB = {"inference_config": {"ab_test": {"enabled": True, "challenger_share": 0.5, "salt": "serve-tests"}}}
MONTH = "2008-12"


@pytest.fixture
def deployed(serve_models, tmp_path, monkeypatch) -> Served:
    """A copy of the sample's datamart (bronze, silver, gold) and registry: champion XGBoost,
    challenger logistic regression, an A/B test, one token of every scope in the environment."""
    datamart = copy_datamart(serve_models.datamart, tmp_path / "datamart")
    writable_copy(serve_models.registry, tmp_path / "registry")
    s = Served(serve_models.config, datamart, str(tmp_path / "registry"), serve_models.raw)
    registry = Registry(s.registry)
    versions = s.models()
    set_alias(registry, "champion", "xgboost", versions["xgboost"], reason="tests", by="tests")
    set_alias(registry, "challenger", "logistic_regression", versions["logistic_regression"], reason="tests",
              by="tests")
    monkeypatch.setenv("READMIT_API_TOKENS", f"tests={TOKEN}")
    return s


@pytest.fixture
def server(deployed, tmp_path):
    settings = deployed.settings({**AB, **reader_config()}, tmp=tmp_path)
    live = LiveServer(create_app(settings))
    assert live.wait_ready().status_code == 200
    live.settings = settings
    yield live
    live.stop()


def test_a_month_scored_over_http_gets_what_batch_wrote(server):
    pipeline.predict(server.settings, MONTH, MONTH)
    batch = Storage(server.settings.datamart_uri).read_partition(PREDICTIONS, MONTH)
    records = raw_records(server.settings.datamart_uri, [MONTH])
    answer = server.client.post("/v1/score", json={"encounters": records}, headers=auth())
    assert answer.status_code == 200, answer.text
    online = pl.DataFrame([p for p in answer.json()["predictions"] if p["scored"]])
    excluded = [p["encounter_id"] for p in answer.json()["predictions"] if not p["scored"]]
    joined = batch.join(online, on="encounter_id", suffix="_online")
    assert joined.height == batch.height == online.height > 50 and not set(excluded) & set(batch["encounter_id"])
    assert (joined["risk"] - joined["risk_online"]).abs().max() <= 1e-9
    for column in ("risk_band", "flag", "top_reasons", "arm", "version", "algorithm", "alias"):
        assert (joined[column] == joined[f"{column}_online"]).all(), column
    assert set(joined["arm"]) == {"champion", "challenger"}


def test_one_encounter_and_its_answer(server):
    record = raw_records(server.settings.datamart_uri, [MONTH])[0]
    answer = server.client.post("/v1/score", json=record, headers=auth(READER))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    [prediction] = body["predictions"]
    assert len(body["request_id"]) == 32 and prediction["encounter_id"] == record["encounter_id"]
    assert prediction["scored"] and 0 < prediction["risk"] < 1 and prediction["alias"] in ("champion", "challenger")


def test_health_needs_no_token_and_everything_else_does(server):
    assert server.client.get("/v1/health/live").json() == {"status": "live"}
    assert server.client.get("/v1/health/ready").status_code == 200
    record = raw_records(server.settings.datamart_uri, [MONTH])[0]
    assert server.client.post("/v1/score", json=record).status_code == 401
    assert server.client.post("/v1/score", json=record, headers=auth("wrong-token-0123456789")).status_code == 401
    assert server.client.get("/v1/model").status_code == 401
    refused = server.client.post("/v1/encounters", json=record, headers=auth(READER))
    assert refused.status_code == 403 and "record" in refused.json()["error"]
    model = server.client.get("/v1/model", headers=auth(READER)).json()
    assert [m["arm"] for m in model["models"]] == ["champion", "challenger"]
    assert model["models"][0]["algorithm"] == "xgboost" and model["models"][0]["threshold"]["value"] > 0
    assert "prior_encounters" in model["models"][0]["features"]["numeric"]


def test_bad_values_are_refused_with_the_field_path_and_the_medallions_words(server):
    record = raw_records(server.settings.datamart_uri, [MONTH])[0]
    answer = server.client.post("/v1/score", json={"encounters": [record, {**record, "encounter_id": 1,
                                "time_in_hospital": 20}]}, headers=auth())
    assert answer.status_code == 422
    assert answer.json()["problems"] == [{"field": ["body", "encounters", 1, "time_in_hospital"],
                                          "message": "20 is outside the allowed range 1..14"}]
    wrong = server.client.post("/v1/score", json={**record, "num_procedures": "many", "race": "x" * 500},
                               headers=auth())
    assert wrong.status_code == 422 and "Traceback" not in wrong.text
    assert {tuple(p["field"]) for p in wrong.json()["problems"]} == {("body", "num_procedures"), ("body", "race")}
    domain = server.client.post("/v1/score", json={**record, "gender": "Robot"}, headers=auth())
    assert domain.status_code == 422 and domain.json()["problems"][0]["field"] == ["body", "encounters", 0, "gender"]
    assert "is not one of Female, Male" in domain.json()["problems"][0]["message"]
    assert server.client.post("/v1/score", content=b"{not json", headers=auth()).status_code == 400
    deep = b"[" * 100_000 + b"]" * 100_000
    assert server.client.post("/v1/score", content=deep, headers=auth()).status_code in (400, 413)
    too_many = server.client.post("/v1/score", json={"encounters": [record] * 1001}, headers=auth())
    assert too_many.status_code == 413 and "max_encounters" in too_many.json()["error"]
    assert server.client.get("/v1/health/ready").status_code == 200  # still serving


def test_a_recorded_discharge_counts_in_the_next_stay(server):
    records = raw_records(server.settings.datamart_uri, [MONTH])
    first = {**records[0], "encounter_id": 999_000_001, "snapshot_date": "2009-01-05"}
    later = {**first, "encounter_id": 999_000_002, "snapshot_date": "2009-01-20"}
    store = HistoryStore(store_path(server.settings.datamart_uri))
    before = gold_rows(silver_rows([later]), store)["prior_encounters"][0]
    done = server.client.post("/v1/encounters", json=first, headers=auth())
    assert done.status_code == 200 and done.json()["encounters"] == [{"encounter_id": 999_000_001, "recorded": True}]
    assert gold_rows(silver_rows([later]), store)["prior_encounters"][0] == before + 1
    again = server.client.post("/v1/encounters", json=first, headers=auth())
    assert again.json()["encounters"] == [{"encounter_id": 999_000_001, "recorded": False}]
    conflict = server.client.post("/v1/encounters", json={**first, "time_in_hospital": 9}, headers=auth())
    assert conflict.status_code == 422 and "already recorded" in conflict.json()["error"]
    # a stay dated before the recorded one does not count it (the rule of gold)
    earlier = {**first, "encounter_id": 999_000_003, "snapshot_date": "2009-01-01"}
    assert gold_rows(silver_rows([earlier]), store)["prior_encounters"][0] == before


def test_every_answer_has_an_audit_record_without_identifiers(server):
    records = raw_records(server.settings.datamart_uri, [MONTH])[:3]
    answer = server.client.post("/v1/score", json={"encounters": records}, headers=auth()).json()
    audit = Path(server.settings.registry_uri).rglob(f"{answer['request_id']}.json")
    [path] = list(audit)
    record = json.loads(path.read_text())
    assert record["token"] == "tests" and record["endpoint"] == "score" and len(record["rows"]) == 3
    text = path.read_text()
    for r in records:
        assert str(r["encounter_id"]) not in text and str(r["patient_nbr"]) not in text
    assert TOKEN not in text
    assert [row["risk"] for row in record["rows"]] == [p["risk"] for p in answer["predictions"]]


def test_requests_sent_together_each_get_their_own_audit_record(server):
    """Answers queued together are audited in one hand-over to the pool: still one record per
    request, each with its own rows and risks."""
    import asyncio

    import httpx

    records = raw_records(server.settings.datamart_uri, [MONTH])[:24]

    async def send() -> list[dict]:
        async with httpx.AsyncClient(base_url=server.url, timeout=120, headers=auth()) as client:
            answers = await asyncio.gather(*(client.post("/v1/score", json=r) for r in records))
        assert [a.status_code for a in answers] == [200] * len(records)
        return [a.json() for a in answers]

    answers = asyncio.run(send())
    written = {p.stem: json.loads(p.read_text()) for p in Path(server.settings.registry_uri).rglob("audit/online/*/*.json")}
    assert len({a["request_id"] for a in answers}) == len(records)
    for answer in answers:
        record = written[answer["request_id"]]
        assert record["endpoint"] == "score" and len(record["rows"]) == 1
        assert record["rows"][0]["risk"] == answer["predictions"][0]["risk"]


def test_no_token_no_listening_beyond_loopback(deployed, monkeypatch):
    monkeypatch.delenv("READMIT_API_TOKENS")
    with pytest.raises(ReadmitInputError, match="will not listen on 0.0.0.0"):
        pipeline.serve(deployed.settings(), host="0.0.0.0", port=1)


def test_not_ready_without_a_champion_and_says_why(deployed, tmp_path):
    Registry(deployed.registry).storage.delete(Registry(deployed.registry).rel("aliases/champion.json"))
    live = LiveServer(create_app(deployed.settings()))
    try:
        answer = live.wait_ready(timeout=30, settled="no champion")  # not 5 s of polling
        assert answer.status_code == 503 and "no champion" in answer.json()["problem"]
        assert live.client.get("/v1/health/live").status_code == 200
        record = raw_records(deployed.datamart, [MONTH])[0]
        assert live.client.post("/v1/score", json=record, headers=auth()).status_code == 503
    finally:
        live.stop()


def test_the_store_is_built_from_silver_and_rebuilt_only_when_silver_changed(deployed):
    own_copy(Path(deployed.datamart) / "silver" / "encounters")  # to remove a month from
    settings = deployed.settings()
    first = pipeline.build_history_store(settings)
    assert first.rebuilt and first.silver_rows == sum(
        Storage(deployed.datamart).read_partition("silver/encounters", m).height for m in first.months)
    assert not pipeline.build_history_store(settings).rebuilt
    shutil.rmtree(Path(deployed.datamart) / "silver" / "encounters" / f"snapshot_month={MONTH}")
    again = pipeline.build_history_store(settings)
    assert again.rebuilt and MONTH not in again.months


def test_the_service_follows_the_champion_and_refuses_a_tampered_one(deployed, tmp_path):
    registry = Registry(deployed.registry)
    versions = deployed.models()
    live = LiveServer(create_app(deployed.settings({"serve_config": {"reload_seconds": 0.2}}, tmp=tmp_path)))
    try:
        assert live.wait_ready().status_code == 200
        record = raw_records(deployed.datamart, [MONTH])[0]

        def champion() -> dict:
            return live.client.get("/v1/model", headers=auth()).json()

        assert champion()["models"][0]["algorithm"] == "xgboost"
        # the artifact is replaced after the alias moved to it (set_alias itself verifies it first)
        registry.storage.write_bytes(registry.rel(f"random_forest_v{versions['random_forest']}.pkl"), b"tampered")
        registry.storage.write_json(registry.rel("aliases/champion.json"), {
            "alias": "champion", "algorithm": "random_forest", "version": versions["random_forest"],
            "set_at": "2026-12-02T00:00:00+00:00", "by": "tests", "reason": "tests"})
        deadline = time.monotonic() + 20
        while champion()["reload_problem"] is None and time.monotonic() < deadline:
            assert live.client.post("/v1/score", json=record, headers=auth()).status_code == 200
            time.sleep(0.05)
        info = champion()
        assert info["models"][0]["algorithm"] == "xgboost" and "sha256" in info["reload_problem"]
        set_alias(registry, "champion", "logistic_regression", versions["logistic_regression"], reason="tests",
                  by="tests")
        while champion()["models"][0]["algorithm"] != "logistic_regression" and time.monotonic() < deadline + 20:
            assert live.client.post("/v1/score", json=record, headers=auth()).status_code == 200
            time.sleep(0.05)
        assert champion()["reload_problem"] is None
        answer = live.client.post("/v1/score", json=record, headers=auth()).json()["predictions"][0]
        assert answer["algorithm"] == "logistic_regression" and answer["version"] == versions["logistic_regression"]
    finally:
        live.stop()


def test_mlflow_clients_get_the_same_answers_from_invocations(server):
    records = raw_records(server.settings.datamart_uri, [MONTH])[:5]
    ours = server.client.post("/v1/score", json={"encounters": records}, headers=auth()).json()["predictions"]
    columns = list(records[0])
    split = {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in records]}}
    for body in (split, {"dataframe_records": records}):
        answer = server.client.post("/invocations", json=body, headers=auth())
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == ours
    wrong = server.client.post("/invocations", json={"instances": records}, headers=auth())
    assert wrong.status_code == 422 and "dataframe_split" in wrong.json()["problems"][0]["message"]
    assert server.client.post("/invocations", json=split).status_code == 401


def test_the_openapi_schema_has_the_encounter_with_an_example(server):
    schema = server.client.get("/openapi.json").json()
    encounter = schema["components"]["schemas"]["Encounter"]
    assert set(encounter["required"]) == {"encounter_id", "patient_nbr", "snapshot_date"}
    assert "glyburide-metformin" in encounter["properties"] and encounter["examples"]
    assert {"/v1/score", "/v1/encounters", "/v1/model", "/invocations"} <= set(schema["paths"])


def test_a_token_past_its_rate_gets_429_and_the_others_do_not(deployed, tmp_path):
    live = LiveServer(create_app(deployed.settings({**reader_config(), "serve_config": {
        **reader_config()["serve_config"], "rate_per_token": 3}}, tmp=tmp_path)))
    try:
        assert live.wait_ready().status_code == 200
        codes = [live.client.get("/v1/model", headers=auth()).status_code for _ in range(8)]
        assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
        assert live.client.get("/v1/model", headers=auth(READER)).status_code == 200  # its own bucket
        time.sleep(1.0)
        assert live.client.get("/v1/model", headers=auth()).status_code == 200  # refilled
    finally:
        live.stop()


@pytest.mark.slow  # three processes (readmit serve and its two uvicorn workers), each loading the models
def test_readmit_serve_with_two_workers_from_the_command_line(deployed, tmp_path):
    import os
    import subprocess
    import sys

    import httpx

    from service.live_server import free_port

    port = free_port()
    env = {**os.environ, "READMIT_API_TOKENS": f"tests={TOKEN}", "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-c", "from readmit.cli import main; main()", "serve", "--port", str(port),
               "--workers", "2", "--config", deployed.config, "--datamart", deployed.datamart,
               "--registry", deployed.registry]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        ready = 0  # each worker loads on its own: ready on 20 new connections in a row means both are
        while ready < 20:
            try:
                ready = ready + 1 if httpx.get(f"{url}/v1/health/ready").status_code == 200 else 0
            except httpx.TransportError:
                ready = 0
            assert time.monotonic() < deadline and process.poll() is None, "readmit serve did not become ready"
            time.sleep(0.05)
        record = raw_records(deployed.datamart, [MONTH])[0]
        answers = [httpx.post(f"{url}/v1/score", json=record, headers=auth()).json()["predictions"][0]["risk"]
                   for _ in range(6)]
        assert len(set(answers)) == 1 and 0 < answers[0] < 1
        assert Path(store_path(deployed.datamart)).exists()

        # a worker killed under load: the other one answers, and a new one takes its place
        spawned = uvicorn_workers(process.pid)
        assert len(spawned) == 2, spawned
        victim = spawned[0]
        victim.kill()
        ok = 0
        while ok < 20:
            assert time.monotonic() < deadline + 60, "no worker answered after one was killed"
            try:
                answer = httpx.post(f"{url}/v1/score", json=record, headers=auth(), timeout=30)
                ok = ok + 1 if answer.status_code == 200 and answer.json()["predictions"][0]["risk"] == answers[0] else 0
            except httpx.TransportError:
                ok = 0
        assert process.poll() is None and reaped(victim)
        while len(uvicorn_workers(process.pid)) != 2:
            assert time.monotonic() < deadline + 90, "uvicorn did not replace the killed worker"
            time.sleep(0.2)
    finally:
        process.terminate()
        output = process.communicate(timeout=60)[0].decode()
    assert TOKEN not in output and str(record["patient_nbr"]) not in output


def test_an_audit_record_that_cannot_be_written_means_no_answer(server):
    from datetime import UTC, datetime

    registry = Registry(server.settings.registry_uri)
    today = Path(registry.storage.path(registry.rel(f"audit/online/{datetime.now(UTC):%Y-%m-%d}")))
    if today.exists():
        shutil.rmtree(today)
    today.parent.mkdir(parents=True, exist_ok=True)
    today.write_text("a file where the day's folder goes: no record can be created")
    record = raw_records(server.settings.datamart_uri, [MONTH])[0]
    answer = server.client.post("/v1/score", json=record, headers=auth())
    assert answer.status_code == 503 and "audit record could not be written" in answer.json()["error"]
    assert "risk" not in answer.text
    today.unlink()
    assert server.client.post("/v1/score", json=record, headers=auth()).status_code == 200


def test_a_death_or_hospice_encounter_is_not_scored_as_in_batch(server):
    records = raw_records(server.settings.datamart_uri, [MONTH])
    hospice = next(r for r in records if r["discharge_disposition_id"] in (11, 13, 14, 19, 20, 21))
    answer = server.client.post("/v1/score", json=hospice, headers=auth())
    assert answer.status_code == 200, answer.text
    [prediction] = answer.json()["predictions"]
    assert prediction["scored"] is False and prediction["excluded"] == "death_or_hospice" and prediction["risk"] is None


def test_a_registry_gone_at_a_reload_keeps_the_verified_model(deployed, tmp_path):
    live = LiveServer(create_app(deployed.settings({"serve_config": {"reload_seconds": 0.2}}, tmp=tmp_path)))
    try:
        assert live.wait_ready().status_code == 200
        before = live.client.get("/v1/model", headers=auth()).json()["models"]
        moved = Path(deployed.registry).rename(tmp_path / "registry-away")
        deadline = time.monotonic() + 20
        while live.client.get("/v1/model", headers=auth()).json()["reload_problem"] is None:
            assert time.monotonic() < deadline, "the lost registry was never noticed"
            time.sleep(0.1)
        info = live.client.get("/v1/model", headers=auth()).json()
        assert info["models"] == before and "champion" in info["reload_problem"]
        moved.rename(deployed.registry)
        while live.client.get("/v1/model", headers=auth()).json()["reload_problem"] is not None:
            assert time.monotonic() < deadline + 20
            time.sleep(0.1)
        record = raw_records(deployed.datamart, [MONTH])[0]
        assert live.client.post("/v1/score", json=record, headers=auth()).status_code == 200
    finally:
        live.stop()


def test_a_category_never_seen_in_training_is_scored_and_reported(server):
    record = next(r for r in raw_records(server.settings.datamart_uri, [MONTH])
                  if r["discharge_disposition_id"] not in (11, 13, 14, 19, 20, 21))
    answer = server.client.post("/v1/score", json={**record, "admission_source_id": 99}, headers=auth())
    assert answer.status_code == 200, answer.text
    [prediction] = answer.json()["predictions"]
    assert prediction["scored"] and 0 < prediction["risk"] < 1
    assert prediction["unseen_categories"] == ["admission_source"]


def test_a_request_past_its_time_is_504_and_the_service_keeps_serving(deployed, tmp_path):
    live = LiveServer(create_app(deployed.settings({"serve_config": {"request_timeout_s": 0.001}}, tmp=tmp_path)))
    try:
        assert live.wait_ready().status_code == 200
        records = raw_records(deployed.datamart, [MONTH])[:200]
        late = live.client.post("/v1/score", json={"encounters": records}, headers=auth())
        assert late.status_code == 504 and "request_timeout_s" in late.json()["error"]
        assert live.client.get("/v1/health/ready").status_code == 200
    finally:
        live.stop()
