"""Assemble the ``readmit`` application from the per-area sub-apps."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from readmit.cli.common import hide_flag_types, set_debug, show_warnings

app = typer.Typer(
    name="readmit",
    help="30-day readmission risk for diabetic patients: data, training, registry, orchestration.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        import readmit  # the package itself: its __init__ holds only the version

        typer.echo(f"readmit {readmit.__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    debug: Annotated[bool, typer.Option(
        "--debug", help="Print the full traceback of an error (it always goes to a log file, named in the message).",
    )] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print readmit's version and exit.",
    )] = False,
) -> None:
    """30-day readmission risk for diabetic patients: data, training, registry, orchestration."""
    set_debug(debug)
    show_warnings()


# (module, register-function) pairs; each module adds its commands or sub-app to ``app``.
_AREAS = (
    "readmit.cli.config_cmd",
    "readmit.cli.data_cmd",
    "readmit.cli.training_cmd",
    "readmit.cli.run_cmd",
    "readmit.cli.serve_cmd",
    "readmit.cli.report_cmd",
    "readmit.cli.monitor_cmd",
)

for _module in _AREAS:
    importlib.import_module(_module).register(app)
hide_flag_types()


def main() -> None:
    app()
