"""What clinicians did with the cards: acceptance and override rates by risk band, from the audit trail.

An early signal: a 30-day label matures a month after discharge, a clinician's "overridden"
comes the same day. The CDS Hooks service keeps one audit record per hook call (its card
``uuid`` and the scored row's band and model, ``audit/online/``) and one per feedback call
(``audit/feedback/``: card, outcome, override reason code and display). Here they are joined by
card: per band, the cards shown, how many got feedback, accepted and overridden (a card's latest
outcome counts, as a client may send it more than once), and the override reasons named.

Rates are over the cards shown (a card nobody answered is neither accepted nor overridden).
Feedback on a card not counted here (another model's, an info card outside the intended use,
a card of other months, a uuid the audit does not know) is counted apart, never in a band.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from readmit.errors import ArtifactError
from readmit.monitoring.record import FeedbackBand, FeedbackSource
from readmit.registry.audit import AUDIT_DIR as ONLINE
from readmit.registry.audit import FEEDBACK_DIR as FEEDBACK

HOOK_ENDPOINT = "cds-hooks"
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _records(registry: Any, folder: str, keep_day: Any) -> list[tuple[str, dict[str, Any]]]:
    """(uri, record) of every JSON record under ``folder/{YYYY-MM-DD}/`` whose day ``keep_day`` keeps."""
    storage = registry.storage
    out = []
    for day in storage.listdir(registry.rel(folder)):
        if not _DAY.fullmatch(day) or not keep_day(day):
            continue
        for name in storage.listdir(registry.rel(f"{folder}/{day}")):
            if not name.endswith(".json"):
                continue
            rel = registry.rel(f"{folder}/{day}/{name}")
            try:
                record = storage.read_json(rel)
                if not isinstance(record, dict) or not isinstance(record["at"], str):
                    raise TypeError("not a JSON object with an 'at' time")
            except (ValueError, KeyError, TypeError) as exc:
                raise ArtifactError(f"not an audit record ({type(exc).__name__}: {exc})", source=storage.uri_of(rel),
                                    fix="move it out of the audit folder (records are written only by readmit serve)"
                                    ) from None
            out.append((storage.uri_of(rel), record))
    return out


def _cards(registry: Any, months: list[str] | None) -> list[dict[str, Any]]:
    """Every card a hook call showed in ``months`` (None: all): uuid, time, band (None for an info
    card), algorithm, version."""
    wanted = None if months is None else set(months)
    cards = []
    for uri, record in _records(registry, ONLINE, lambda day: wanted is None or day[:7] in wanted):
        if record.get("endpoint") != HOOK_ENDPOINT or not record.get("card"):
            continue
        try:
            row = (record.get("rows") or [{}])[0]
            scored = bool(row.get("scored"))
            cards.append({"card": str(record["card"]), "at": record["at"],
                          "band": row["risk_band"] if scored else None,
                          "algorithm": row.get("algorithm"), "version": None if row.get("version") is None
                          else str(row["version"])})
        except (KeyError, TypeError, AttributeError) as exc:
            raise ArtifactError(f"not a CDS Hooks audit record ({type(exc).__name__}: {exc})", source=uri,
                                fix="move it out of the audit folder (records are written only by readmit serve)"
                                ) from None
    return cards


def _latest_feedback(registry: Any, first_day: str | None) -> dict[str, dict[str, Any]]:
    """card uuid -> its latest feedback item (by outcome time, then by when it was received)."""
    latest: dict[str, dict[str, Any]] = {}
    found = _records(registry, FEEDBACK, lambda day: first_day is None or day >= first_day)
    for uri, record in sorted(found, key=lambda r: r[1]["at"]):
        try:
            for item in record["feedback"]:
                held = latest.get(item["card"])
                if held is None or item["outcome_at"] >= held["outcome_at"]:
                    latest[str(item["card"])] = {**item, "received_at": record["at"]}
        except (KeyError, TypeError) as exc:
            raise ArtifactError(f"not a CDS Hooks feedback record ({type(exc).__name__}: {exc})", source=uri,
                                fix="move it out of the feedback folder (records are written only by readmit serve)"
                                ) from None
    return latest


def _band(cards: list[dict[str, Any]], latest: dict[str, dict[str, Any]]) -> FeedbackBand:
    items = [latest[c["card"]] for c in cards if c["card"] in latest]
    accepted = sum(i["outcome"] == "accepted" for i in items)
    overridden = sum(i["outcome"] == "overridden" for i in items)
    reasons = Counter(_reason_code(i) for i in items if i["outcome"] == "overridden")
    n = len(cards)
    return FeedbackBand(cards=n, with_feedback=len(items), accepted=accepted, overridden=overridden,
                        feedback_rate=len(items) / n if n else None, acceptance_rate=accepted / n if n else None,
                        override_rate=overridden / n if n else None, override_reasons=dict(reasons.most_common()))


def _reason_code(item: dict[str, Any]) -> str:
    return (item.get("override_reason") or {}).get("code") or "none given"


def feedback_summary(registry: Any, *, months: list[str] | None = None, model: tuple[str, str] | None = None,
                     band_order: list[str] | None = None) -> FeedbackSource:
    """The clinicians' feedback on the cards of ``model`` ((algorithm, version); None: every model)
    shown in ``months`` (YYYY-MM by the time of the hook call; None: every month), by risk band
    (in ``band_order`` where given, then any other band by name)."""
    cards = _cards(registry, months)
    first_day = None if months is None or not months else f"{min(months)}-01"
    latest = _latest_feedback(registry, first_day)
    # an info card has no model (nothing was scored): it counts with every model's
    mine = [c for c in cards if model is None or c["band"] is None
            or (c["algorithm"], c["version"]) == (model[0], str(model[1]))]
    banded = [c for c in mine if c["band"] is not None]
    shown = {c["band"] for c in banded}
    order = [b for b in (band_order or []) if b in shown] + sorted(shown - set(band_order or []))
    bands = {b: _band([c for c in banded if c["band"] == b], latest) for b in order}
    counted = {c["card"] for c in banded}
    items = [latest[c] for c in counted if c in latest]
    reasons = Counter(_reason_code(i) for i in items if i["outcome"] == "overridden")
    names = {}
    for i in items:
        reason = i.get("override_reason") or {}
        if reason.get("code") and reason.get("display"):
            names[reason["code"]] = reason["display"]
    total = _band(banded, latest)
    card_times = sorted(c["at"] for c in banded)
    answer_times = sorted(i["outcome_at"] for i in items)
    return FeedbackSource(
        location=registry.storage.uri_of(registry.rel(FEEDBACK)), months=sorted(set(months or [])),
        cards=total.cards, with_feedback=total.with_feedback, accepted=total.accepted, overridden=total.overridden,
        feedback_rate=total.feedback_rate, acceptance_rate=total.acceptance_rate, override_rate=total.override_rate,
        info_cards=sum(c["band"] is None for c in mine), other_models_cards=len(cards) - len(mine),
        feedback_elsewhere=len(set(latest) - counted), bands=bands, override_reasons=dict(reasons.most_common()),
        reason_names=dict(sorted(names.items())),
        first_card_at=card_times[0] if card_times else None, last_card_at=card_times[-1] if card_times else None,
        first_feedback_at=answer_times[0] if answer_times else None,
        last_feedback_at=answer_times[-1] if answer_times else None,
    )


def feedback_rates(registry: Any, months: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Per risk band, every model's cards of ``months`` (None: all): cards, with feedback,
    accepted, overridden, their rates over the cards shown and the override reason codes
    (:func:`feedback_summary`'s bands as plain dicts)."""
    return {band: part.model_dump() for band, part in feedback_summary(registry, months=months).bands.items()}
