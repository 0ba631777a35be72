"""A month of encounters sent as FHIR R4 (row -> prefetch -> readmit.service.fhir -> record) and
scored by ``readmit serve`` over real HTTP gets what batch wrote: the mapping loses nothing a model reads.

The CDS Hooks route itself (JWTs, cards) and its parity on the real UCI data are in the CDS
Hooks tests; this is the FHIR side's check on the service's synthetic-data models.
"""

from __future__ import annotations

import polars as pl
import pytest

from read_only import writable_copy
from readmit import pipeline
from readmit.data.layers import PREDICTIONS
from readmit.registry import Registry
from readmit.registry.aliases import set_alias
from readmit.service.app import create_app
from readmit.service.fhir import map_prefetch
from readmit.storage import Storage
from service.fhir_bundles import prefetch_for
from service.live_server import TOKEN, LiveServer, auth, copy_datamart, raw_records
from serving.model_fixtures import Served

MONTH = "2008-11"


@pytest.fixture
def server(serve_models, tmp_path, monkeypatch):
    """The service on a copy of the synthetic-data models: champion XGBoost, no A/B test."""
    datamart = copy_datamart(serve_models.datamart, tmp_path / "datamart")
    writable_copy(serve_models.registry, tmp_path / "registry")
    s = Served(serve_models.config, datamart, str(tmp_path / "registry"), serve_models.raw)
    set_alias(Registry(s.registry), "champion", "xgboost", s.models()["xgboost"], reason="tests", by="tests")
    monkeypatch.setenv("READMIT_API_TOKENS", f"tests={TOKEN}")
    settings = s.settings()
    live = LiveServer(create_app(settings))
    assert live.wait_ready().status_code == 200
    live.settings = settings
    yield live
    live.stop()


def test_a_month_sent_as_fhir_gets_what_batch_wrote(server):
    pipeline.predict(server.settings, MONTH, MONTH)
    batch = Storage(server.settings.datamart_uri).read_partition(PREDICTIONS, MONTH)
    # FHIR counts the diagnoses it lists: a synthetic row whose number_diagnoses is below the rank
    # of its last diagnosis code (the synthesiser draws them apart; no real UCI row does) cannot be
    # written as FHIR. Those are left out, so is their batch row.
    rows = [r for r in raw_records(server.settings.datamart_uri, [MONTH]) if _representable(r)]
    batch = batch.filter(pl.col("encounter_id").is_in([r["encounter_id"] for r in rows]))
    records = []
    for row in rows:
        out = map_prefetch(prefetch_for(row, []), str(row["patient_nbr"]), str(row["encounter_id"]))
        assert {c: out.record[c] for c in row if c != "readmitted"} == {c: v for c, v in row.items() if c != "readmitted"}
        records.append(out.record)
    answer = server.client.post("/v1/score", json={"encounters": records}, headers=auth())
    assert answer.status_code == 200, answer.text
    online = pl.DataFrame([p for p in answer.json()["predictions"] if p["scored"]])
    joined = batch.join(online, on="encounter_id", suffix="_online")
    assert joined.height == batch.height == online.height > 50
    assert (joined["risk"] - joined["risk_online"]).abs().max() <= 1e-9
    for column in ("risk_band", "flag", "top_reasons", "version", "algorithm"):
        assert (joined[column] == joined[f"{column}_online"]).all(), column


def _representable(row: dict) -> bool:
    last = max((k for k in (1, 2, 3) if row[f"diag_{k}"] is not None), default=0)
    return (row["number_diagnoses"] or 0) >= last
