"""``GET /v1/model``: what scores (version, alias, arm, features, calibration, threshold, card facts)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from readmit.service.auth import Caller, require
from readmit.service.errors import not_ready

router = APIRouter(prefix="/v1", tags=["model"])


@router.get("/model", summary="The models that score, as loaded and verified")
def model(request: Request, caller: Annotated[Caller, Depends(require("score"))]) -> dict[str, Any]:
    state = request.app.state.service
    if not state.ready:
        raise not_ready(state)
    info = state.describe()
    inference = state.settings.config.inference_config
    info["risk_bands"] = inference.risk_bands.model_dump()
    info["ab_test"] = inference.ab_test.model_dump() if inference.ab_test.enabled else None
    return info
