"""What clinicians did with the cards: acceptance and override rates by risk band, from the audit trail.

An early signal: a 30-day label matures a month after discharge, a clinician's "overridden"
comes the same day. The CDS Hooks service keeps one audit record per hook call (its card
``uuid`` and the scored row's band, ``audit/online/``) and one per feedback call
(``audit/feedback/``: card, outcome, override reason code). Here they are joined by card: per
band, the cards shown, how many got feedback, accepted and overridden (a card's latest outcome
counts, as a client may send it more than once), and the override reasons named.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from readmit.registry.audit import AUDIT_DIR as ONLINE
from readmit.registry.audit import FEEDBACK_DIR as FEEDBACK

HOOK_ENDPOINT = "cds-hooks"


def _records(registry: Any, folder: str, since: str | None) -> list[dict[str, Any]]:
    storage = registry.storage
    out = []
    for day in storage.listdir(registry.rel(folder)):
        if since is not None and day < since:
            continue
        for name in storage.listdir(registry.rel(f"{folder}/{day}")):
            if name.endswith(".json"):
                out.append(storage.read_json(registry.rel(f"{folder}/{day}/{name}")))
    return out


def card_bands(registry: Any, since: str | None = None) -> dict[str, str]:
    """card uuid -> the risk band it showed (hook calls that scored)."""
    bands = {}
    for record in _records(registry, ONLINE, since):
        if record.get("endpoint") == HOOK_ENDPOINT and record.get("card") and record.get("rows"):
            row = record["rows"][0]
            if row.get("scored"):
                bands[record["card"]] = row["risk_band"]
    return bands


def feedback_rates(registry: Any, since: str | None = None) -> dict[str, dict[str, Any]]:
    """Per risk band: cards, with feedback, accepted, overridden, their rates over the cards shown,
    and the override reason codes (``since``: the first day, YYYY-MM-DD)."""
    bands = card_bands(registry, since)
    latest: dict[str, dict[str, Any]] = {}
    for record in sorted(_records(registry, FEEDBACK, since), key=lambda r: r["at"]):
        for item in record.get("feedback", []):
            held = latest.get(item["card"])
            if held is None or item["outcome_at"] >= held["outcome_at"]:
                latest[item["card"]] = item
    out: dict[str, dict[str, Any]] = {}
    shown = Counter(bands.values())
    for band, cards in sorted(shown.items()):
        items = [latest[c] for c, b in bands.items() if b == band and c in latest]
        accepted = sum(i["outcome"] == "accepted" for i in items)
        overridden = sum(i["outcome"] == "overridden" for i in items)
        reasons = Counter((i.get("override_reason") or {}).get("code") or "none" for i in items
                          if i["outcome"] == "overridden")
        out[band] = {"cards": cards, "with_feedback": len(items), "accepted": accepted, "overridden": overridden,
                     "acceptance_rate": accepted / cards, "override_rate": overridden / cards,
                     "override_reasons": dict(reasons)}
    return out
