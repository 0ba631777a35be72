"""Clinician feedback end to end: an EHR calls the real service (uvicorn on loopback, real signed
JWTs, FHIR prefetch), clinicians answer the cards through the feedback endpoint, then
``readmit monitor`` and the report count exactly what was sent, by risk band.

Slow: a service of its own (so its audit trail holds only this test's cards), batch predictions
for the month, a monitoring run and a report that scores the models.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from readmit import pipeline
from readmit.cli import app
from service.test_cds_hooks import (  # noqa: F401  (cds, ehr, records: the fixtures)
    MONTH,
    SERVICE,
    bearer,
    cds,
    diabetic,
    earlier_of,
    ehr,
    hook_body,
    records,
)

pytestmark = pytest.mark.slow


def test_feedback_sent_through_the_service_is_what_monitor_and_the_report_count(cds, ehr, records):  # noqa: F811
    shown, infos = [], 0  # (card, band) of the cards with a risk; info cards (outside the intended use)
    for record in diabetic(records)[:12]:
        answer = cds.client.post(SERVICE, json=hook_body(record, earlier_of(record, records)),
                                 headers=bearer(cds, ehr, SERVICE))
        assert answer.status_code == 200, answer.text
        [card] = answer.json()["cards"]
        if "extension" in card:
            shown.append((card, card["extension"]["org.readmit.prediction"]["risk_band"]))
        else:
            assert card["indicator"] == "info", card
            infos += 1
    hospice = {**diabetic(records)[0], "discharge_disposition_id": 13}
    [info] = cds.client.post(SERVICE, json=hook_body(hospice, []), headers=bearer(cds, ehr, SERVICE)).json()["cards"]
    infos += 1
    assert len(shown) >= 6

    # clinicians answer: every third card overridden (reasons in turn), every third accepted where
    # it has a suggestion, the rest unanswered; card 0 is overridden first, then accepted later
    sent, expected = [], {}
    for i, (card, _band) in enumerate(shown):
        stamp = f"2026-12-02T10:{i:02d}:00Z"
        if i % 3 == 0:
            reason = card["overrideReasons"][(i // 3) % len(card["overrideReasons"])]
            sent.append({"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": stamp,
                         "overrideReason": {"reason": reason, "userComment": "talked to the patient"}})
            expected[card["uuid"]] = ("overridden", reason["code"])
        elif i % 3 == 1 and "suggestions" in card:
            sent.append({"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": stamp,
                         "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]})
            expected[card["uuid"]] = ("accepted", None)
    sent.append({"card": info["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-12-02T11:00:00Z"})
    sent.append({"card": str(uuid.uuid4()), "outcome": "overridden", "outcomeTimestamp": "2026-12-02T11:00:00Z"})
    path = f"{SERVICE}/feedback"
    for chunk in (sent[: len(sent) // 2], sent[len(sent) // 2:]):  # two feedback calls
        answer = cds.client.post(path, json={"feedback": chunk}, headers=bearer(cds, ehr, path))
        assert answer.status_code == 200, answer.text
    first, band0 = shown[0]
    if "suggestions" in first:  # a later answer replaces the earlier one
        later = [{"card": first["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-12-02T12:00:00Z",
                  "acceptedSuggestions": [{"id": first["suggestions"][0]["uuid"]}]}]
        assert cds.client.post(path, json={"feedback": later}, headers=bearer(cds, ehr, path)).status_code == 200
        expected[first["uuid"]] = ("accepted", None)

    want: dict[str, dict] = defaultdict(lambda: {"cards": 0, "accepted": 0, "overridden": 0, "reasons": Counter()})
    for card, band in shown:
        want[band]["cards"] += 1
        outcome, code = expected.get(card["uuid"], (None, None))
        if outcome:
            want[band][outcome] += 1
        if code:
            want[band]["reasons"][code] += 1
    assert sum(w["overridden"] for w in want.values()) >= 2 and len(want) >= 1

    settings = cds.settings
    pipeline.predict(settings, MONTH, MONTH)
    today = f"{datetime.now(UTC):%Y-%m}"
    args = ["monitor", "--start", MONTH, "--end", today, "--config", settings.config_uri,
            "--datamart", settings.datamart_uri, "--registry", settings.registry_uri]
    shown_json = CliRunner().invoke(app, [*args, "--json"])
    assert shown_json.exit_code == 0, shown_json.output
    fb = json.loads(shown_json.output)["feedback"]
    assert fb["cards"] == len(shown) and fb["info_cards"] == infos and fb["other_models_cards"] == 0
    assert fb["feedback_elsewhere"] == 2  # the info card's and the unknown card's
    assert fb["with_feedback"] == len(expected)
    for band, w in want.items():
        got = fb["bands"][band]
        assert (got["cards"], got["accepted"], got["overridden"]) == (w["cards"], w["accepted"], w["overridden"])
        assert got["acceptance_rate"] == pytest.approx(w["accepted"] / w["cards"])
        assert got["override_rate"] == pytest.approx(w["overridden"] / w["cards"])
        assert got["override_reasons"] == dict(w["reasons"])
    assert list(fb["bands"]) == [b for b in settings.config.inference_config.risk_bands.labels if b in want]

    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "Clinician feedback (CDS Hooks cards)" in table.output and f"{infos} info card(s)" in table.output

    report = pipeline.build_report(settings)
    assert report["sections"]["feedback"] == "shown"
    html = open(report["path"], encoding="utf-8").read()
    section = html.split('data-section="feedback"')[1].split("</section>")[0]
    for band, w in want.items():
        row = section.split(f'<tr data-band="{band}">')[1].split("</tr>")[0]
        cells = [c.split(">", 1)[1] for c in row.split("</td>")[:-1]]
        assert cells[:7] == [band, str(w["cards"]), str(w["accepted"] + w["overridden"]), str(w["accepted"]),
                             f"{w['accepted'] / w['cards']:.1%}", str(w["overridden"]),
                             f"{w['overridden'] / w['cards']:.1%}"]
    total = Counter()
    for w in want.values():
        total.update(w["reasons"])
    for code, n in total.items():
        assert f'<tr data-reason="{code}">' in section
        assert f">{n}</td>" in section.split(f'<tr data-reason="{code}">')[1].split("</tr>")[0]
    assert f'data-feedback-period="{datetime.now(UTC):%Y-%m-%d}..' in section
