"""``readmit data fetch|synth`` and ``readmit medallion``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from readmit import pipeline
from readmit.cli.common import (
    ConfigOpt,
    DatamartOpt,
    JsonOpt,
    console,
    handle_errors,
    month_flag,
    print_json,
    progress_bars,
)
from readmit.config import load_settings

data_app = typer.Typer(help="Get the raw data: the official UCI download or a synthetic file.", no_args_is_help=True)


@data_app.command("fetch")
@handle_errors
def fetch(
    cache_dir: Annotated[Path | None, typer.Option(
        help="Where to keep the download (default: $XDG_CACHE_HOME/readmit, else ~/.cache/readmit).")] = None,
    force: Annotated[bool, typer.Option(help="Download again even when a valid copy is cached.")] = False,
) -> None:
    """Download the official UCI zip, check it is the expected data, and cache it."""
    path = pipeline.fetch_uci(cache_dir, force=force)
    console().print(f"[green]UCI data ready[/]: {path}", highlight=False, soft_wrap=True)


@data_app.command("synth")
@handle_errors
def synth(
    out: Annotated[Path, typer.Option("--out", help="CSV file to write.")] = Path("synthetic_diabetic_data.csv"),
    rows: Annotated[int, typer.Option(help="Number of encounters.", min=1)] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same file).")] = 42,
    with_snapshot: Annotated[bool, typer.Option(help="Add a snapshot_date column, like the reference project's CSV.")] = False,
) -> None:
    """Write a synthetic CSV with the UCI schema and a learnable signal (demos, scale benchmarks)."""
    started = time.perf_counter()
    path = pipeline.write_synthetic(out, rows=rows, seed=seed, with_snapshot=with_snapshot)
    console().print(f"[green]wrote[/] {rows:,} synthetic encounters to {path} in {time.perf_counter() - started:.1f}s",
                    highlight=False, soft_wrap=True)


@data_app.command("check")
@handle_errors
def check(
    file: Annotated[str, typer.Argument(help="The extract to check: a CSV or zip (local or s3://).")],
    diagnosis_codes: Annotated[Literal["auto", "icd9", "icd10"] | None, typer.Option(
        help="icd9, icd10 or auto (default: data_config.diagnosis_codes).")] = None,
    require_labels: Annotated[bool | None, typer.Option(
        "--require-labels/--allow-unlabelled",
        help="A blank readmitted is a bad row (default: data_config.require_labels).")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate an extract against the input contract (docs/input_contract.md); writes nothing.

    Prints rows, months, label coverage, the diagnosis code systems found and the problems with
    their row numbers; exit 2 when a row breaks the contract.
    """
    data = load_settings(config).config.data_config
    dates = data.date_derivation
    found = pipeline.check_extract(
        file, derivation=dates.method, start=dates.start_date, end=dates.end_date,
        diagnosis_codes=diagnosis_codes or data.diagnosis_codes,
        require_labels=data.require_labels if require_labels is None else require_labels)
    if as_json:
        print_json(found.as_dict())
    else:
        _print_check(found)
    if not found.ok:
        raise found.refusal()


def _print_check(found) -> None:
    table = Table(title=f"data check: {found.source}", show_header=False)
    months = list(found.months)
    labelled = f"{found.labelled:,} of {found.rows_ok:,}" + (
        f" ({found.labelled / found.rows_ok:.1%})" if found.rows_ok else "")
    shapes = ", ".join(f"{k} {v:,}" for k, v in found.code_shapes.items() if v)
    for name, value in (
        ("rows", f"{found.rows:,} ({found.rows_ok:,} ok, {found.rows_rejected:,} with problems)"),
        ("dates", "the file's snapshot_date" if found.dates == "input" else "discharge_date (outcomes derived "
         "from the next admission)" if found.dates == "discharge_date" else f"derived ({found.dates})"),
        ("months", f"{len(months)}: {months[0]}..{months[-1]}" if months else "none"),
        ("labelled", labelled),
        ("code systems", f"read as {found.code_system}; codes only one system has: "
         f"{', '.join(found.code_systems) or 'none'}"),
        ("code shapes", shapes or "none"),
        ("absent optional columns", ", ".join(found.absent_columns) or "none"),
    ):
        table.add_row(name, value)
    console().print(table)
    for name, what in found.absent_columns.items():
        console().print(f"  {name} absent: {what}")
    for p in found.problems:
        console().print(f"  row {p['row']}: {p['reason']}", highlight=False)


def _summary_table(results) -> Table:
    table = Table(title="medallion")
    for col in ("layer", "partitions", "range", "rows in", "rows out", "rejected", "duplicates"):
        table.add_column(col, justify="right" if col not in ("layer", "range") else "left")
    for r in results:
        rng = f"{r.partitions[0]}..{r.partitions[-1]}" if r.partitions else "-"
        table.add_row(r.layer, str(len(r.partitions)), rng, f"{r.rows_in:,}", f"{r.rows_out:,}",
                      f"{r.rows_rejected:,}", f"{r.duplicates_removed:,}")
    return table


def medallion(
    layer: Annotated[Literal["bronze", "silver", "gold", "all"], typer.Option(help="The layer to build.")] = "all",
    start: Annotated[str | None, typer.Option(callback=month_flag, help="First month to build, YYYY-MM (default: all).")] = None,
    end: Annotated[str | None, typer.Option(callback=month_flag, help="Last month to build, YYYY-MM (default: all).")] = None,
    quarantine: Annotated[bool | None, typer.Option(
        "--quarantine/--no-quarantine",
        help="Set bad raw rows aside with their reason (under rejected/) instead of refusing the file.")] = None,
    cascade: Annotated[bool, typer.Option(
        "--cascade/--no-cascade",
        help="Rebuild the later gold months whose patient history came from silver months that changed "
        "(a backfill); --no-cascade refuses (exit 2) instead of leaving them stale.")] = True,
    engine: Annotated[Literal["polars", "duckdb", "spark"] | None, typer.Option(
        help="Engine for silver and gold (default: data_config.engine).")] = None,
    diagnosis_codes: Annotated[Literal["auto", "icd9", "icd10"] | None, typer.Option(
        help="The extract's diagnosis codes: icd9, icd10, or auto (decided from codes only one system has; "
        "default: data_config.diagnosis_codes).")] = None,
    require_labels: Annotated[bool | None, typer.Option(
        "--require-labels/--allow-unlabelled",
        help="The extract is historical, every outcome known: a blank readmitted is a bad row "
        "(default: data_config.require_labels; otherwise it is an encounter not known yet).")] = None,
    replace: Annotated[bool, typer.Option(
        "--replace/--no-replace",
        help="An encounter a newer extract brings again replaces the earlier row (default); --no-replace "
        "refuses such an extract (exit 2, nothing written), naming its rows.")] = True,
    config: ConfigOpt = None,
    raw: Annotated[list[str] | None, typer.Option(
        "--raw", help="Raw extract: UCI zip or CSV (local or s3://); repeat it for several extracts, oldest "
        "first (each newer one wins for the encounters it repeats). Env: READMIT_RAW.")] = None,
    datamart: DatamartOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build bronze, silver and gold (feature_store, label_store), month by month; a new extract
    merges into what is there, and only the months it changes are rebuilt."""
    settings = load_settings(config, raw=raw[0] if raw else None, datamart=datamart)
    pipeline.preflight(settings, datamart=True)
    started = time.perf_counter()
    with progress_bars(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), quiet=as_json) as bar:
        tasks: dict[str, Any] = {}

        def progress(layer_name: str, event: str, month: str | None) -> None:
            if event == "start":
                tasks[layer_name] = bar.add_task(f"{layer_name:6s}", total=None)
            elif event == "done":  # the count is known now: "120/120", not "120/?"
                task = next(t for t in bar.tasks if t.id == tasks[layer_name])
                bar.update(task.id, total=max(task.completed, 1), completed=max(task.completed, 1))
            else:
                bar.update(tasks[layer_name], advance=1, description=f"{layer_name:6s} {month}")

        results = pipeline.run_medallion(settings, layers=pipeline.resolve_layers(layer), start_month=start,
                                         end_month=end, quarantine=quarantine, cascade=cascade, engine=engine,
                                         diagnosis_codes=diagnosis_codes, require_labels=require_labels,
                                         raw_paths=[settings.raw_path, *raw[1:]] if raw else None,
                                         no_replace=not replace, progress=progress)
    elapsed = time.perf_counter() - started
    if as_json:
        print_json({"datamart": settings.datamart_uri, "seconds": round(elapsed, 2),
                    "layers": [r.as_dict() for r in results]})
        return
    console().print(_summary_table(results))
    for r in results:
        for note in r.notes:
            console().print(f"  {r.layer}: {note}")
    console().print(f"datamart: {settings.datamart_uri}  ({elapsed:.1f}s)", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
    app.command("medallion")(handle_errors(medallion))
