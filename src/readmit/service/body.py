"""Reading a request body of encounters: size bound, JSON, one encounter or a bounded list."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from readmit.service.schemas import encounter_model, encounter_record


async def read_json(request: Request) -> Any:
    """The JSON body, refused with 413 past ``serve_config.max_body_bytes`` and 400 when not JSON."""
    limit = request.app.state.service.settings.config.serve_config.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the body is larger than {limit} bytes (serve_config.max_body_bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body is larger than {limit} bytes (serve_config.max_body_bytes)")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as exc:
        raise HTTPException(400, f"the body is not valid JSON ({type(exc).__name__})") from None


def _errors(exc: ValidationError, prefix: list[Any]) -> list[dict[str, Any]]:
    return [{**e, "loc": (*prefix, *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]


def encounters(request: Request, body: Any) -> list[dict[str, Any]]:
    """The raw records of a body: one encounter object, or ``{"encounters": [...]}`` (bounded)."""
    limit = request.app.state.service.settings.config.serve_config.max_encounters
    model: type[BaseModel] = encounter_model()
    if isinstance(body, dict) and "encounters" in body:
        items, prefix = body["encounters"], ["body", "encounters"]
        if not isinstance(items, list) or not items:
            raise RequestValidationError([{"loc": tuple(prefix), "msg": "must be a non-empty list of encounters",
                                           "type": "list_type"}])
        if len(items) > limit:
            raise HTTPException(413, f"{len(items)} encounters in one request; at most {limit} "
                                     "(serve_config.max_encounters)")
    elif isinstance(body, dict):
        items, prefix = [body], ["body"]
    else:
        raise RequestValidationError([{"loc": ("body",), "msg": "must be an encounter object or "
                                       '{"encounters": [...]}', "type": "model_type"}])
    request.state.records_path = prefix
    records, errors = [], []
    for i, item in enumerate(items):
        try:
            records.append(encounter_record(model.model_validate(item)))
        except ValidationError as exc:
            errors += _errors(exc, [*prefix, i] if prefix[-1] == "encounters" else prefix)
    if errors:
        raise RequestValidationError(errors)
    if prefix == ["body"]:
        request.state.records_path = ["body", "encounters"]  # problems name the row: [0]
    return records


def request_body_schema() -> dict[str, Any]:
    """The OpenAPI request body: one encounter, or a list of them."""
    ref = {"$ref": "#/components/schemas/Encounter"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
        ref, {"type": "object", "required": ["encounters"],
              "properties": {"encounters": {"type": "array", "items": ref}}}]}}}}}
