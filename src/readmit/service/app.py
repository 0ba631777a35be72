"""The app factory: :func:`create_app` builds the FastAPI app of ``readmit serve`` from settings.

Nothing is built at import. At start the app opens the history store (built from the
datamart's silver when it is missing or stale) and loads the verified models in a thread, so
``/v1/health/live`` answers at once and ``/v1/health/ready`` says 200 once both are loaded.
The same thread then looks every ``serve_config.reload_seconds`` whether an alias moved
(``readmit promote``, ``--rollback``) and swaps the new verified models in without a restart.
:func:`factory` is what each uvicorn worker process calls (``--workers N``): the settings come
from the environment (:meth:`readmit.config.Settings.env`), and it loads before it takes
connections, so a worker restarted after a crash only joins once it can answer.
"""

from __future__ import annotations

import sys
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI

from readmit.config import Settings, load_settings
from readmit.service import admin, encounters, errors, health, invocations, model, scoring
from readmit.service.auth import load_tokens
from readmit.service.schemas import encounter_model
from readmit.service.state import ServiceState

ENV_NO_BUILD = "READMIT_SERVE_NO_HISTORY_BUILD"
SWITCH_INTERVAL_S = 0.001
"""The interpreter's GIL switch interval while serving (Python's default: 5 ms). The event loop
gives up the GIL at every socket call; with the coalescer's thread scoring a batch in Python it
then waited up to 5 ms to get it back, once per call, several calls per request
(docs/benchmarks.md, speed19c)."""


def create_app(settings: Settings, *, build_history: bool = True, load_first: bool = False) -> FastAPI:
    """The service for ``settings`` (``build_history``: build the history store at start when missing or stale).

    ``load_first``: load the models and the store before taking connections (one of several
    workers: the others answer meanwhile, and a worker uvicorn restarts after a crash takes no
    request it would refuse as not ready). Otherwise loading runs beside serving, so the live
    probe answers at once.
    """
    state = ServiceState(settings=settings, tokens=load_tokens(settings), build_history=build_history)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, SWITCH_INTERVAL_S))
        if load_first:
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(state.load)
        threading.Thread(target=state.watch, kwargs={"loaded": load_first}, name="readmit-models",
                         daemon=True).start()
        yield
        state.stopping.set()
        if state.store is not None:
            state.store.close()
        sys.setswitchinterval(switch)

    app = FastAPI(
        title="readmit", version="1",
        summary="30-day readmission risk at discharge: the same answer as batch scoring.",
        lifespan=lifespan,
    )
    app.state.service = state
    errors.install(app)
    for area in (health, scoring, encounters, model, invocations, admin):
        app.include_router(area.router)
    if settings.config.serve_config.cds_hooks.enabled:
        from readmit.service import cds_hooks

        cds_hooks.install(app, settings)

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schema.setdefault("components", {}).setdefault("schemas", {})["Encounter"] = (
                encounter_model().model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}"))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app


def factory() -> FastAPI:
    """The app of one uvicorn worker: settings from the environment."""
    import os

    return create_app(load_settings(), build_history=os.environ.get(ENV_NO_BUILD) != "1", load_first=True)
