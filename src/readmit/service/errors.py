"""Errors as JSON: the field path and the message, never a stack trace."""

from __future__ import annotations

import functools
import logging
import os
import random
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from readmit.errors import ReadmitError
from readmit.service.audit import AuditUnavailable
from readmit.serving.history import HistoryUnavailable
from readmit.serving.online import RecordsRefused

log = logging.getLogger("readmit.service")


@functools.cache
def _ids() -> random.Random:
    """The source of request ids: seeded once per process from the OS, then drawn without a
    system call (``uuid.uuid4`` reads ``os.urandom`` each time, and on the event loop every call
    that releases the GIL waits up to a switch interval for the scoring thread to give it back)."""
    return random.Random(os.urandom(32))


def request_id(request: Request) -> str:
    """The request's id: 32 hex digits (a version-4 UUID), unique per request, not a secret."""
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        rid = request.state.request_id = uuid.UUID(int=_ids().getrandbits(128), version=4).hex
    return rid


async def within_timeout(state: Any, work: Any) -> Any:
    """``work`` (a function, run in a thread, or a coroutine) answered 504 past
    ``serve_config.request_timeout_s``.

    A request past its time is not answered; what it had started finishes in its thread (a
    prediction that gets its audit record but no answer is allowed; the reverse never is).
    """
    import asyncio
    import inspect

    from starlette.concurrency import run_in_threadpool

    limit = state.settings.config.serve_config.request_timeout_s
    try:
        return await asyncio.wait_for(work if inspect.isawaitable(work) else run_in_threadpool(work), timeout=limit)
    except TimeoutError:
        raise HTTPException(504, f"the request took longer than {limit} s (serve_config.request_timeout_s)") from None


def not_ready(state: Any) -> HTTPException:
    return HTTPException(503, f"the service is not ready: {state.problem or 'loading'}")


def problems_response(request: Request, problems: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"error": "invalid request", "request_id": request_id(request), "problems": problems},
                        status_code=422)


def _location(loc: tuple) -> list[Any]:
    return [part for part in loc]


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": _location(e.get("loc", ())), "message": e.get("msg", "invalid")}
                    for e in exc.errors()[:50]]
        return problems_response(request, problems)

    @app.exception_handler(RecordsRefused)
    async def refused(request: Request, exc: RecordsRefused) -> JSONResponse:
        base = getattr(request.state, "records_path", ["body", "encounters"])
        problems = [{"field": [*base, p.index, p.field], "message": p.message} for p in exc.problems[:50]]
        return problems_response(request, problems)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail, "request_id": request_id(request)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(ReadmitError)
    async def readmit_error(request: Request, exc: ReadmitError) -> JSONResponse:
        status = 422 if exc.exit_code == 2 else 503
        return JSONResponse({"error": exc.message, "fix": exc.fix, "request_id": request_id(request)},
                            status_code=status)

    async def store_down(request: Request, exc: Exception) -> JSONResponse:
        rid = request_id(request)  # the shared history store is down: nothing half-read is answered
        log.error("request %s: the history store does not answer: %s", rid, type(exc).__name__)
        return JSONResponse({"error": "the history store does not answer; retry later", "request_id": rid},
                            status_code=503, headers={"Retry-After": "1"})

    app.add_exception_handler(HistoryUnavailable, store_down)

    @app.exception_handler(AuditUnavailable)
    async def audit_down(request: Request, exc: AuditUnavailable) -> JSONResponse:
        rid = request_id(request)
        log.error("request %s refused: %s (%s)", rid, exc, exc.location)
        return JSONResponse({"error": f"{exc}; the request was not answered (nothing is scored unaudited)",
                             "location": exc.location, "fix": exc.fix, "request_id": rid},
                            status_code=503, headers={"Retry-After": "5"})
    try:
        from redis.exceptions import RedisError
    except ImportError:  # the embedded store only
        pass
    else:
        app.add_exception_handler(RedisError, store_down)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        rid = request_id(request)
        log.error("request %s failed: %s", rid, type(exc).__name__)  # no payload, no trace in the answer
        return JSONResponse({"error": "internal error", "request_id": rid}, status_code=500)
