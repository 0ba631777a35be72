"""``readmit report``: one self-contained HTML page of the data, the models and their use."""

from __future__ import annotations

from rich import box
from rich.table import Table

from readmit import pipeline
from readmit.cli.common import (
    ConfigOpt,
    DatamartOpt,
    JsonOpt,
    RegistryOpt,
    console,
    err_console,
    handle_errors,
    print_json,
)
from readmit.config import load_settings


@handle_errors
def report(
    config: ConfigOpt = None,
    datamart: DatamartOpt = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the HTML report (offline, one file) under {registry}/reports/ and print where it is."""
    settings = load_settings(config, datamart=datamart, registry=registry)

    def progress(message: str) -> None:
        err_console().print(f"[dim]report: {message}[/]", highlight=False, soft_wrap=True)

    result = pipeline.build_report(settings, progress=None if as_json else progress)
    if as_json:
        print_json(result)
        return
    table = Table(title="Report sections", box=box.SIMPLE_HEAD)
    table.add_column("Section")
    table.add_column("Status")
    for section, status in result["sections"].items():
        table.add_row(section, {"shown": "[green]shown[/]", "partial": "[yellow]shown, some inputs missing[/]"}
                      .get(status, "[yellow]inputs missing[/]"))
    console().print(table)
    for note in result["notes"]:
        err_console().print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    console().print(f"Report: {result['path']} ({result['bytes'] / 1e6:.2f} MB, {result['seconds']:.1f} s)",
                  highlight=False, soft_wrap=True)
    console().print(f"Latest: {result['latest']}", highlight=False, soft_wrap=True)


def register(app) -> None:
    app.command("report")(report)
