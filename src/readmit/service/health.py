"""``GET /v1/health/live`` and ``/v1/health/ready``: no token (probes carry none).

With ``--workers N`` a probe reaches one worker; each loads before it takes connections, so
only a worker that loaded can answer it, and ``worker`` (its process id) says which one did.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(prefix="/v1/health", tags=["health"])


@router.get("/live", summary="The process answers")
def live() -> dict[str, str]:
    return {"status": "live"}


@router.get("/ready", summary="A verified model and the history store are loaded",
            responses={503: {"description": "Not ready yet, or loading failed (see problem)"}})
def ready(request: Request) -> JSONResponse:
    state = request.app.state.service
    if state.ready:
        try:
            state.store.ping()
        except Exception as exc:
            return JSONResponse({"status": "not ready", "problem": f"the history store does not answer "
                                 f"({type(exc).__name__})"}, status_code=503)
        failing = state.audit.problem and state.audit.probe()  # a full audit disk: not ready until it is written
        if failing:
            return JSONResponse({"status": "not ready", "problem": str(failing), "location": failing.location,
                                 "fix": failing.fix}, status_code=503)
        return JSONResponse({"status": "ready", "loaded_at": state.loaded_at, "worker": os.getpid()})
    return JSONResponse({"status": "not ready", "problem": state.problem or "loading"}, status_code=503)
