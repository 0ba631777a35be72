"""``readmit promote | predict | registry aliases | registry history``.

``promote`` exits 0 when the candidate is promoted (or already champion) or rolled back, 1 when
the rules reject it (the decision is recorded either way), 2 on bad input. ``promote --candidate
VERSION --as challenger`` names the challenger (no rules; an event records who and why), exit 0.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

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
    month_flag,
    print_json,
)
from readmit.cli.training_cmd import registry_app
from readmit.config import load_settings
from readmit.errors import ReadmitInputError


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _when(iso: str | None) -> str:
    return (iso or "")[:19].replace("T", " ")


def _model(pointer: dict[str, Any] | None) -> str:
    return "-" if not pointer else f"{pointer['algorithm']} v{pointer['version']}"


# -- promote -----------------------------------------------------------------------------------


class PromoteAs(StrEnum):
    champion = "champion"
    challenger = "challenger"


@handle_errors
def promote(
    candidate: Annotated[str | None, typer.Option(
        "--candidate", help="Version to consider (VERSION or ALGORITHM_vVERSION). Default: per "
                            "inference_config.model_selection, the recommended model of the latest comparison.")] = None,
    as_alias: Annotated[PromoteAs, typer.Option(
        "--as", help="champion: the rules decide. challenger: make --candidate the challenger an A/B test "
                     "scores against the champion (no rules; recorded with --reason).")] = PromoteAs.champion,
    force: Annotated[bool, typer.Option("--force", help="Promote even if rules fail (needs --reason; recorded as forced).")] = False,
    reason: Annotated[str | None, typer.Option(
        "--reason", help="Why (required with --force; recorded). With --as challenger, default: "
                         "'named the challenger by hand'.")] = None,
    rollback: Annotated[bool, typer.Option("--rollback", help="Restore the previous champion instead.")] = False,
    config: ConfigOpt = None,
    datamart: DatamartOpt = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make the candidate champion if the written rules (governance_config) hold; name the challenger; or roll back."""
    settings = load_settings(config, datamart=datamart, registry=registry)
    if as_alias is PromoteAs.challenger:
        if rollback or force:
            raise ReadmitInputError("--as challenger takes no --rollback or --force (no rules decide a challenger)",
                                    fix="drop them")
        if not candidate:
            raise ReadmitInputError("--as challenger needs --candidate VERSION",
                                    fix="name the version (`readmit registry list`): "
                                        "readmit promote --candidate VERSION --as challenger")
        result = pipeline.name_challenger(settings, candidate, reason=reason)
        if as_json:
            print_json(result)
            return
        if result["decision"] == "UNCHANGED":
            console().print(f"[bold]UNCHANGED[/]: {result['reason']}", highlight=False, soft_wrap=True)
            return
        console().print(f"[bold]CHALLENGER SET[/]: challenger {_model(result['from'])} -> {_model(result['to'])} "
                      f"by {result['by']}: {result['reason']}", highlight=False, soft_wrap=True)
        console().print(f"event: {result['event']}", highlight=False, soft_wrap=True)
        for warning in result["warnings"]:
            err_console().print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
        if not settings.config.inference_config.ab_test.enabled:
            err_console().print("inference_config.ab_test is disabled: `readmit predict` scores with the champion "
                              "only until it is enabled", highlight=False, soft_wrap=True)
        return
    if rollback:
        if candidate or force:
            raise ReadmitInputError("--rollback takes no --candidate or --force", fix="drop them")
        result = pipeline.rollback(settings, reason=reason)
        if as_json:
            print_json(result)
            return
        console().print(f"[bold]ROLLED BACK[/]: champion {_model(result['from'])} -> {_model(result['to'])}",
                      highlight=False, soft_wrap=True)
        console().print(f"event: {result['event']}", highlight=False, soft_wrap=True)
        return
    decision = pipeline.promote(settings, candidate=candidate, force=force, reason=reason)
    if as_json:
        print_json(decision)
    else:
        _print_decision(decision)
    if decision["decision"] == "REJECTED":
        champion = decision.get("champion")
        cand = decision["candidate"]
        err_console().print(
            f"not promoted: {'the champion stays ' + _model(champion) if champion else 'there is still no champion'}. "
            "Fix: improve the candidate (retrain, more data), A/B test it against the champion "
            f"(readmit promote --candidate {cand['algorithm']}_v{cand['version']} --as challenger), or promote "
            f"it anyway with a recorded reason: readmit promote --candidate {cand['algorithm']}_v{cand['version']} "
            "--force --reason '...'",
            highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _print_decision(decision: dict[str, Any]) -> None:
    cand, champ = decision["candidate"], decision.get("champion")
    if decision["decision"] == "UNCHANGED":
        console().print(f"[bold]UNCHANGED[/]: {decision['reason']}", highlight=False)
        return
    window = decision["evaluation_window"]
    console().print(f"evaluation window: {window['kind']} {window['start']}..{window['end']} "
                  f"({window['rows']} rows, {window['positives']} positives)", highlight=False)
    table = Table(title="candidate vs champion, scored afresh", box=box.SIMPLE_HEAD)
    table.add_column("", no_wrap=True)
    table.add_column("model", overflow="fold")
    for col in ("ROC-AUC", "Brier", "mean risk", "observed"):
        table.add_column(col, no_wrap=True, justify="right")
    for name, m in (("candidate", cand), ("champion", champ)):
        if m:
            table.add_row(name, _model(m), _num(m["auc_roc"]), _num(m["brier"]), _num(m["mean_risk"]),
                          _num(m["observed_rate"]))
        else:
            table.add_row(name, "(none yet)", "-", "-", "-", "-")
    console().print(table)
    rules = Table(title="rules", box=box.SIMPLE_HEAD)
    for col in ("rule", "value", "limit", "verdict"):
        rules.add_column(col, no_wrap=True)
    rules.add_column("detail", overflow="fold")
    for r in decision["rules"]:
        rules.add_row(r["rule"], _num(r["value"]), _num(r["limit"]),
                      "[green]pass[/]" if r["passed"] else "[red]FAIL[/]", r["detail"])
    console().print(rules)
    colour = "green" if decision["decision"] == "PROMOTED" else "red"
    forced = " (FORCED)" if decision.get("forced") else ""
    console().print(f"[bold {colour}]{decision['decision']}{forced}[/]: {_model(cand)}. {decision['reason']}",
                  highlight=False, soft_wrap=True)
    console().print(f"decision: {decision['path']}", highlight=False, soft_wrap=True)


# -- predict -----------------------------------------------------------------------------------


@handle_errors
def predict(
    month: Annotated[str | None, typer.Option("--month", callback=month_flag, help="One month to score, YYYY-MM.")] = None,
    start: Annotated[str | None, typer.Option("--start", callback=month_flag, help="First month to score, YYYY-MM.")] = None,
    end: Annotated[str | None, typer.Option("--end", callback=month_flag, help="Last month to score, YYYY-MM.")] = None,
    alias: Annotated[Literal["champion", "challenger"] | None, typer.Option(
        "--alias", help="The alias whose model scores (default: champion).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="A registry version instead of an alias.")] = None,
    engine: Annotated[Literal["polars", "duckdb", "spark"] | None, typer.Option(
        "--engine", help="spark: score on Spark's executors (the session from SPARK_REMOTE or data_config.spark); "
                         "polars or duckdb: here. Default: data_config.engine.")] = None,
    config: ConfigOpt = None,
    datamart: DatamartOpt = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score gold months into gold/model_predictions (default: the latest gold month)."""
    if month and (start or end):
        raise ReadmitInputError("give --month or --start/--end, not both", fix="drop one of them")
    settings = load_settings(config, datamart=datamart, registry=registry)

    def progress(message: str) -> None:
        if not as_json:
            err_console().print(f"[dim]{message}[/]", highlight=False)

    summary = pipeline.predict(settings, month or start, month or end, alias=alias, version=model, engine=engine,
                               progress=progress).as_dict()
    if as_json:
        print_json(summary)
        return
    for m in summary["models"]:
        console().print(f"{m['arm']}: {m['algorithm']} v{m['version']} (alias {m['alias'] or '-'}, threshold "
                      f"{m['threshold']:.4f}, reasons {m['reasons']})", highlight=False)
    if summary["ab_test"]:
        t = summary["ab_test"]
        console().print(f"A/B test: salt {t['salt']!r}, challenger share {t['challenger_share']}, since "
                      f"{t['started_at']}", highlight=False)
    table = Table(title="predictions", box=box.SIMPLE_HEAD)
    for col in ("month", "scored", "excluded", "mean risk", "flagged", "unseen cat."):
        table.add_column(col, justify="right", no_wrap=True)
    for m in summary["months"]:
        table.add_row(m["month"], str(m["scored"]), str(m["excluded_death_hospice"]), _num(m["mean_risk"]),
                      str(m["flagged"]), str(sum(m["unseen_categories"].values())))
    console().print(table)
    console().print(f"{summary['scored']} rows scored (mean risk {_num(summary['mean_risk'])}, {summary['flagged']} "
                  f"flagged); {summary['excluded_death_hospice']} death/hospice encounters left out",
                  highlight=False)
    if summary["arms"] and len(summary["arms"]) > 1:
        console().print("arms: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["arms"].items())), highlight=False)
    if summary["unseen_categories"]:
        console().print("categories never seen in training (scored): "
                      + ", ".join(f"{k} {v}" for k, v in summary["unseen_categories"].items()), highlight=False)
    console().print(f"written to {summary['table']} (scored by {summary['engine']})", highlight=False, soft_wrap=True)


# -- registry aliases / history ----------------------------------------------------------------


@registry_app.command("aliases")
@handle_errors
def registry_aliases(config: ConfigOpt = None, registry: RegistryOpt = None, as_json: JsonOpt = False) -> None:
    """The champion and challenger aliases and the versions they point at."""
    found = pipeline.get_aliases(pipeline.Registry.for_settings(load_settings(config, registry=registry)))
    if as_json:
        print_json(found)
        return
    for name, record in found.items():
        if record is None:
            console().print(f"{name:<11} (not set)", highlight=False)
        else:
            console().print(f"{name:<11} {_model(record)}  (set {_when(record.get('set_at'))} by {record.get('by')}: "
                          f"{record.get('reason')})", highlight=False, soft_wrap=True)


@registry_app.command("history")
@handle_errors
def registry_history(config: ConfigOpt = None, registry: RegistryOpt = None, as_json: JsonOpt = False) -> None:
    """Every alias change (set, promotion, rollback), oldest first."""
    events = pipeline.alias_history(pipeline.Registry.for_settings(load_settings(config, registry=registry)))
    if as_json:
        print_json(events)
        return
    for e in events:
        console().print(f"{_when(e.get('at'))}  {e.get('event'):<9}  {e.get('alias'):<10}  {_model(e.get('from'))} -> "
                      f"{_model(e.get('to'))}  by {e.get('by')}: {e.get('reason')}", highlight=False, soft_wrap=True)
    if not events:
        err_console().print("no alias changes yet: `readmit promote` sets the first champion")


def register(app: typer.Typer) -> None:
    app.command("promote")(promote)
    app.command("predict")(predict)
