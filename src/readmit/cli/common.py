"""What every command shares: the console, location options, and error handling.

Exit codes: 0 success, 1 failure (a gate failed, a step failed), 2 bad usage or bad input
(with a message naming the file, the field and the fix).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from readmit.errors import ReadmitError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

ConfigOpt = Annotated[
    str | None,
    typer.Option("--config", help="Config file (local path or s3:// URI). Env: READMIT_CONFIG."),
]
RawOpt = Annotated[
    str | None,
    typer.Option("--raw", help="Raw input: UCI zip or CSV (local or s3://). Env: READMIT_RAW."),
]
DatamartOpt = Annotated[
    str | None,
    typer.Option("--datamart", help="Datamart root (folder or s3://bucket/prefix). Env: READMIT_DATAMART_URI."),
]
RegistryOpt = Annotated[
    str | None,
    typer.Option("--registry", help="Model registry root (folder or s3://bucket/prefix). Env: READMIT_REGISTRY_URI."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]


def handle_errors(func: F) -> F:
    """Turn readmit's deliberate errors into one clear message and their exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ReadmitError as exc:
            # The message is text, not markup: "file.zip [dataset_diabetes/diabetic_data.csv]" or
            # "[70-80)" must print as written (and "[/x]" must not crash the error path).
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True,
                              soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
