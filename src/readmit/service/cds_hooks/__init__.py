"""The CDS Hooks 2.0 service of ``readmit serve``: the EHR asks at discharge, a card answers.

- :mod:`~readmit.service.cds_hooks.trust` -- the EHR's signed JWT (allowlisted issuers, JWKS,
  ES384/RS384, aud, exp/iat, jti once, tenant);
- :mod:`~readmit.service.cds_hooks.request` -- the request and feedback bodies (400 with the path);
- :mod:`~readmit.service.cds_hooks.cards` -- the card a clinician reads;
- :mod:`~readmit.service.cds_hooks.routes` -- ``/cds-services``: discovery, hooks, feedback.

The FHIR R4 resources are mapped to the raw input contract by :mod:`readmit.service.fhir`; the
score is batch's (:func:`readmit.serving.online.score_records`). Off unless
``serve_config.cds_hooks.enabled``.
"""

from __future__ import annotations

from readmit.errors import ReadmitInputError


def check_exposure(host: str, settings: object) -> None:
    """Refuse to serve CDS Hooks on a non-loopback address with no trusted issuer."""
    from readmit.service.auth import is_loopback

    cds = settings.config.serve_config.cds_hooks
    if cds.enabled and not cds.issuers and not is_loopback(host):
        raise ReadmitInputError(
            f"serve_config.cds_hooks is enabled with no trusted issuer, so the service will not listen on {host}",
            fix="add the EHR to serve_config.cds_hooks.issuers ({iss, jwks_url} or {iss, jwks_file}), "
                "or bind to 127.0.0.1",
        )


def install(app: object, settings: object) -> None:
    """Mount ``/cds-services`` on ``app`` with its trust and its answers to refusals."""
    import os

    from fastapi.responses import JSONResponse, Response

    from readmit.service import fhir
    from readmit.service.cds_hooks.request import InvalidBody
    from readmit.service.cds_hooks.routes import router
    from readmit.service.cds_hooks.trust import ClientTrust, Refused
    from readmit.service.errors import request_id
    from readmit.serving.history import ENV_REDIS

    serve = settings.config.serve_config
    redis_url = (os.environ.get(ENV_REDIS) or serve.redis_url) if serve.history_backend == "redis" else None
    app.state.cds_trust = ClientTrust(serve.cds_hooks, redis_url)
    app.include_router(router)

    async def refused(request, exc):  # bare: nothing echoed, nothing to learn from
        return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})

    async def invalid(request, exc):
        return JSONResponse({"error": "invalid request", "request_id": request_id(request),
                             "problems": exc.problems}, status_code=400)

    async def fhir_refused(request, exc):
        path = field_path(exc.path)
        return JSONResponse({"error": "invalid FHIR data", "request_id": request_id(request),
                             "problems": [{"field": ["body", *path], "message": exc.message}]}, status_code=400)

    async def unavailable(request, exc):
        return JSONResponse({"error": f"the FHIR data the service needs cannot be had: {exc}",
                             "request_id": request_id(request)}, status_code=412)

    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(InvalidBody, invalid)
    app.add_exception_handler(fhir.FhirRefused, fhir_refused)
    app.add_exception_handler(fhir.FhirUnavailable, unavailable)


def field_path(path: object) -> list:
    """``prefetch.conditions.entry[2].resource`` as ``["prefetch", "conditions", "entry", 2, "resource"]``."""
    import re

    if isinstance(path, list | tuple):
        return list(path)
    return [int(index) if index else name for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", str(path))]
