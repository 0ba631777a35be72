"""``POST /v1/score``: the risk of one encounter, or of a bounded list, at discharge.

The answer of every encounter is batch's (:func:`readmit.serving.online.score_records`): the
same features from the same definitions, the history from the store, the same scoring
function. Nothing is recorded: a discharge counts in later history once it is recorded
(``POST /v1/encounters``). Every answer has its audit record before it is sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from readmit.service.auth import Caller, require
from readmit.service.body import encounters, read_json, request_body_schema
from readmit.service.errors import not_ready, request_id, within_timeout
from readmit.service.schemas import ScoreAnswer
from readmit.serving.online import score_groups

router = APIRouter(prefix="/v1", tags=["scoring"])


@router.post("/score", response_model=ScoreAnswer, summary="Score encounters at discharge",
             openapi_extra=request_body_schema(),
             responses={401: {"description": "No valid token"}, 403: {"description": "No score scope"},
                        413: {"description": "Body or list too large"}, 422: {"description": "Invalid field"},
                        503: {"description": "Not ready"}})
async def score(request: Request, caller: Annotated[Caller, Depends(require("score"))]) -> Response:
    state = request.app.state.service
    records = encounters(request, await read_json(request))
    if not state.ready:
        raise not_ready(state)
    rid = request_id(request)
    rows = await within_timeout(state, audited_scores(state, records, rid, caller, "score"))
    # validated once here and written by pydantic-core; returning the model would validate it
    # again against response_model, then encode it through Python dicts (the same JSON)
    return Response(ScoreAnswer(request_id=rid, predictions=rows).model_dump_json(), media_type="application/json")


async def audited_scores(state: Any, records: list[dict], rid: str, caller: Caller, endpoint: str) -> list[dict]:
    """Batch's answer for ``records``, returned only once its audit record is written (every
    scoring endpoint answers through this). Requests that arrive together are scored in one
    batch (:class:`readmit.serving.online.Coalescer`), awaited on the event loop, so a waiting
    request holds no thread; each keeps its own answer and audit record (written in a thread;
    the records asked for together go to the pool in one hop, :meth:`AuditLog.write_async`)."""
    now = datetime.now(UTC)
    store, models = state.store, state.models
    rows = await state.coalescer.score_async(
        records, lambda groups: score_groups(groups, store, models, state.settings, now))
    patients = {int(r["encounter_id"]): int(r["patient_nbr"]) for r in records}
    await state.audit.write_async(rid, now, caller.name, endpoint, rows, patients)
    return rows
