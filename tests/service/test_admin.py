"""The ``admin`` scope: ``POST /v1/admin/reload`` looks at the aliases now (real uvicorn, httpx)."""

from __future__ import annotations

import os

from readmit.registry import Registry
from readmit.registry.aliases import set_alias
from readmit.service.app import create_app
from service.live_server import READER, LiveServer, auth, raw_records, reader_config
from service.test_service import MONTH, deployed  # noqa: F401  (the fixture)


def test_an_admin_reloads_at_once_and_nobody_else_may(deployed, tmp_path):  # noqa: F811
    no_periodic = {**reader_config(), "serve_config": {**reader_config()["serve_config"], "reload_seconds": 0}}
    live = LiveServer(create_app(deployed.settings(no_periodic, tmp=tmp_path)))
    try:
        assert live.wait_ready().status_code == 200
        versions = deployed.models()
        set_alias(Registry(deployed.registry), "champion", "logistic_regression", versions["logistic_regression"],
                  reason="tests", by="tests")
        model = live.client.get("/v1/model", headers=auth()).json()
        assert model["models"][0]["algorithm"] == "xgboost"  # no periodic look: still the old champion
        assert live.client.post("/v1/admin/reload").status_code == 401
        refused = live.client.post("/v1/admin/reload", headers=auth(READER))
        assert refused.status_code == 403 and "'admin' scope" in refused.json()["error"]
        done = live.client.post("/v1/admin/reload", headers=auth())
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["reloaded"] and body["reload_problem"] is None and body["worker"] == os.getpid()
        assert body["models"] == [{"arm": "champion", "algorithm": "logistic_regression",
                                   "version": versions["logistic_regression"]}]
        assert live.client.post("/v1/admin/reload", headers=auth()).json()["reloaded"] is False  # nothing moved
        record = next(r for r in raw_records(deployed.datamart, [MONTH])
                      if r["discharge_disposition_id"] not in (11, 13, 14, 19, 20, 21))
        answer = live.client.post("/v1/score", json=record, headers=auth()).json()["predictions"][0]
        assert answer["algorithm"] == "logistic_regression"
        assert live.client.get("/v1/health/ready").json()["worker"] == os.getpid()
    finally:
        live.stop()
