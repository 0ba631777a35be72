"""``POST /invocations``: MLflow's scoring protocol, so a client of ``mlflow models serve`` works unchanged.

Accepts ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`` and
``{"dataframe_records": [{...}, ...]}`` (the rows in the raw input contract, as for
``/v1/score``) and answers ``{"predictions": [...]}``, one prediction per row in order.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError

from readmit.service.auth import Caller, require
from readmit.service.body import encounters, read_json
from readmit.service.errors import not_ready, request_id, within_timeout
from readmit.service.schemas import Prediction
from readmit.service.scoring import audited_scores

router = APIRouter(tags=["mlflow"])
FORMATS = ("dataframe_split", "dataframe_records")


def _rows(body: Any) -> list[Any]:
    if not isinstance(body, dict) or len([k for k in FORMATS if k in body]) != 1:
        raise RequestValidationError([{"loc": ("body",), "type": "value_error",
                                       "msg": "give exactly one of dataframe_split or dataframe_records"}])
    if "dataframe_records" in body:
        return body["dataframe_records"]
    split = body["dataframe_split"]
    if not isinstance(split, dict) or not isinstance(split.get("columns"), list) or not isinstance(split.get("data"), list):
        raise RequestValidationError([{"loc": ("body", "dataframe_split"), "type": "value_error",
                                       "msg": "dataframe_split needs columns (a list) and data (a list of rows)"}])
    columns = split["columns"]
    rows = []
    for i, row in enumerate(split["data"]):
        if not isinstance(row, list) or len(row) != len(columns):
            raise RequestValidationError([{"loc": ("body", "dataframe_split", "data", i), "type": "value_error",
                                           "msg": f"a row of {len(columns)} values, one per column"}])
        rows.append(dict(zip(columns, row, strict=True)))
    return rows


@router.post("/invocations", summary="MLflow scoring protocol (dataframe_split, dataframe_records)")
async def invocations(request: Request, caller: Annotated[Caller, Depends(require("score"))]) -> dict[str, Any]:
    state = request.app.state.service
    records = encounters(request, {"encounters": _rows(await read_json(request))})
    if not state.ready:
        raise not_ready(state)
    rid = request_id(request)
    rows = await within_timeout(state, audited_scores(state, records, rid, caller, "invocations"))
    return {"predictions": [Prediction(**row).model_dump() for row in rows]}
