"""Parity through CDS Hooks on the real UCI data: 2008 encounters sent as FHIR R4 prefetch
(made from their rows, the patient's earlier stays as earlier Encounters) with real signed JWTs
get on their card the risk ``readmit predict`` wrote for them (to 1e-9), sent eight at a time so
that calls are scored together in batches.

The sample is every ``STEP``-th diabetic 2008 encounter discharged alive and not to hospice
(those are outside the intended use: an info card). The earlier stays are the patient's silver
rows before the encounter (by date, then encounter_id), the rows batch's gold counts from.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import polars as pl
import pytest

from read_only import writable_copy
from readmit import pipeline
from readmit.config import load_settings
from readmit.data.layers import PREDICTIONS, SILVER_TABLE
from readmit.service.app import create_app
from readmit.storage import Storage
from service.ehr_keys import Ehr, JwksServer
from service.fhir_bundles import prefetch_for
from service.live_server import LiveServer, copy_datamart, free_port, raw_records

OOT = [f"2008-{m:02d}" for m in range(1, 13)]
STEP = 20
SERVICE = "/cds-services/encounter-discharge"


@pytest.mark.slow
def test_cards_on_2008_encounters_carry_the_batch_risk(served, tmp_path):
    from monitoring.served_fixtures import SMALL

    ehr = Ehr()
    jwks = JwksServer(ehr)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**SMALL, "serve_config": {"cds_hooks": {
        "enabled": True, "base_url": base, "issuers": [{"iss": ehr.iss, "jwks_url": f"{jwks.url}/jwks.json"}]}}}))
    mart = copy_datamart(served.settings.datamart_uri, tmp_path / "mart")
    writable_copy(served.settings.registry_uri, tmp_path / "registry")
    settings = load_settings(str(config), datamart=mart, registry=str(tmp_path / "registry"))
    pipeline.predict(settings, OOT[0], OOT[-1])
    storage = Storage(mart)
    expected = pl.concat([storage.read_partition(PREDICTIONS, m) for m in OOT]).sort("encounter_id")
    silver_ids = set(pl.concat([storage.read_partition(SILVER_TABLE, m, ["encounter_id"])
                                for m in storage.list_partitions(SILVER_TABLE)])["encounter_id"].to_list())
    everything = [r for r in raw_records(mart, storage.list_partitions(SILVER_TABLE))
                  if r["encounter_id"] in silver_ids]
    by_patient: dict[int, list[dict]] = {}
    for r in everything:
        by_patient.setdefault(r["patient_nbr"], []).append(r)
    wanted = set(expected["encounter_id"].to_list()[::STEP])
    sample = [r for r in everything if r["encounter_id"] in wanted]

    bodies = []
    for record in sample:
        key = (record["snapshot_date"], record["encounter_id"])
        earlier = [r for r in by_patient[record["patient_nbr"]] if (r["snapshot_date"], r["encounter_id"]) < key]
        prefetch = prefetch_for(record, earlier)
        bodies.append((record["encounter_id"], {
            "hook": "encounter-discharge", "hookInstance": str(uuid.uuid4()), "prefetch": prefetch,
            "context": {"userId": "Practitioner/1", "patientId": prefetch["patient"]["id"],
                        "encounterId": prefetch["encounter"]["id"]}}))

    live = LiveServer(create_app(settings), port=port)
    cards = {}

    def call(item: tuple[int, dict]) -> tuple[int, dict]:
        token = ehr.token(base + SERVICE)
        answer = live.client.post(SERVICE, json=item[1], headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        return item[0], answer.json()["cards"][0]

    try:
        assert live.wait_ready(timeout=300).status_code == 200
        # eight calls in flight: calls that queue together are scored in one batch, each with its
        # own earlier stays, and must still get batch's risk
        with ThreadPoolExecutor(8) as pool:
            cards = dict(pool.map(call, bodies))
    finally:
        live.stop()
        jwks.stop()

    scored = {e: c["extension"]["org.readmit.prediction"] for e, c in cards.items() if "extension" in c}
    batch = {row["encounter_id"]: row for row in expected.filter(pl.col("encounter_id").is_in(list(wanted)))
             .iter_rows(named=True)}
    diabetic = {e for e in batch if _diabetic(next(r for r in sample if r["encounter_id"] == e))}
    assert set(scored) == diabetic and len(scored) > 100
    assert max(abs(scored[e]["risk"] - batch[e]["risk"]) for e in scored) <= 1e-9
    assert all(scored[e]["risk_band"] == batch[e]["risk_band"] and scored[e]["top_reasons"] == batch[e]["top_reasons"]
               for e in scored)


def _diabetic(record: dict) -> bool:
    codes = [record[c] or "" for c in ("diag_1", "diag_2", "diag_3")]
    return any(c.startswith("250") for c in codes)
