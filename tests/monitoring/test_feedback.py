"""Clinician feedback on the CDS Hooks cards, read back from the audit trail.

The records are written the way the service writes them: the hook call's audit record by the
service's own :class:`readmit.service.audit.AuditLog`, the feedback body parsed by the service's
request model and kept by the route's own ``_feedback_record``. (The same numbers through a real
server, real JWTs, ``readmit monitor`` and the report: tests/service/test_feedback_e2e.py, slow.)
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from monitoring.test_record import WRITTEN_BEFORE
from readmit.errors import ArtifactError
from readmit.monitoring.feedback import feedback_rates, feedback_summary
from readmit.monitoring.record import MonitoringRecord
from readmit.registry import Registry
from readmit.report.html import feedback_section
from readmit.service.audit import AuditLog
from readmit.service.cds_hooks.request import FeedbackRequest, parse
from readmit.service.cds_hooks.routes import _feedback_record

SYSTEM = "https://github.com/readmit/readmit/cds-hooks/override-reasons"
REASONS = {"follow-up-arranged": "Follow-up already arranged",
           "clinical-judgement": "Clinical judgement: risk is lower than shown"}
BANDS = ["low", "moderate", "high", "very_high"]
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


class Trail:
    """An audit trail as the CDS Hooks service writes it: cards, then feedback on them."""

    def __init__(self, root):
        self.registry = Registry(str(root))
        self.audit = AuditLog(self.registry)
        self.n = 0

    def card(self, band: str | None, when: datetime, version: str = "v1") -> str:
        """One hook call's audit record; ``band`` None: an info card (outside the intended use)."""
        self.n += 1
        card = str(uuid.uuid4())
        row = ({"encounter_id": self.n, "scored": True, "excluded": None, "risk": 0.2, "risk_band": band,
                "flag": band in ("high", "very_high"), "algorithm": "xgboost", "version": version,
                "alias": "champion", "arm": "champion"} if band is not None
               else {"encounter_id": self.n, "scored": False, "excluded": "no diabetes diagnosis"})
        self.audit.write(uuid.uuid4().hex, when, "https://ehr.example", "cds-hooks", [row], {self.n: 1000 + self.n},
                         {"hook": "encounter-discharge", "hookInstance": str(uuid.uuid4()), "card": card})
        return card

    def feedback(self, when: datetime, *items: tuple[str, str, str | None]) -> None:
        """One feedback call: (card, outcome, override reason code or None) each, answered at ``when``."""
        body = {"feedback": [
            {"card": card, "outcome": outcome, "outcomeTimestamp": when.isoformat(),
             **({"acceptedSuggestions": [{"id": "follow-up"}]} if outcome == "accepted" else {}),
             **({"overrideReason": {"reason": {"code": code, "system": SYSTEM, "display": REASONS[code]},
                                    "userComment": "spoke to the family"}} if code else {})}
            for card, outcome, code in items]}
        items_kept = [_feedback_record(item) for item in parse(FeedbackRequest, body).feedback]
        self.audit.write_feedback(uuid.uuid4().hex, when + timedelta(seconds=1), "https://ehr.example",
                                  {"service": "encounter-discharge", "feedback": items_kept})


@pytest.fixture
def trail(tmp_path):
    t = Trail(tmp_path / "registry")
    day = T0
    t.high = [t.card("high", day + timedelta(minutes=i)) for i in range(4)]
    t.low = [t.card("low", day + timedelta(minutes=10 + i)) for i in range(3)]
    t.info = t.card(None, day + timedelta(minutes=20))
    t.other = t.card("high", day + timedelta(minutes=21), version="v0")  # another model's card
    t.december = t.card("moderate", datetime(2026, 12, 2, 8, 0, tzinfo=UTC))
    # high: 0 overridden (clinical judgement) then accepted later, 1 overridden, 2 accepted, 3 no answer
    t.feedback(day + timedelta(hours=1), (t.high[0], "overridden", "clinical-judgement"),
               (t.high[1], "overridden", "follow-up-arranged"), (t.low[0], "overridden", "clinical-judgement"))
    t.feedback(day + timedelta(hours=2), (t.high[0], "accepted", None), (t.high[2], "accepted", None))
    # a late copy of an earlier answer changes nothing: the latest outcome time counts
    t.feedback(day + timedelta(minutes=30), (t.high[0], "overridden", "clinical-judgement"))
    t.feedback(day + timedelta(hours=3), (t.info, "overridden", None), (t.other, "accepted", None),
               (str(uuid.uuid4()), "overridden", "follow-up-arranged"))
    t.feedback(datetime(2026, 12, 2, 9, 0, tzinfo=UTC), (t.december, "overridden", "follow-up-arranged"))
    return t


def test_rates_by_band_join_each_cards_latest_outcome_to_its_band(trail):
    fb = feedback_summary(trail.registry, months=["2026-11"], model=("xgboost", "v1"), band_order=BANDS)
    assert list(fb.bands) == ["low", "high"]  # the configured order, only the bands shown
    high, low = fb.bands["high"], fb.bands["low"]
    assert (high.cards, high.with_feedback, high.accepted, high.overridden) == (4, 3, 2, 1)
    assert high.acceptance_rate == 2 / 4 and high.override_rate == 1 / 4 and high.feedback_rate == 3 / 4
    assert high.override_reasons == {"follow-up-arranged": 1}
    assert (low.cards, low.with_feedback, low.accepted, low.overridden) == (3, 1, 0, 1)
    assert low.override_rate == pytest.approx(1 / 3) and low.override_reasons == {"clinical-judgement": 1}
    assert (fb.cards, fb.with_feedback, fb.accepted, fb.overridden) == (7, 4, 2, 2)
    assert fb.override_reasons == {"follow-up-arranged": 1, "clinical-judgement": 1}
    assert fb.reason_names == {code: REASONS[code] for code in fb.override_reasons}
    # not in a band: the info card, another model's card, the unknown card, December's card
    assert fb.info_cards == 1 and fb.other_models_cards == 1 and fb.feedback_elsewhere == 4
    assert fb.first_card_at == T0.isoformat() and fb.last_card_at == (T0 + timedelta(minutes=12)).isoformat()
    assert fb.first_feedback_at == (T0 + timedelta(hours=1)).isoformat()
    assert fb.last_feedback_at == (T0 + timedelta(hours=2)).isoformat()
    assert fb.months == ["2026-11"] and fb.location.endswith("audit/feedback")


def test_every_model_and_month_and_the_plain_rates(trail):
    everything = feedback_summary(trail.registry, band_order=BANDS)
    assert list(everything.bands) == ["low", "moderate", "high"]
    assert everything.bands["high"].cards == 5 and everything.bands["high"].accepted == 3
    assert everything.bands["moderate"].override_rate == 1.0
    assert everything.other_models_cards == 0 and everything.feedback_elsewhere == 2  # info card, unknown uuid
    december = feedback_summary(trail.registry, months=["2026-12"])
    assert list(december.bands) == ["moderate"] and december.overridden == 1
    assert feedback_rates(trail.registry) == {b: p.model_dump() for b, p in everything.bands.items()}


def test_no_card_yet_is_an_empty_summary_and_the_report_says_so(tmp_path):
    registry = Registry(str(tmp_path / "registry"))
    AuditLog(registry).probe()  # the ready probe's leftovers are never records
    fb = feedback_summary(registry, months=["2026-11"])
    assert fb.cards == fb.with_feedback == 0 and fb.bands == {} and fb.acceptance_rate is None
    assert fb.first_card_at is None
    shown = feedback_section(SimpleNamespace(feedback=fb))
    assert shown.startswith('<p class="missing">No clinician feedback')


def test_a_file_in_the_feedback_folder_that_is_not_a_record_is_an_error_naming_it(trail):
    day = trail.registry.storage.path(trail.registry.rel("audit/feedback/2026-11-30"))
    with open(f"{day}/broken.json", "w") as out:
        json.dump({"at": "2026-11-30T10:00:00+00:00", "feedback": [{"outcome": "accepted"}]}, out)
    with pytest.raises(ArtifactError, match=r"broken\.json: not a CDS Hooks feedback record"):
        feedback_summary(trail.registry)


def test_the_monitoring_record_keeps_the_feedback_and_older_records_read_unchanged(trail):
    fb = feedback_summary(trail.registry, months=["2026-11"], model=("xgboost", "v1"), band_order=BANDS)
    record = MonitoringRecord.read({**WRITTEN_BEFORE, "feedback": fb.model_dump()}, "x.json")
    again = MonitoringRecord.read(json.loads(json.dumps(record.file_content())), "x.json")
    assert again.feedback == fb and again.feedback.bands["high"].accepted == 2
    online_only = {**WRITTEN_BEFORE, "online": {"location": "a", "rows": 0, "requests": 0, "other_models_rows": 0,
                                                "months": [], "labelled": 0, "observed": None}}
    assert MonitoringRecord.read(online_only, "y.json").file_content() == online_only  # no feedback key added


def test_the_report_section_shows_counts_rates_reasons_and_the_period(trail):
    fb = feedback_summary(trail.registry, band_order=BANDS)
    html = feedback_section(SimpleNamespace(feedback=fb))
    high = html.split('<tr data-band="high">')[1].split("</tr>")[0]
    cells = [c.split(">", 1)[1] for c in high.split("</td>")[:-1]]
    b = fb.bands["high"]
    assert cells == ["high", str(b.cards), str(b.with_feedback), str(b.accepted), f"{b.acceptance_rate:.1%}",
                     str(b.overridden), f"{b.override_rate:.1%}",
                     " ".join(f"{k} {v}" for k, v in b.override_reasons.items())]
    assert 'data-feedback-period="2026-11-30..2026-12-02"' in html and "feedback 2026-11-30 to 2026-12-02" in html
    reasons = Counter({"follow-up-arranged": 2, "clinical-judgement": 1})
    for code, n in reasons.items():
        row = html.split(f'<tr data-reason="{code}">')[1].split("</tr>")[0]
        assert REASONS[code] in row and f">{n}</td>" in row
