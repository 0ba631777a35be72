"""``/cds-services``: discovery, the two hooks, and feedback (CDS Hooks 2.0).

Every route first checks the caller's JWT (:mod:`readmit.service.cds_hooks.trust`), before
the body is read or the service id looked up, so nothing answers an untrusted caller but a
bare 401. A hook call then: reads the body (413 past ``serve_config.max_body_bytes``), checks it
(400 with the field path), completes the prefetch from an allowlisted FHIR server when keys are
absent (412 when the data cannot be had), maps the FHIR resources to one raw-contract row and
scores it through the batch path (:func:`readmit.serving.online.score_groups`), writes the
audit record (hookInstance, card uuid) and answers one card.

**History.** The patient's earlier stays are the union of two sources, given to gold's own
history code as the patient's history state (:class:`EarlierStays`; gold's rule, earlier by
date and by encounter_id, then picks what counts): the service's history store, as ``POST
/v1/score`` uses it (what the datamart and the recorded discharges know: the same history as
batch for the same patient), and the earlier Encounters of the prefetch (what the EHR knows,
stays the store never saw). A stay in both counts once (the store's row wins). An EHR patient
whose FHIR id is not a datamart ``patient_nbr`` (the mapping hashes it into its own range)
finds nothing in the store: the EHR's stays alone count.
"""

from __future__ import annotations

import functools
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import narwhals as nw
import polars as pl
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from readmit.data.codes import DIAGNOSIS_COLUMNS
from readmit.data.features import HISTORY_INPUT_COLUMNS, HISTORY_STATE_SCHEMA, icd9_group
from readmit.data.schema import DEATH_OR_HOSPICE_DISPOSITIONS
from readmit.data.translate import polars_exprs
from readmit.service.body import read_json
from readmit.service.cds_hooks.cards import NOT_DIABETES, NOT_INPATIENT, outside_card, risk_card
from readmit.service.cds_hooks.request import FeedbackRequest, HookRequest, InvalidBody, parse
from readmit.service.cds_hooks.trust import Refused
from readmit.service.errors import not_ready, request_id, within_timeout
from readmit.serving.online import EXCLUDED, RecordsRefused, score_groups

log = logging.getLogger("readmit.service.cds_hooks")
router = APIRouter(tags=["cds-hooks"])

SERVICES: dict[str, dict[str, str]] = {
    "encounter-discharge": {
        "hook": "encounter-discharge", "title": "30-day readmission risk at discharge",
        "description": "The calibrated probability that this diabetic inpatient is readmitted within 30 days, "
                       "its risk band and the three main reasons, from readmit's champion model.",
    },
    "patient-view": {
        "hook": "patient-view", "title": "30-day readmission risk of the current encounter",
        "description": "The same risk as at discharge, for the encounter in context when a patient's chart is "
                       "opened (no card when the context names no encounter).",
    },
}
USAGE = ("For adult diabetic inpatients (a diabetes diagnosis among the first three) discharged alive and not to "
         "hospice; no card otherwise but an info card saying why. Needs the prefetch (or fhirServer with "
         "fhirAuthorization on the service's allowlist); calls must carry a JWT of an allowlisted issuer.")


def _caller(request: Request, audiences: list[str]) -> dict[str, Any]:
    """The verified claims of the call's JWT (run in a thread: a JWKS fetch may wait on the network)."""
    trust = request.app.state.cds_trust
    try:
        return trust.verify(request.headers.get("authorization", ""), audiences)
    except Refused as exc:
        log.warning("cds-hooks call refused: %s", exc.why)  # the check, never the token
        raise


def _audiences(request: Request, *paths: str) -> list[str]:
    return [request.app.state.cds_trust.audience(p) for p in paths]


@router.get("/cds-services", summary="CDS Hooks discovery")
def discovery(request: Request) -> dict[str, Any]:
    _caller(request, _audiences(request, "/cds-services"))
    from readmit.service.fhir import PREFETCH_TEMPLATES

    return {"services": [{**meta, "id": sid, "prefetch": dict(PREFETCH_TEMPLATES), "usageRequirements": USAGE}
                         for sid, meta in SERVICES.items()]}


@router.post("/cds-services/{service_id}", summary="Call a CDS service (a hook)")
async def call(service_id: str, request: Request) -> Any:
    claims = await run_in_threadpool(_caller, request, _audiences(request, f"/cds-services/{service_id}"))
    if service_id not in SERVICES:
        return JSONResponse({"error": f"no CDS service {service_id!r} (see GET /cds-services)"}, status_code=404)
    hook = parse(HookRequest, await read_json(request))
    expected = SERVICES[service_id]["hook"]
    if hook.hook != expected:
        raise InvalidBody([{"field": ["body", "hook"], "message": f"this service answers the {expected} hook"}])
    if expected == "encounter-discharge" and hook.context.encounterId is None:
        raise InvalidBody([{"field": ["body", "context", "encounterId"],
                            "message": "encounter-discharge needs the encounter being ended"}])
    state = request.app.state.service
    if not state.ready:
        raise not_ready(state)
    rid = request_id(request)
    return await within_timeout(state, lambda: answer(state, hook, service_id, claims, rid))


def answer(state: Any, hook: HookRequest, service_id: str, claims: dict[str, Any], rid: str) -> dict[str, Any]:
    """The cards of one hook call, returned once its audit record is written."""
    config = state.settings.config.serve_config.cds_hooks
    context = hook.context
    extra = {"hook": hook.hook, "service": service_id, "hookInstance": str(hook.hookInstance)}
    now = datetime.now(UTC)
    if context.encounterId is None:  # patient-view without an encounter in context: nothing to score
        state.audit.write(rid, now, claims["iss"], "cds-hooks", [], {}, {**extra, "card": None})
        return {"cards": []}
    from readmit.service.fhir import FhirUnavailable, NotInpatient, complete_prefetch, map_prefetch

    prefetch = complete_prefetch(hook.prefetch or {}, context.model_dump(), hook.fhirServer,
                                 hook.fhirAuthorization.model_dump() if hook.fhirAuthorization else None,
                                 config.fhir_servers, config.fhir_timeout_s)
    if prefetch.get("conditions") is None:  # no diagnoses: neither the intended use nor the risk can be told
        raise FhirUnavailable("the encounter's Conditions (prefetch key conditions) could not be had")
    discharged = now if hook.hook == "encounter-discharge" else None  # a stay being ended may have no period.end
    try:
        mapped = map_prefetch(prefetch, context.patientId, context.encounterId, discharged_at=discharged)
    except NotInpatient:
        card = outside_card(NOT_INPATIENT, config)
        state.audit.write(rid, now, claims["iss"], "cds-hooks", [], {}, {**extra, "card": card["uuid"],
                          "excluded": NOT_INPATIENT})
        return {"cards": [card]}
    record = mapped.record
    outside = intended_use(record)
    if outside is None:
        row = _score(state, record, mapped.earlier, now)
        outside = None if row["scored"] else row.get("excluded") or EXCLUDED
    else:
        row = {"encounter_id": int(record["encounter_id"]), "scored": False, "excluded": outside}
    if outside is None:
        card = risk_card(row, mapped.missing, config, (config.base_url or "").rstrip("/"), context.patientId,
                         context.encounterId, now.date())
    else:
        card = outside_card(outside, config)
    patients = {int(record["encounter_id"]): int(record["patient_nbr"])}
    state.audit.write(rid, now, claims["iss"], "cds-hooks", [row], patients,
                      {**extra, "card": card["uuid"], "missing": sorted(mapped.missing_fields())})
    return {"cards": [card]}


def _score(state: Any, record: dict[str, Any], earlier: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """Batch's answer for the mapped record (a value the raw reader refuses: 400 naming it)."""
    models = state.models

    def run(groups: list[list[dict[str, Any]]], earliers: list[list[dict[str, Any]]]) -> list[Any]:
        # hook calls that queued together: one batch, each patient's earlier stays from its own
        # call (the coalescer joins only calls with no patient and no encounter in common)
        history = EarlierStays([stay for stays in earliers for stay in stays], state.store)
        return score_groups(groups, history, models, state.settings, now)

    try:
        [row] = state.coalescer.score([record], run, kind="cds-hooks", context=list(earlier or []))
    except RecordsRefused as exc:
        raise InvalidBody([{"field": ["body", "prefetch"], "message": f"read from FHIR, {p.field}: {p.message}"}
                           for p in exc.problems]) from None
    return row


@functools.cache
def _diagnosis_group() -> tuple[nw.Expr, list[pl.Expr] | None]:
    """gold's diagnosis group of a ``code`` column, and its Polars translation made once: built and
    translated on every call it cost ~40% of a hook call (benchmarks/bench_serve.py --mode hooks)."""
    expr = icd9_group(nw.col("code")).alias("group")
    return expr, polars_exprs((expr,))


def intended_use(record: dict[str, Any]) -> str | None:
    """Why the model is not meant for this encounter (no diabetes diagnosis, death or hospice), or None."""
    if record.get("discharge_disposition_id") in DEATH_OR_HOSPICE_DISPOSITIONS:
        return EXCLUDED
    codes = pl.DataFrame({"code": [record.get(c) for c in DIAGNOSIS_COLUMNS]}, schema={"code": pl.String})
    expr, translated = _diagnosis_group()
    if translated is None:  # narwhals' translation hook gone: the same groups, the slow way
        groups = nw.from_native(codes).select(expr).to_native()["group"]
    else:
        groups = codes.select(translated)["group"]
    return None if "Diabetes" in groups.to_list() else NOT_DIABETES


class EarlierStays:
    """A patient's history state: the service's store and the prefetch's earlier stays, each stay once."""

    def __init__(self, rows: list[dict[str, Any]], store: Any = None):
        self.store = store
        if rows:
            frame = pl.DataFrame([{c: r.get(c) for c in HISTORY_INPUT_COLUMNS} for r in rows],
                                 infer_schema_length=None)
            if frame.schema["snapshot_date"] == pl.String:
                frame = frame.with_columns(pl.col("snapshot_date").str.to_date())
            self.frame = frame.select(HISTORY_INPUT_COLUMNS).cast(HISTORY_STATE_SCHEMA)
        else:
            self.frame = pl.DataFrame(schema=HISTORY_STATE_SCHEMA)

    def patients(self, patient_nbrs: list[int]) -> pl.DataFrame:
        wanted = [int(p) for p in patient_nbrs]
        ehr = self.frame.filter(pl.col("patient_nbr").is_in(wanted))
        if self.store is None:
            return ehr
        held = self.store.patients(wanted).cast(HISTORY_STATE_SCHEMA)
        return pl.concat([held, ehr.filter(~pl.col("encounter_id").is_in(held["encounter_id"].implode()))])


@router.post("/cds-services/{service_id}/feedback", summary="Feedback on a card (accepted, overridden)")
async def feedback(service_id: str, request: Request) -> Any:
    base = f"/cds-services/{service_id}"
    claims = await run_in_threadpool(_caller, request, _audiences(request, f"{base}/feedback", base))
    if service_id not in SERVICES:
        return JSONResponse({"error": f"no CDS service {service_id!r} (see GET /cds-services)"}, status_code=404)
    body = parse(FeedbackRequest, await read_json(request))
    state = request.app.state.service
    if state.audit is None:
        raise not_ready(state)
    now = datetime.now(UTC)
    items = [_feedback_record(item) for item in body.feedback]
    fid = uuid.uuid4().hex
    await within_timeout(state, lambda: state.audit.write_feedback(
        fid, now, claims["iss"], {"service": service_id, "feedback": items}))
    return Response(status_code=200)


def _feedback_record(item: Any) -> dict[str, Any]:
    """What is kept of one feedback item: the card, outcome, reason code and time (a free-text
    comment may name the patient: only whether there was one is kept)."""
    reason = item.overrideReason.reason if item.overrideReason is not None else None
    return {"card": str(item.card), "outcome": item.outcome,
            "accepted_suggestions": [s.id for s in item.acceptedSuggestions or []],
            "override_reason": None if reason is None else {"code": reason.code, "system": reason.system,
                                                            "display": reason.display},
            "comment_given": bool(item.overrideReason and item.overrideReason.userComment),
            "outcome_at": item.outcomeTimestamp.astimezone(UTC).isoformat()}
