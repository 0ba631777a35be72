"""``readmit serve``: the HTTP scoring service (FastAPI on uvicorn, the ``serve`` extra).

Nothing is built at import: :func:`readmit.service.app.create_app` makes an app from settings.
One router per area (health, scoring, encounters, model); authentication is a dependency
(:mod:`readmit.service.auth`). The scoring itself is the batch path's
(:mod:`readmit.serving.online`, :func:`readmit.serving.predict.score_batch`).
"""
