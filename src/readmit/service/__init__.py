"""``readmit serve``: the HTTP scoring service (FastAPI on uvicorn, the ``serve`` extra).

Nothing is built at import: :func:`readmit.service.app.create_app` makes an app from settings.
One router per area (health, scoring, encounters, model); authentication is a dependency
(:mod:`readmit.service.auth`). The scoring itself is the batch path's
(:mod:`readmit.serving.online`, :func:`readmit.serving.predict.score_batch`).
"""

from __future__ import annotations

import os
from typing import Any


def serve(settings: Any, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          log_level: str = "info") -> None:
    """Run the HTTP scoring service until stopped (``readmit serve``).

    Refuses a non-loopback ``host`` when no API token is configured, or when CDS Hooks is on
    with no trusted issuer. The history store is
    built from the datamart's silver first when it is missing or stale; with several workers
    each process then loads the models itself (:func:`readmit.service.app.factory`).
    """
    from readmit.errors import ReadmitInputError

    try:
        import uvicorn

        from readmit.service.app import ENV_NO_BUILD, create_app
        from readmit.service.auth import check_exposure, load_tokens
    except ImportError as exc:
        raise ReadmitInputError(f"readmit serve needs the serve extra ({exc.name} is not installed)",
                                fix="pip install 'readmit[serve]'") from None
    from readmit.serving.history import build_history_store

    access_log = settings.config.serve_config.access_log
    check_exposure(host, load_tokens(settings))
    if settings.config.serve_config.cds_hooks.enabled:
        from readmit.service.cds_hooks import check_exposure as check_cds_exposure

        check_cds_exposure(host, settings)
    if workers > 1:
        build_history_store(settings)
        os.environ.update(settings.env())
        os.environ[ENV_NO_BUILD] = "1"
        uvicorn.run("readmit.service.app:factory", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, access_log=access_log)
    else:
        uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, access_log=access_log)
