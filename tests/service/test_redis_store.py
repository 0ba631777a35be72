"""The Redis history store (several replicas share it), with a real redis-server."""

from __future__ import annotations

import time

import polars as pl

from readmit import pipeline
from readmit.data.layers import PREDICTIONS
from readmit.service.app import create_app
from readmit.serving.history import RedisHistoryStore
from readmit.storage import Storage
from service.live_server import LiveServer, auth, raw_records
from service.test_service import AB, MONTH, deployed  # noqa: F401  (the fixture)


def redis_config(url: str) -> dict:
    return {**AB, "serve_config": {"history_backend": "redis", "redis_url": url}}


def test_a_month_over_http_with_redis_gets_what_batch_wrote(deployed, redis_server, tmp_path):  # noqa: F811
    settings = deployed.settings(redis_config(redis_server.url), tmp=tmp_path)
    built = pipeline.build_history_store(settings)
    assert built.rebuilt and built.silver_rows > 10_000
    assert not pipeline.build_history_store(settings).rebuilt
    pipeline.predict(settings, MONTH, MONTH)
    batch = Storage(settings.datamart_uri).read_partition(PREDICTIONS, MONTH)
    live = LiveServer(create_app(settings))
    try:
        assert live.wait_ready().status_code == 200
        records = raw_records(settings.datamart_uri, [MONTH])
        answer = live.client.post("/v1/score", json={"encounters": records}, headers=auth())
        assert answer.status_code == 200, answer.text
    finally:
        live.stop()
    online = pl.DataFrame([p for p in answer.json()["predictions"] if p["scored"]])
    joined = batch.join(online, on="encounter_id", suffix="_online")
    assert joined.height == batch.height == online.height > 50
    assert (joined["risk"] - joined["risk_online"]).abs().max() <= 1e-9
    for column in ("risk_band", "flag", "top_reasons", "arm"):
        assert (joined[column] == joined[f"{column}_online"]).all(), column


def test_redis_down_is_503_and_not_ready_and_it_recovers_by_itself(deployed, redis_server, tmp_path):  # noqa: F811
    settings = deployed.settings(redis_config(redis_server.url), tmp=tmp_path)
    live = LiveServer(create_app(settings))
    try:
        assert live.wait_ready().status_code == 200
        record = raw_records(settings.datamart_uri, [MONTH])[0]
        first = live.client.post("/v1/score", json=record, headers=auth())
        assert first.status_code == 200
        redis_server.stop()
        down = live.client.post("/v1/score", json=record, headers=auth())
        assert down.status_code == 503 and "history store" in down.json()["error"]
        assert live.client.get("/v1/health/ready").status_code == 503
        assert live.client.get("/v1/health/live").status_code == 200
        redis_server.start()
        deadline = time.monotonic() + 30
        while live.client.get("/v1/health/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        again = live.client.post("/v1/score", json=record, headers=auth())
        assert again.status_code == 200 and again.json()["predictions"][0]["risk"] == first.json()["predictions"][0]["risk"]
    finally:
        live.stop()


def test_an_emptied_redis_refuses_rather_than_answers_from_no_history(deployed, redis_server, tmp_path):  # noqa: F811
    settings = deployed.settings(redis_config(redis_server.url), tmp=tmp_path)
    live = LiveServer(create_app(settings))
    try:
        assert live.wait_ready().status_code == 200
        RedisHistoryStore(redis_server.url).client.flushall()
        record = raw_records(settings.datamart_uri, [MONTH])[0]
        assert live.client.post("/v1/score", json=record, headers=auth()).status_code == 503
        assert live.client.get("/v1/health/ready").status_code == 503
    finally:
        live.stop()
