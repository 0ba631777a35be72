"""What every command shares: the console, location options, and error handling.

Exit codes: 0 success, 1 failure (a gate failed, a step failed, a location could not be reached),
2 bad usage or bad input (with a message naming the file or location, the field and the fix).

Errors print as one message, never a traceback: the traceback of a runtime failure or of an
unexpected error goes to a log file (``READMIT_LOG_DIR``, default ``<temp dir>/readmit``) whose
path is printed, and to the screen with ``readmit --debug``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from readmit.errors import ReadmitError
from readmit.pipeline import summarize


def console() -> Console:
    """Standard output, as a console made now: its width (the terminal's, or ``COLUMNS``) and its
    colours are those of this moment, not of the moment the CLI was imported (no work at import
    time; a test runner or a pager may change the environment between the two)."""
    return Console()


def err_console() -> Console:
    """Standard error, made now like :func:`console`."""
    return Console(stderr=True)


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


DEBUG_ENV = "READMIT_DEBUG"  # set by --debug, so step processes started by a run inherit it
LOG_DIR_ENV = "READMIT_LOG_DIR"


def set_debug(on: bool) -> None:
    if on:
        os.environ[DEBUG_ENV] = "1"


def debug() -> bool:
    return os.environ.get(DEBUG_ENV) == "1"


class _ConsoleLog(logging.Handler):
    """readmit's warnings (an S3 call being retried, say) on stderr, above any progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        err_console().print(f"[yellow]{escape(record.getMessage())}[/]", highlight=False, soft_wrap=True)


def show_warnings() -> None:
    """Send the ``readmit`` loggers' warnings to the console (once per process)."""
    logger = logging.getLogger("readmit")
    if not any(isinstance(h, _ConsoleLog) for h in logger.handlers):
        logger.addHandler(_ConsoleLog(logging.WARNING))
        logger.setLevel(logging.INFO)


def write_log(exc: BaseException) -> Path | None:
    """Write the command line and the full traceback of ``exc`` to a new log file; its path."""
    folder = Path(os.environ.get(LOG_DIR_ENV) or Path(tempfile.gettempdir()) / "readmit")
    path = folder / f"readmit-error-{datetime.now():%Y%m%dT%H%M%S}-{os.getpid()}.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(f"command: {' '.join(sys.argv)}\nat: {datetime.now().isoformat()}\n\n"
                        + "".join(traceback.format_exception(exc)))
    except OSError:
        return None
    return path


def _print_error(text: str) -> None:
    # The message is text, not markup: "file.zip [dataset_diabetes/diabetic_data.csv]" or
    # "[70-80)" must print as written (and "[/x]" must not crash the error path).
    err_console().print(f"[bold red]error:[/] {escape(text)}", highlight=False, markup=True, soft_wrap=True)


def handle_errors(func: F) -> F:
    """Turn every error into one clear message and its exit code (no traceback unless --debug).

    readmit's deliberate errors print as they are (exit 1 or 2); a runtime failure caused by
    another error (S3 down, disk full) also names the log file with the full traceback. Any
    other exception is a bug: one line, the log file, and "rerun with --debug" (exit 1).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.TyperException):
            # A deliberate exit (a failed gate's exit 1), Ctrl-C, or a usage error: typer's own
            # way out, not a bug. typer >= 0.29 no longer builds on click, so click's classes
            # are neither installed nor what typer raises.
            raise
        except ReadmitError as exc:
            log = write_log(exc) if exc.exit_code == 1 and exc.__cause__ is not None else None
            if debug():
                traceback.print_exception(exc, file=sys.stderr)
            _print_error(str(exc))
            if log:
                err_console().print(f"(details: {log})", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except Exception as exc:
            log = write_log(exc)
            if debug():
                traceback.print_exception(exc, file=sys.stderr)
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            _print_error(f"unexpected {type(exc).__name__}: {first}")
            err_console().print(
                f"This is not a known failure (a bug?). Full traceback: {log or 'could not be written'}; "
                "rerun with --debug to see it here.", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def month_flag(value: str | None) -> str | None:
    """A month option's check (``--start``, ``--end``, ``--month``): YYYY-MM, or a usage error
    that names the flag (exit 2)."""
    from readmit.pipeline import check_month

    if value is None:
        return None
    try:
        return check_month(value)
    except ReadmitError:
        raise typer.BadParameter(f"{value!r} is not a month: write YYYY-MM, for example 2005-03") from None


def hide_flag_types() -> None:
    """Help without ``<bool>`` beside each flag (``--json``, ``--help``): a flag takes no value.

    typer 0.29 prints every option's type, flags included, and has no setting for it; this
    makes its help printer show no type for a boolean flag. Called once, where the app is built.
    """
    from typer.core import TyperOption

    # typer's own printer method, not a public API: where a typer release renames it, help keeps
    # showing the types (tests/cli/test_help.py fails then) instead of the CLI failing to start.
    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "_readmit", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if getattr(self, "is_bool_flag", False) else shown(self, ctx)

    display_type_rich._readmit = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


@contextmanager
def progress_bars(*columns: Any, quiet: bool = False) -> Iterator[Any]:
    """Rich progress lines on stderr (none when ``quiet``, e.g. with --json) that vanish when the
    work fails: the error message is then the last thing on the screen, not a stale ``bronze 0/?``."""
    from rich.progress import Progress

    with Progress(*columns, console=err_console(), transient=quiet, disable=quiet) as bar:
        try:
            yield bar
        except BaseException:
            bar.live.transient = True
            raise


def print_json(obj: Any) -> None:
    """``obj`` as JSON on stdout, made plain as every JSON readmit writes (``pipeline.summarize``)."""
    sys.stdout.write(json.dumps(summarize(obj), indent=2, allow_nan=False) + "\n")
