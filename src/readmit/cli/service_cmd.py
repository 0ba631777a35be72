"""``readmit serve``: the HTTP scoring service (needs the ``serve`` extra).

Binds to 127.0.0.1 by default. Another address needs an API token (``READMIT_API_TOKENS`` or
``serve_config.tokens``): without one the command refuses to start (exit 2). At start the
history store is built from the datamart's silver when it is missing or stale.
"""

from __future__ import annotations

from typing import Annotated

import typer

from readmit import pipeline
from readmit.cli.common import ConfigOpt, DatamartOpt, RegistryOpt, handle_errors
from readmit.config import load_settings
from readmit.errors import ReadmitInputError


@handle_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (a non-loopback one needs a token).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes (each loads the models).")] = 1,
    config: ConfigOpt = None,
    datamart: DatamartOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """Score encounters at discharge over HTTP: /v1/score, /v1/encounters, /v1/model, /v1/health/*."""
    if not 0 < port < 65536:
        raise ReadmitInputError(f"--port {port} is not a TCP port", fix="give a port between 1 and 65535")
    if workers < 1:
        raise ReadmitInputError(f"--workers {workers} must be at least 1", fix="give --workers 1 or more")
    settings = load_settings(config, datamart=datamart, registry=registry)
    pipeline.serve(settings, host=host, port=port, workers=workers)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
