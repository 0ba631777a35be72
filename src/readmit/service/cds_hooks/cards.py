"""The cards a clinician reads: one per hook call, as CDS Hooks 2.0 defines a card.

A scored encounter gets the risk, its band (the indicator comes from the band,
``serve_config.cds_hooks.indicators``), the three main reasons in words
(:mod:`readmit.serving.reason_words`), the model and a link to its model card, and the inputs
the FHIR data lacked. An encounter outside the model's intended use (no diabetes diagnosis,
death or hospice discharge) gets an info card saying why, and no score.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from readmit.config import CdsHooksSection
from readmit.serving.reason_words import input_words, reason_words
from readmit.serving.reasons import UNAVAILABLE

OVERRIDE_SYSTEM = "https://github.com/readmit/readmit/cds-hooks/override-reasons"
OVERRIDE_REASONS = (
    ("follow-up-arranged", "Follow-up already arranged"),
    ("clinical-judgement", "Clinical judgement: risk is lower than shown"),
    ("data-incomplete", "The data behind the score is incomplete or wrong"),
    ("patient-declined", "Patient declined follow-up"),
)
FOLLOW_UP_DAYS = 7
# The exact prediction for machines (an EHR's analytics, the parity test), under the spec's
# reserved ``extension`` member; the clinician reads summary and detail.
EXTENSION = "org.readmit.prediction"
_MACHINE = ("risk", "risk_band", "flag", "top_reasons", "algorithm", "version", "alias", "arm")


def percent(risk: float) -> str:
    return f"{risk * 100:.0f}%"


def model_card_url(base: str, version: str) -> str:
    return f"{base}/v1/model/card?version={version}"


def _reasons(codes: list[str]) -> list[str]:
    return [reason_words(c) for c in codes if c != UNAVAILABLE][:3]


def _detail(prediction: dict[str, Any], missing: list[str], base: str) -> str:
    lines = [f"**30-day readmission risk: {percent(prediction['risk'])}** (risk band: "
             f"{prediction['risk_band'].replace('_', ' ')}).", ""]
    reasons = _reasons(prediction.get("top_reasons") or [])
    if reasons:
        lines += ["What raises it most for this patient:", ""]
        lines += [f"{i}. {text}" for i, text in enumerate(reasons, 1)]
    else:
        lines += ["This model does not give per-patient reasons."]
    lines += ["", f"Model: {prediction['algorithm']} version {prediction['version']} ({prediction['alias']}); "
              f"[model card]({model_card_url(base, prediction['version'])})."]
    if missing:
        lines += ["", "Missing from the record (scored as not recorded): " + "; ".join(_missing(missing)) + "."]
    lines += ["", "Decision support only: it does not replace clinical judgement."]
    return "\n".join(lines)


def _missing(missing: list[str]) -> list[str]:
    """``"payer_code: no Coverage in the prefetch"`` as ``"payer (no Coverage in the prefetch)"``."""
    out = []
    for item in sorted(set(missing)):
        name, _, why = item.partition(":")
        out.append(f"{input_words(name.strip())} ({why.strip()})" if why.strip() else input_words(name.strip()))
    return out


def _source(config: CdsHooksSection, base: str, version: str | None) -> dict[str, str]:
    source = {"label": config.source_label}
    if version is not None:
        source["url"] = model_card_url(base, version)
    return source


def _follow_up(patient_id: str, encounter_id: str | None, today: date) -> dict[str, Any]:
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest", "status": "draft", "intent": "proposal",
        "code": {"text": f"Follow-up appointment within {FOLLOW_UP_DAYS} days of discharge"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "occurrencePeriod": {"start": today.isoformat(),
                             "end": (today + timedelta(days=FOLLOW_UP_DAYS)).isoformat()},
        "reasonCode": [{"text": "High 30-day readmission risk (readmit)"}],
    }
    if encounter_id is not None:
        request["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    return {"label": f"Book a follow-up visit within {FOLLOW_UP_DAYS} days", "uuid": str(uuid.uuid4()),
            "isRecommended": True,
            "actions": [{"type": "create", "description": "Propose a follow-up appointment within "
                         f"{FOLLOW_UP_DAYS} days of discharge", "resource": request}]}


def risk_card(prediction: dict[str, Any], missing: list[str], config: CdsHooksSection, base: str,
              patient_id: str, encounter_id: str | None, today: date) -> dict[str, Any]:
    """The card of a scored encounter."""
    band = prediction["risk_band"]
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": f"30-day readmission risk {percent(prediction['risk'])} — {band.replace('_', ' ')}",
        "indicator": config.indicators.get(band, "warning"),
        "detail": _detail(prediction, missing, base),
        "source": _source(config, base, prediction["version"]),
        "links": [{"label": "Model card", "url": model_card_url(base, prediction["version"]), "type": "absolute"}],
        "overrideReasons": [{"system": OVERRIDE_SYSTEM, "code": c, "display": d} for c, d in OVERRIDE_REASONS],
        "extension": {EXTENSION: {k: prediction.get(k) for k in _MACHINE}
                      | {"missing": sorted({m.partition(":")[0].strip() for m in missing})}},
    }
    if band in config.follow_up_bands:
        card["suggestions"] = [_follow_up(patient_id, encounter_id, today)]
        card["selectionBehavior"] = "at-most-one"
    return card


NOT_DIABETES = "no_diabetes_diagnosis"
NOT_INPATIENT = "not_inpatient"
WHY_NOT = {
    NOT_INPATIENT: "the encounter is not an inpatient stay (Encounter.class is not IMP, ACUTE or NONAC)",
    NOT_DIABETES: "none of the encounter's first three diagnoses is diabetes (ICD-9-CM 250.x, ICD-10-CM E08-E13)",
    "death_or_hospice": "the patient died or was discharged to hospice",
}


def outside_card(reason: str, config: CdsHooksSection) -> dict[str, Any]:
    """The info card of an encounter the model is not meant for: why, and no score."""
    why = WHY_NOT.get(reason, reason)
    return {
        "uuid": str(uuid.uuid4()),
        "summary": "No readmission risk: this encounter is outside the model's intended use",
        "indicator": "info",
        "detail": f"The 30-day readmission model is meant for diabetic inpatients discharged alive and not to "
                  f"hospice. It gives no risk here: {why}.",
        "source": _source(config, "", None),
    }
