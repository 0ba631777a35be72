"""``GET /v1/model``: what scores (version, alias, arm, features, calibration, threshold, card facts);
``GET /v1/model/card``: a serving model's card (markdown), which CDS Hooks cards link to."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import PlainTextResponse

from readmit.registry import Registry
from readmit.registry.versions import card_names
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


@router.get("/model/card", summary="The model card of a serving model (markdown; no token: a browser opens it)",
            response_class=PlainTextResponse,
            responses={404: {"description": "No serving model of that version, or it has no card yet"}})
def model_card(request: Request, version: str | None = None) -> PlainTextResponse:
    """The card CDS Hooks cards link to: a clinician's browser opens it, so it needs no token; it
    holds the model's facts (data, performance, limits), no patient data. Only the cards of the
    models now serving are served (the champion's by default), never another registry file."""
    state = request.app.state.service
    if not state.ready:
        raise not_ready(state)
    models = [m for m in state.models if version is None or m.version == version][:1]
    if not models:
        raise HTTPException(404, "no serving model has that version (GET /v1/model lists them)")
    registry = Registry.for_settings(state.settings)
    name = card_names(models[0].algorithm, models[0].version)[0]
    try:
        text = registry.storage.read_bytes(registry.rel(name)).decode()
    except FileNotFoundError:
        raise HTTPException(404, f"the model card of {models[0].algorithm} v{models[0].version} was not written "
                                 "(`readmit report` writes it)") from None
    return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")
