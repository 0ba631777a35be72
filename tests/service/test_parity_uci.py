"""Parity on the real UCI data: every 2008 encounter, replayed over HTTP in encounter order,
gets what ``readmit predict`` wrote for it.

With the embedded store and with Redis. The service's history store is built from 1999-2007 silver only (its datamart holds no 2008
silver); each 2008 discharge is recorded (``POST /v1/encounters``) right after it is scored,
so a later stay of the same patient counts it from the store, not from batch's gold. The
requests carry up to ``CHUNK`` consecutive encounters, cut before a patient repeats: within a
request no encounter can lean on another, every history comes from the store.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from read_only import writable_copy
from readmit import pipeline
from readmit.config import load_settings
from readmit.data.layers import PREDICTIONS
from readmit.service.app import create_app
from readmit.storage import Storage
from service.live_server import TOKEN, LiveServer, auth, copy_datamart, raw_records

OOT = [f"2008-{m:02d}" for m in range(1, 13)]
CHUNK = 250


def chunks(records: list[dict]) -> list[list[dict]]:
    """Consecutive runs of at most CHUNK encounters, none with a patient twice."""
    out: list[list[dict]] = [[]]
    patients: set[int] = set()
    for record in records:
        if len(out[-1]) >= CHUNK or record["patient_nbr"] in patients:
            out.append([])
            patients = set()
        out[-1].append(record)
        patients.add(record["patient_nbr"])
    return out


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["embedded", "redis"])
def test_every_2008_encounter_over_http_gets_the_batch_answer(backend, served, tmp_path, monkeypatch, request):
    from monitoring.served_fixtures import SMALL

    serve = {"history_backend": backend}
    if backend == "redis":
        serve["redis_url"] = request.getfixturevalue("redis_server").url
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**SMALL, "serve_config": serve, "inference_config": {
        "ab_test": {"enabled": True, "challenger_share": 0.5, "salt": "parity"}}}))
    source = served.settings.datamart_uri
    batch_mart = copy_datamart(source, tmp_path / "batch")  # batch: every month
    writable_copy(served.settings.registry_uri, tmp_path / "registry")
    batch = load_settings(str(config), datamart=batch_mart, registry=str(tmp_path / "registry"))
    pipeline.predict(batch, OOT[0], OOT[-1])
    storage = Storage(batch_mart)
    expected = pl.concat([storage.read_partition(PREDICTIONS, m) for m in OOT])
    assert set(expected["arm"]) == {"champion", "challenger"}

    online_mart = copy_datamart(source, tmp_path / "online", silver_until="2007-12")
    settings = load_settings(str(config), datamart=online_mart, registry=str(tmp_path / "registry"))
    monkeypatch.setenv("READMIT_API_TOKENS", f"parity={TOKEN}")
    live = LiveServer(create_app(settings))
    try:
        assert live.wait_ready(timeout=300).status_code == 200
        records = raw_records(source, OOT)
        answers = []
        for part in chunks(records):
            scored = live.client.post("/v1/score", json={"encounters": part}, headers=auth())
            assert scored.status_code == 200, scored.text
            answers += scored.json()["predictions"]
            recorded = live.client.post("/v1/encounters", json={"encounters": part}, headers=auth())
            assert recorded.status_code == 200, recorded.text
            assert all(r["recorded"] for r in recorded.json()["encounters"])
    finally:
        live.stop()

    assert [a["encounter_id"] for a in answers] == [r["encounter_id"] for r in records]
    online = pl.DataFrame([a for a in answers if a["scored"]]).select(
        "encounter_id", "risk", "risk_band", "flag", "top_reasons", "arm", "alias", "algorithm", "version")
    skipped = {a["encounter_id"] for a in answers if not a["scored"]}
    assert not skipped & set(expected["encounter_id"])  # left out online = left out by batch
    joined = expected.join(online, on="encounter_id", how="full", suffix="_online", coalesce=True)
    assert joined.height == expected.height == online.height > 9000
    assert (joined["risk"] - joined["risk_online"]).abs().max() <= 1e-9
    for column in ("risk_band", "flag", "top_reasons", "arm", "alias", "algorithm", "version"):
        assert (joined[column] == joined[f"{column}_online"]).all(), column
