"""``readmit check | train | compare | registry list | registry show | registry gc``."""

from __future__ import annotations

import sys
from datetime import date
from typing import Annotated, Any

import typer
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
from readmit.config import load_settings, resolve_windows
from readmit.errors import ConfigError, ReadmitInputError

registry_app = typer.Typer(help="Inspect the model registry.", no_args_is_help=True)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


# -- check ---------------------------------------------------------------------------------


@handle_errors
def check(
    config: ConfigOpt = None,
    datamart: DatamartOpt = None,
    registry: RegistryOpt = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Date labels must be mature by (YYYY-MM-DD). Default: today."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the pre-training gates; exit 1 naming the first failed gate and its fix."""
    as_of_date = None
    if as_of:
        try:
            as_of_date = date.fromisoformat(as_of)
        except ValueError:
            raise ReadmitInputError(f"invalid --as-of {as_of!r}", fix="write the date as YYYY-MM-DD") from None
    try:
        settings = load_settings(config, datamart=datamart, registry=registry)
    except ConfigError as exc:
        # The config itself is the failed gate; the others cannot run without it.
        results = pipeline.invalid_config_results(exc)
    else:
        results = pipeline.run_checks(resolve_windows(settings, as_of_date), as_of=as_of_date)
    failed = [r for r in results if not r.passed]
    if as_json:
        print_json({"passed": not failed, "checks": [r.as_dict() for r in results]})
    else:
        table = Table(title="Pre-training checks")
        table.add_column("Gate")
        table.add_column("Result")
        table.add_column("Reason", overflow="fold")
        for r in results:
            status = "[green]pass[/]" if r.passed else (
                "[yellow]skipped[/]" if r.details.get("skipped") else "[red]FAIL[/]")
            table.add_row(r.name, status, r.reason)
        console().print(table)
    if failed:
        first = failed[0]
        err_console().print(f"[bold red]gate {first.name} failed:[/] {first.reason}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


# -- train ---------------------------------------------------------------------------------


def _summary(meta: dict[str, Any]) -> dict[str, Any]:
    perf = meta.get("performance", {})
    return {
        "algorithm": meta.get("algorithm"),
        "version": meta.get("version"),
        "test_auc_roc": perf.get("test", {}).get("auc_roc"),
        "oot_auc_roc": perf.get("oot", {}).get("auc_roc"),
        "cv_score": (meta.get("cv") or {}).get("best_mean_score"),
        "cv_scoring": (meta.get("cv") or {}).get("scoring"),
        "test_auc_ci": ((perf.get("test", {}).get("ci") or {}).get("auc_roc")),
        "oot_auc_ci": ((perf.get("oot", {}).get("ci") or {}).get("auc_roc")),
        "oot_brier": perf.get("oot", {}).get("brier"),
        "oot_observed_expected": (perf.get("oot", {}).get("calibration") or {}).get("observed_expected"),
        "oot_slope": (perf.get("oot", {}).get("calibration") or {}).get("slope"),
        "threshold": (meta.get("threshold") or {}).get("value"),
        "training_seconds": meta.get("training_seconds"),
        "artifact": (meta.get("paths") or {}).get("artifact"),
        "metadata": (meta.get("paths") or {}).get("metadata"),
        "warnings": meta.get("warnings", []),
    }


@handle_errors
def train(
    algorithm: Annotated[
        list[str] | None,
        typer.Option("--algorithm", "-a", help="Algorithm to train (repeatable). Default: every configured one."),
    ] = None,
    config: ConfigOpt = None,
    datamart: DatamartOpt = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Tune, evaluate and register models, one algorithm after another."""
    settings = load_settings(config, datamart=datamart, registry=registry)
    pipeline.preflight(settings, registry=True)
    chosen = algorithm or list(settings.config.training_config.algorithms)

    def progress(message: str) -> None:
        err_console().print(f"[dim]{message}[/]", highlight=False, soft_wrap=True)

    results = pipeline.train(settings, chosen, progress=progress)
    rows = [_summary(m) for m in results]
    if as_json:
        print_json(rows)
        return
    table = Table(title="Trained models (ROC-AUC with 95% patient-bootstrap CI; calibration on OOT)",
                  box=box.SIMPLE_HEAD)
    for col in ("Algorithm", "Version", "CV", "Test AUC", "OOT AUC", "OOT Brier", "O/E", "Slope", "Secs"):
        table.add_column(col, overflow="fold", no_wrap=col == "Algorithm")
    for r in rows:
        table.add_row(r["algorithm"], r["version"], _fmt(r["cv_score"]), with_ci(r["test_auc_roc"], r["test_auc_ci"]),
                      with_ci(r["oot_auc_roc"], r["oot_auc_ci"]), _fmt(r["oot_brier"], 4),
                      _fmt(r["oot_observed_expected"], 2), _fmt(r["oot_slope"], 2), _fmt(r["training_seconds"], 1))
    console().print(table)
    console().print(f"Registered in {settings.registry_uri}", highlight=False, soft_wrap=True)
    for r in rows:
        for warning in r["warnings"]:
            err_console().print(f"[bold yellow]warning ({r['algorithm']}):[/] {warning}", highlight=False,
                              soft_wrap=True)


# -- compare -------------------------------------------------------------------------------


def with_ci(value: Any, ci: Any, digits: int = 3) -> str:
    """``0.680`` over ``(0.671-0.689)``; the value alone when there is no interval (older metadata)."""
    if value is None:
        return "-"
    text = f"{value:.{digits}f}"
    return text + (f"\n({ci[0]:.{digits}f}-{ci[1]:.{digits}f})" if ci else "")


def comparison_table(comparison: dict[str, Any]) -> Table:
    """Each compared model's figures: ROC-AUC with its 95% CI on test and out-of-time, and the
    out-of-time calibration (Brier beside the prevalence baseline, observed/expected, slope) and
    ROC-AUC on patients never seen in training. The recommended model is marked with *."""
    window = comparison.get("selection_window", "oot")
    title = (f"Models (chosen on {'test' if window == 'test' else 'OUT-OF-TIME'} ROC-AUC; * = recommended; "
             "95% CIs resample patients)")
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("algorithm", "version", "test AUC", "OOT AUC", "OOT Brier\n(baseline)", "OOT\nO/E",
                "OOT\nslope", "OOT AUC\nunseen pts", "train\nsecs"):
        table.add_column(col, overflow="fold", no_wrap=col == "algorithm")
    chosen = comparison["recommended"]["algorithm"]
    for c in comparison["candidates"]:
        test, oot = c["test"], c["oot"]
        unseen = (oot.get("unseen_patients") or {}).get("auc_roc")
        brier = _fmt(oot.get("brier"), 4) + (f"\n({oot['brier_baseline']:.4f})" if oot.get("brier_baseline") else "")
        table.add_row(f"{c['algorithm']} *" if c["algorithm"] == chosen else c["algorithm"], str(c["version"]),
                      with_ci(test.get("auc_roc"), (test.get("ci") or {}).get("auc_roc")),
                      with_ci(oot.get("auc_roc"), (oot.get("ci") or {}).get("auc_roc")), brier,
                      _fmt(oot.get("observed_expected"), 2), _fmt(oot.get("slope"), 2), _fmt(unseen),
                      _fmt(c.get("training_seconds"), 0),
                      style="bold green" if c["algorithm"] == chosen else None)
    return table


@handle_errors
def compare(
    config: ConfigOpt = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare the latest model of each configured algorithm and recommend one."""
    settings = load_settings(config, registry=registry)
    result = pipeline.compare_models(settings)
    if as_json:
        print_json(result)
        return
    console().print(comparison_table(result))
    rec = result["recommended"]["algorithm"]
    for n in result.get("not_comparable", []):
        err_console().print(f"[yellow]not compared {n['algorithm']} {n['version']}:[/] {n['reason']}",
                          highlight=False, soft_wrap=True)
    for s in result["skipped"]:
        err_console().print(f"[yellow]skipped {s['algorithm']} (not trained):[/] {s['reason']}", highlight=False,
                          soft_wrap=True)
    for f in result.get("fallbacks", []):
        err_console().print(f"[bold yellow]warning ({f['algorithm']}):[/] {f['reason']}", highlight=False,
                          soft_wrap=True)
    console().print(f"Recommended: [bold]{rec}[/] {result['recommended']['version']}. {result['recommended']['reason']}",
                  highlight=False, soft_wrap=True)
    console().print(f"Written to {result['path']}", highlight=False, soft_wrap=True)


# -- registry ------------------------------------------------------------------------------


def _registry(config: str | None, registry: str | None):
    return pipeline.Registry.for_settings(load_settings(config, registry=registry))


@registry_app.command("list")
@handle_errors
def registry_list(config: ConfigOpt = None, registry: RegistryOpt = None, as_json: JsonOpt = False) -> None:
    """Every stored model version, oldest first."""
    reg = _registry(config, registry)
    rows = reg.list_models()
    if as_json:
        print_json(rows)
        return
    table = Table(title="Registered models (ROC-AUC)", box=box.SIMPLE_HEAD)
    for col in ("Algorithm", "Version", "Test", "OOT", "Latest"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        table.add_row(r["algorithm"], r["version"], _fmt(r.get("test_auc_roc")), _fmt(r.get("oot_auc_roc")),
                      "yes" if r.get("latest") else "")
    console().print(table)
    console().print(f"Registry: {reg.location('')}", highlight=False, soft_wrap=True)
    for r in rows:
        if r.get("error"):
            err_console().print(f"[bold yellow]unusable {r['algorithm']} v{r['version']}:[/] {r['error']}",
                              highlight=False, soft_wrap=True)
    if not rows:
        err_console().print("no models yet: train one with `readmit train`")


@registry_app.command("show")
@handle_errors
def registry_show(
    version: Annotated[str, typer.Argument(help="A version (20250101_120000), ALGORITHM_vVERSION, "
                                                "or an algorithm name for its latest model.")],
    config: ConfigOpt = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
    card: Annotated[bool, typer.Option("--card", help="Print the version's model card (markdown; written "
                                                      "first if it has none).")] = False,
    datamart: DatamartOpt = None,
) -> None:
    """The metadata of one model version, or its model card."""
    if card:
        result = pipeline.model_card(load_settings(config, datamart=datamart, registry=registry), version)
        if as_json:
            print_json(result)
        else:
            sys.stdout.write(result["markdown"])
            err_console().print(f"model card: {result['location']}", highlight=False, soft_wrap=True)
        return
    meta = _registry(config, registry).metadata(version)
    if as_json:
        print_json(meta)
        return
    perf = meta.get("performance", {})
    table = Table(title=f"{meta.get('algorithm')} v{meta.get('version')}")
    table.add_column("Metric")
    table.add_column("Test")
    table.add_column("OOT")
    for metric in ("accuracy", "precision", "recall", "f1", "auc_roc", "pr_auc", "brier", "log_loss", "gini"):
        table.add_row(metric, _fmt(perf.get("test", {}).get(metric), 4), _fmt(perf.get("oot", {}).get(metric), 4))
    console().print(table)
    for key in ("training_date", "training_samples", "test_samples", "oot_samples", "feature_count",
                "excluded_death_hospice", "best_params", "threshold", "training_seconds", "git_revision"):
        console().print(f"{key}: {meta.get(key)}", highlight=False, soft_wrap=True)
    console().print(f"artifact: {meta.get('paths', {}).get('artifact')} (sha256 {meta['artifact']['sha256']}"
                  f"{', signed' if meta.get('signature') else ''})", highlight=False, soft_wrap=True)


@registry_app.command("gc")
@handle_errors
def registry_gc(
    older_than: Annotated[float, typer.Option(
        "--older-than", min=0.0,
        help="Remove temporaries older than this many hours (younger ones may belong to a running save).",
    )] = 1.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be removed.")] = False,
    config: ConfigOpt = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove temporaries left by killed runs and list orphaned files; never touches a complete version."""
    settings = load_settings(config, registry=registry)
    result = pipeline.Registry.for_settings(settings).gc(older_than_seconds=older_than * 3600, dry_run=dry_run)
    if as_json:
        print_json(result)
        return
    verb = "would remove" if dry_run else "removed"
    for path in result["temporaries"]:
        console().print(f"{verb} {path}", highlight=False, soft_wrap=True)
    for orphan in result["orphans"]:
        console().print(f"orphan ({orphan['problem']}): {orphan['file']}", highlight=False, soft_wrap=True)
    console().print(
        f"{verb} {len(result['temporaries'])} temporary file(s), "
        f"{len(result['temporaries_too_young'])} younger than {older_than:g}h kept, "
        f"{len(result['orphans'])} orphan(s) listed in {result['registry']}",
        highlight=False, soft_wrap=True)
    if result["orphans"]:
        err_console().print("Orphans are kept: a save may still be running, or a crashed one left them. Check "
                          "`readmit registry list`, then delete them by hand or retrain.", highlight=False,
                          soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("check")(check)
    app.command("train")(train)
    app.command("compare")(compare)
    app.add_typer(registry_app, name="registry")
