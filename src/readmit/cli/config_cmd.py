"""``readmit config validate|translate|schema|show``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from readmit.cli.common import console, err_console, handle_errors, print_json
from readmit.config import (
    KeyNote,
    config_schema,
    default_config_uri,
    load_config,
    read_config,
    read_config_text,
)

config_app = typer.Typer(help="Validate and inspect the configuration.", no_args_is_help=True)


@config_app.command("validate")
@handle_errors
def validate(
    path: Annotated[str | None, typer.Argument(help="Config file (local or s3://). Default: READMIT_CONFIG or conf/model_config.json.")] = None,
) -> None:
    """Validate a config file; list every problem with its JSON path (exit 2 when invalid).

    A file with the reference project's keys is valid too: each of them is listed with what it
    became (readmit's own key, or what readmit does instead and why).
    """
    uri = path or default_config_uri()
    cfg, _, notes = read_config(read_config_text(uri), source=uri, warn=False)
    splits = cfg.temporal_splits
    console.print(f"[green]valid[/]: {uri}", highlight=False, soft_wrap=True)
    for name in ("train", "test", "oot"):
        w = getattr(splits, name)
        console.print(f"  {name:5s} {w.start_date} .. {w.end_date}" + (f"  ({w.description})" if w.description else ""),
                      highlight=False, soft_wrap=True)
    console.print(f"  algorithms: {', '.join(cfg.training_config.algorithms)}", highlight=False)
    _print_notes(notes)


def _print_notes(notes: list[KeyNote]) -> None:
    if not notes:
        return
    followed = sum(not n.warning for n in notes)
    console.print(f"reference project keys: {followed} translated, {len(notes) - followed} not followed "
                  "(`readmit config translate` writes readmit's own keys):", highlight=False)
    for n in notes:
        mark = "[yellow]warning[/] " if n.warning else ""
        console.print(f"  {mark}{n.key} -> {n.became}", highlight=False, soft_wrap=True)


@config_app.command("translate")
@handle_errors
def translate(
    path: Annotated[str, typer.Argument(help="Config file with the reference project's keys (local or s3://).")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the result here (default: print it).")] = None,
) -> None:
    """Write the readmit-native equivalent of a config file (the reference project's keys translated).

    Keys readmit does not follow are dropped, each with one warning saying why; the result is
    validated before it is written.
    """
    _, native, notes = read_config(read_config_text(path), source=path, warn=False)
    for n in notes:
        if n.warning:
            err_console.print(f"[yellow]warning:[/] {n.key} dropped: {n.became}", highlight=False, soft_wrap=True)
    text = json.dumps(native, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    out.write_text(text)
    console.print(f"wrote {out} ({sum(not n.warning for n in notes)} key(s) translated, "
                  f"{sum(n.warning for n in notes)} dropped)", highlight=False, soft_wrap=True)


@config_app.command("schema")
def schema() -> None:
    """Print the JSON schema of the config file."""
    print_json(config_schema())


@config_app.command("show")
@handle_errors
def show(
    path: Annotated[str | None, typer.Argument(help="Config file; default as for validate.")] = None,
) -> None:
    """Print the config, as JSON, with every default filled in."""
    uri = path or default_config_uri()
    print_json(load_config(uri).to_json_dict())


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
