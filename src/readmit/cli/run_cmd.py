"""``readmit run`` (the whole pipeline on this machine) and ``readmit step list|run``.

``readmit run`` walks the graphs of :mod:`readmit.pipeline`: medallion -> gates -> training of
every configured algorithm -> comparison -> promotion, then prints the models, the
recommendation and the promotion decision.
``readmit step run STEP_ID`` runs one step of the same graph; it is the container command of
the Airflow DAGs in the ecs and kubernetes modes.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from readmit.cli.common import (
    ConfigOpt,
    DatamartOpt,
    JsonOpt,
    RawOpt,
    RegistryOpt,
    console,
    err_console,
    handle_errors,
    month_flag,
    print_json,
    progress_bars,
)
from readmit.cli.training_cmd import comparison_table
from readmit.config import load_settings
from readmit.errors import ReadmitInputError
from readmit.pipeline import (
    GRAPHS,
    Observer,
    Outcome,
    Step,
    call_step,
    default_parallel,
    find_step,
    graph_steps,
    preflight,
    progress_callback,
    run_graphs,
    summarize,
)

StartOpt = Annotated[str | None, typer.Option("--start", callback=month_flag, help="First month to build, YYYY-MM (default: all).")]
EndOpt = Annotated[str | None, typer.Option("--end", callback=month_flag, help="Last month to build, YYYY-MM (default: all).")]


class _Bars(Observer):
    """One rich progress line per step."""

    def __init__(self, bar: Progress):
        self.bar = bar
        self.rows: dict[str, Any] = {}

    def started(self, step: Step) -> None:
        self.rows[step.id] = self.bar.add_task(step.id, total=None)

    def progress(self, step: Step):
        row = self.rows[step.id]
        return lambda text: self.bar.update(row, description=text)

    def finished(self, outcome: Outcome) -> None:
        mark = "[red]failed[/]" if outcome.status == "failed" else "[green]done[/]"
        self.bar.update(self.rows[outcome.step.id], total=1, completed=1,
                        description=f"{outcome.step.id} {mark}")


# ``readmit run --demo``: synthetic encounters (no download) and a search budget of minutes, not hours.
DEMO_FOLDER = "readmit-demo"
DEMO_ROWS = 20_000
DEMO_CONFIG = {
    "training_config": {"hyperparameter_tuning": {"n_iter": 2, "cv_folds": 3}, "bootstrap": {"resamples": 50}},
}


def prepare_demo(folder: str) -> tuple[str, str]:
    """Write the demo's synthetic CSV and config into ``folder`` (once); return (raw, config) paths."""
    import json
    from pathlib import Path

    from readmit.pipeline import write_synthetic

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    raw, config = root / "synthetic_diabetic_data.csv", root / "model_config.json"
    if not raw.exists():
        write_synthetic(raw, rows=DEMO_ROWS, seed=42)
    config.write_text(json.dumps(DEMO_CONFIG, indent=2) + "\n")
    return str(raw), str(config)


@handle_errors
def run(
    start: StartOpt = None,
    end: EndOpt = None,
    parallel: Annotated[bool | None, typer.Option(
        "--parallel/--no-parallel",
        help="Train the algorithms side by side, one process each (default: only when algorithms x "
             "n_jobs fits in the cores; each search already uses n_jobs cores).",
    )] = None,
    config: ConfigOpt = None,
    raw: RawOpt = None,
    datamart: DatamartOpt = None,
    registry: RegistryOpt = None,
    demo: Annotated[bool, typer.Option(
        "--demo", help=f"No download: {DEMO_ROWS:,} synthetic encounters and a small search budget, all under "
                       f"./{DEMO_FOLDER}/ (a few minutes); builds the report too. Not the UCI data's figures.",
    )] = False,
    report: Annotated[bool, typer.Option(
        "--report", help="Also write the HTML report (what `readmit report` does) and print where it is.",
    )] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run everything: medallion -> gates -> train every algorithm -> compare -> promote. Safe to rerun."""
    if demo:
        if raw or config:
            raise ReadmitInputError("--demo brings its own data and config",
                                    fix="drop --raw/--config, or drop --demo to run on your data")
        datamart = datamart or f"{DEMO_FOLDER}/datamart"
        registry = registry or f"{DEMO_FOLDER}/registry"
        raw, config = prepare_demo(DEMO_FOLDER)
        if not as_json:
            err_console().print(f"demo: {DEMO_ROWS:,} SYNTHETIC encounters (no download; not the UCI data) in {raw}, "
                              f"small search budget ({config})", highlight=False, soft_wrap=True)
        report = True
    settings = load_settings(config, raw=raw, datamart=datamart, registry=registry)
    preflight(settings, datamart=True, registry=True)
    parallel = default_parallel(settings) if parallel is None else parallel
    started = time.perf_counter()
    with progress_bars(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), quiet=as_json) as bar:
        outcomes = run_graphs(settings, params={"start_month": start, "end_month": end},
                              parallel=parallel, observer=_Bars(bar))
    elapsed = time.perf_counter() - started
    failed = next((o for o in outcomes if o.status == "failed"), None)
    comparison = next((o.result for o in outcomes if o.step.id == "compare_models" and o.status == "done"), None)
    promotion = next((o.result for o in outcomes if o.step.id == "promote" and o.status == "done"), None)
    if as_json:
        print_json({
            "datamart": settings.datamart_uri, "registry": settings.registry_uri,
            "parallel": parallel, "seconds": round(elapsed, 2),
            "failed_gate": {"step": failed.step.id, **summarize(failed.result)} if failed else None,
            "recommended": comparison["recommended"] if comparison else None,
            "promotion": summarize(promotion) if promotion else None,
            "steps": [o.as_dict() for o in outcomes],
        })
    else:
        if comparison:
            rec = comparison["recommended"]
            console().print(comparison_table(comparison))
            console().print(f"recommended: [bold]{rec['algorithm']}[/] {rec['version']}: {rec['reason']}",
                          highlight=False)
        if promotion:
            cand = promotion["candidate"]
            console().print(f"champion: {promotion['decision']} {cand['algorithm']} {cand['version']}: "
                          f"{promotion['reason']}", highlight=False)
        console().print(f"datamart: {settings.datamart_uri}  registry: {settings.registry_uri}  "
                      f"({elapsed:.0f}s, training {'in parallel' if parallel else 'one at a time'})",
                        highlight=False, soft_wrap=True)
    if failed:
        _report_gate(failed.step.id, failed.result)
        err_console().print("Nothing after this gate ran; the registry is unchanged.", highlight=False)
        raise typer.Exit(1)
    locations = f"--datamart {settings.datamart_uri} --registry {settings.registry_uri}"
    if report:
        from readmit.pipeline import build_report

        page = build_report(settings)
        if as_json:
            return
        console().print(f"HTML report: {page['latest']}", highlight=False, soft_wrap=True)
    elif not as_json:
        console().print(f"HTML report: `readmit report {locations}` writes it under "
                      f"{settings.registry_uri}/reports/ (or rerun with --report)", highlight=False, soft_wrap=True)
    if demo and not as_json:
        console().print(f"demo done: the figures above come from synthetic data. Next: `readmit predict {locations}`, "
                      "or `readmit run --raw path/to/dataset_diabetes.zip` for the real data.",
                      highlight=False, soft_wrap=True)


def _report_gate(step_id: str, result: Any) -> None:
    """A failed gate on stderr: its step id and its reason (which says how to fix it)."""
    err_console().print(f"[bold red]gate {step_id} failed:[/] {result.reason}", highlight=False)


step_app = typer.Typer(help="The pipeline's steps: list them, run one (what each Airflow task runs).",
                       no_args_is_help=True)


@step_app.command("list")
@handle_errors
def step_list(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """List every step of every graph with its dependencies (for the configured algorithms)."""
    settings = load_settings(config)
    rows = [
        {"graph": name, "step": s.id, "depends_on": list(s.depends_on),
         "kind": "gate" if s.gate else ("heavy" if s.heavy else "light"), "doc": s.doc}
        for name in GRAPHS for s in graph_steps(name, settings)
    ]
    if as_json:
        print_json(rows)
        return
    table = Table(title="pipeline steps (--json for what each does)")
    for col in ("graph", "step", "kind", "depends on"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["graph"], r["step"], r["kind"], ", ".join(r["depends_on"]))
    console().print(table)


@step_app.command("run")
@handle_errors
def step_run(
    step_id: Annotated[str, typer.Argument(metavar="STEP_ID", help="A step id from `readmit step list`.")],
    start: StartOpt = None,
    end: EndOpt = None,
    config: ConfigOpt = None,
    raw: RawOpt = None,
    datamart: DatamartOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """Run one step by id and print its result as JSON; a failed gate exits 1."""
    settings = load_settings(config, raw=raw, datamart=datamart, registry=registry)
    graph, step = find_step(step_id, settings)
    if (start or end) and not graph.month_range:
        raise ReadmitInputError(f"--start/--end do not apply to {step_id}",
                                fix="drop them; only the medallion and inference steps take a month range")
    # Progress lines go to stderr (a container's log); the result alone goes to stdout.
    progress = progress_callback(step, lambda text: err_console().print(text, highlight=False))
    result = call_step(step, settings, start_month=start, end_month=end, progress=progress)
    print_json(summarize(result))
    if getattr(result, "passed", True) is False:
        _report_gate(step_id, result)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.add_typer(step_app, name="step")
