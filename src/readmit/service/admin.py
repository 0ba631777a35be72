"""``POST /v1/admin/reload``: look at the aliases now instead of at the next
``serve_config.reload_seconds`` (after a ``readmit promote``, or once the registry is back).

Needs the ``admin`` scope. It acts on the worker process that takes the request (``worker`` in
the answer): with ``--workers N`` the others follow at their next periodic look.
"""

from __future__ import annotations

import logging
import os
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from readmit.service.auth import Caller, require

router = APIRouter(prefix="/v1/admin", tags=["admin"])
log = logging.getLogger("readmit.service")


@router.post("/reload", summary="Reload the models now if an alias moved (admin scope)",
             responses={401: {"description": "No valid token"}, 403: {"description": "No admin scope"}})
async def reload(request: Request, caller: Annotated[Caller, Depends(require("admin"))]) -> dict[str, Any]:
    state = request.app.state.service
    log.info("reload asked by %s", caller.name)
    reloaded = await run_in_threadpool(state.reload_now)
    return {"reloaded": reloaded, "ready": state.ready, "problem": state.problem,
            "reload_problem": state.reload_problem, "worker": os.getpid(),
            "models": [{"arm": m.arm, "algorithm": m.algorithm, "version": m.version} for m in state.models or []]}
