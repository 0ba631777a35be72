"""``readmit config validate|schema|show``."""

from __future__ import annotations

from typing import Annotated

import typer

from readmit.cli.common import console, handle_errors, print_json
from readmit.config import config_schema, default_config_uri, load_config

config_app = typer.Typer(help="Validate and inspect the configuration.", no_args_is_help=True)


@config_app.command("validate")
@handle_errors
def validate(
    path: Annotated[str | None, typer.Argument(help="Config file (local or s3://). Default: READMIT_CONFIG or conf/model_config.json.")] = None,
) -> None:
    """Validate a config file; list every problem with its JSON path (exit 2 when invalid)."""
    uri = path or default_config_uri()
    cfg = load_config(uri)
    splits = cfg.temporal_splits
    console.print(f"[green]valid[/]: {uri}")
    for name in ("train", "test", "oot"):
        w = getattr(splits, name)
        console.print(f"  {name:5s} {w.start_date} .. {w.end_date}")
    console.print(f"  algorithms: {', '.join(cfg.training_config.algorithms)}")


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
