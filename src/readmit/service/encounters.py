"""``POST /v1/encounters``: record discharges, so the patient's next stay counts them.

Checked and cleaned as the medallion does it; only the history inputs are kept. Recording the
same discharge twice is harmless (``recorded: false``); the same encounter_id with other
values is refused (422) and nothing of the request is written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from readmit.service.auth import Caller, require
from readmit.service.body import encounters, read_json, request_body_schema
from readmit.service.errors import not_ready, request_id, within_timeout
from readmit.service.schemas import RecordAnswer
from readmit.serving.online import history_rows

router = APIRouter(prefix="/v1", tags=["history"])


@router.post("/encounters", response_model=RecordAnswer, summary="Record discharges in the history store",
             openapi_extra=request_body_schema(),
             responses={401: {"description": "No valid token"}, 403: {"description": "No record scope"},
                        422: {"description": "Invalid field, or a conflicting encounter_id"}})
async def record(request: Request, caller: Annotated[Caller, Depends(require("record"))]) -> RecordAnswer:
    state = request.app.state.service
    records = encounters(request, await read_json(request))
    if not state.ready:
        raise not_ready(state)
    rid = request_id(request)

    def work() -> list[dict]:
        now = datetime.now(UTC)
        done = state.store.record(history_rows(records))
        patients = {int(r["encounter_id"]): int(r["patient_nbr"]) for r in records}
        state.audit.write(rid, now, caller.name, "encounters", done, patients)
        return done

    return RecordAnswer(request_id=rid, encounters=await within_timeout(state, work))
