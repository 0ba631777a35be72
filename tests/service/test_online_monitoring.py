"""The online source of monitoring and the report: the service's audit records, written by a real
service over HTTP, read beside the batch months (counts, risk distribution, bands, arms, and the
observed performance once the label store holds those encounters' outcomes)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from readmit import pipeline
from readmit.cli import app
from readmit.data.layers import LABEL, LABEL_STORE
from readmit.monitoring.performance import observed_performance
from readmit.service.app import create_app
from readmit.storage import Storage
from service.live_server import LiveServer, auth, raw_records
from service.test_service import AB, MONTH, deployed  # noqa: F401  (the fixture)


def test_monitor_and_the_report_read_the_online_predictions_beside_the_batch_months(deployed, tmp_path):  # noqa: F811
    settings = deployed.settings(AB, tmp=tmp_path)
    records = raw_records(deployed.datamart, [MONTH])
    live = LiveServer(create_app(settings))
    try:
        assert live.wait_ready().status_code == 200
        whole = live.client.post("/v1/score", json={"encounters": records}, headers=auth())
        again = live.client.post("/v1/score", json={"encounters": records[:5]}, headers=auth())  # asked twice
        assert whole.status_code == again.status_code == 200
    finally:
        live.stop()
    answered = [p for p in whole.json()["predictions"] + again.json()["predictions"] if p["scored"]]
    champion = [p for p in answered if p["arm"] == "champion"]
    assert champion and len(champion) < len(answered)  # both arms answered

    pipeline.predict(settings, MONTH, MONTH)
    today = f"{datetime.now(UTC):%Y-%m}"
    record = pipeline.run_monitoring(settings, start_month=MONTH, end_month=today)
    online = record.online
    [month] = online.months
    assert month.month == today and online.rows == month.rows == len(champion) and online.requests == 2
    assert online.other_models_rows == len(answered) - len(champion)
    assert month.bands == dict(Counter(p["risk_band"] for p in champion)) and month.arms == {"champion": len(champion)}
    assert month.risk_mean == pytest.approx(sum(p["risk"] for p in champion) / len(champion), abs=1e-12)
    assert month.flag_rate == pytest.approx(sum(p["flag"] for p in champion) / len(champion), abs=1e-12)

    # outcomes: the label store's, matched through the salted hash; each encounter once
    labels = Storage(deployed.datamart).read_partition(LABEL_STORE, MONTH).select("encounter_id", LABEL)
    by_id = dict(labels.filter(labels[LABEL].is_not_null()).iter_rows())
    unique = {p["encounter_id"]: p for p in champion}
    known = [(by_id[e], p["risk"]) for e, p in unique.items() if e in by_id]
    expected = observed_performance([y for y, _ in known], [r for _, r in known])
    assert online.labelled == month.labelled == len(known) > 50
    assert online.observed.auc_roc == pytest.approx(expected["auc_roc"], abs=1e-12)
    assert online.observed.brier == pytest.approx(expected["brier"], abs=1e-12)
    # the same encounters, the same risks as batch: the same observed performance as the batch month
    [batch] = [m for m in record.months if m.month == MONTH]
    assert online.observed.auc_roc == pytest.approx(batch.observed.auc_roc, abs=1e-9)
    assert online.observed.labelled == batch.observed.labelled

    shown = CliRunner().invoke(app, ["monitor", "--start", MONTH, "--end", today, "--config", settings.config_uri,
                                     "--datamart", deployed.datamart, "--registry", deployed.registry])
    assert shown.exit_code == 0, shown.output
    assert "Online predictions (readmit serve)" in shown.output and "from the audit records in" in shown.output
    report = pipeline.build_report(settings)
    html = open(report["path"], encoding="utf-8").read()
    assert 'id="online"' in html and f"{len(champion):,} encounters in 2 requests" in html
