"""``readmit monitor`` and ``readmit ab-report``: is the served model still right?"""

from __future__ import annotations

from datetime import date
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
    handle_errors,
    month_flag,
    print_json,
)
from readmit.config import load_settings
from readmit.errors import ReadmitInputError

AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Date the labels are judged mature on (YYYY-MM-DD). Default: today."),
]
_BAND_STYLE = {"stable": "green", "watch": "yellow", "act": "bold red", None: "dim"}
_ACTION_STYLE = {"keep": "bold green", "watch": "bold yellow", "retrain": "bold red"}


def _as_of(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ReadmitInputError(f"invalid --as-of {value!r}", fix="write the date as YYYY-MM-DD") from None


def _num(value: Any, digits: int = 3, prefix: str = "") -> str:
    return "-" if value is None else f"{prefix}{value:.{digits}f}"


def _banded(value: Any, band: str | None) -> str:
    return f"[{_BAND_STYLE.get(band, 'dim')}]{_num(value)}[/]"


def monitoring_table(record: Any) -> Table:
    """The months of a monitoring record (``readmit.monitoring.record.MonitoringRecord``) as a table."""
    model = record.model
    table = Table(title=f"Monitoring {model.algorithm} v{model.version} ({model.alias}), "
                        f"labels as of {record.as_of}", box=box.SIMPLE_HEAD)
    for col in ("Month", "Rows", "Score PSI", "Worst CSI", "Labels", "ROC-AUC", "PR-AUC", "Brier", "O/E", "Slope",
                "Pos. rate"):
        table.add_column(col, no_wrap=True)
    for m in record.months:
        bands, obs, est = m.bands, m.observed, m.estimated
        worst = f"{_banded(bands.csi_max, bands.csi_max_band)} {bands.csi_max_feature or ''}"
        if obs:
            perf = [_num(obs.auc_roc), _num(obs.pr_auc), _num(obs.brier), _num(obs.observed_expected, 2),
                    _num(obs.slope, 2), _num(obs.positive_rate)]
            labels = "mature"
        elif est:
            perf = [f"[cyan]~{_num(est.auc_roc)}[/]", "-", "-", "-", "-", f"[cyan]~{_num(est.positive_rate)}[/]"]
            labels = "[cyan]estimated[/]"
        else:  # a mature month without a labelled row
            perf, labels = ["-"] * 6, m.labels
        table.add_row(m.month, str(m.rows), _banded(m.score_psi, bands.score_psi), worst, labels, *perf)
    return table


def online_table(online: Any) -> Table:
    """The online source of a monitoring record (the service's answers, by request month) as a table."""
    table = Table(title="Online predictions (readmit serve)", box=box.SIMPLE_HEAD)
    for col in ("Month", "Rows", "Mean risk", "p90", "Flagged", "Bands", "Labelled", "ROC-AUC", "Brier"):
        table.add_column(col, no_wrap=True)
    for m in online.months:
        obs = m.observed
        perf = [_num(obs.auc_roc), _num(obs.brier)] if obs else ["-"] * 2
        table.add_row(m.month, str(m.rows), _num(m.risk_mean), _num(m.risk_p90), _num(m.flag_rate),
                      " ".join(f"{k} {v}" for k, v in m.bands.items()), str(m.labelled), *perf)
    return table


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def feedback_table(feedback: Any) -> Table:
    """Clinician feedback on the CDS Hooks cards of a monitoring record, by risk band, as a table."""
    table = Table(title="Clinician feedback (CDS Hooks cards)", box=box.SIMPLE_HEAD)
    for col in ("Risk band", "Cards", "Feedback", "Accepted", "Overridden", "Accept rate", "Override rate",
                "Override reasons"):
        table.add_column(col, no_wrap=True)
    rows = [*feedback.bands.items(), ("all", feedback)]
    for band, b in rows:
        table.add_row(band, str(b.cards), str(b.with_feedback), str(b.accepted), str(b.overridden),
                      _rate(b.acceptance_rate), _rate(b.override_rate),
                      " ".join(f"{k} {v}" for k, v in b.override_reasons.items()) or "-")
    return table


def print_feedback(feedback: Any) -> None:
    if feedback is None:
        return
    if not feedback.cards:
        console().print(f"feedback: no CDS Hooks card of this model in these months ({feedback.location})",
                      highlight=False, soft_wrap=True)
        return
    console().print(feedback_table(feedback))
    period = (f"cards {feedback.first_card_at[:10]}..{feedback.last_card_at[:10]}"
              + (f", feedback {feedback.first_feedback_at[:10]}..{feedback.last_feedback_at[:10]}"
                 if feedback.first_feedback_at else ", no feedback yet"))
    console().print(f"[dim]{period}; rates over the cards shown; from {feedback.location}; "
                  f"{feedback.info_cards} info card(s) outside the intended use, {feedback.other_models_cards} "
                  f"card(s) of another model, {feedback.feedback_elsewhere} feedback item(s) on cards not "
                  "counted here[/]", highlight=False, soft_wrap=True)


@handle_errors
def monitor(
    start: Annotated[str, typer.Option("--start", callback=month_flag, help="First month (YYYY-MM).")],
    end: Annotated[str, typer.Option("--end", callback=month_flag, help="Last month (YYYY-MM).")],
    as_of: AsOfOpt = None,
    alias: Annotated[Literal["champion", "challenger"], typer.Option(
        "--alias", help="Monitor the model this alias points at.")] = "champion",
    config: ConfigOpt = None,
    datamart: DatamartOpt = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Drift, performance (observed where labels are mature, estimated where not) and a decision."""
    settings = load_settings(config, datamart=datamart, registry=registry)
    record = pipeline.run_monitoring(settings, start_month=start, end_month=end, as_of=_as_of(as_of), alias=alias)
    if as_json:
        print_json(record)
        return
    console().print(monitoring_table(record))
    console().print("[dim]PSI/CSI bands: green stable, yellow watch, red act; ~ = estimated from the calibrated "
                  "risks (labels not mature yet)[/]", highlight=False)
    if record.online is not None and record.online.rows:
        console().print(online_table(record.online))
        console().print(f"[dim]from the audit records in {record.online.location}; {record.online.other_models_rows} "
                      "answered by another model[/]", highlight=False, soft_wrap=True)
    elif record.online is not None:
        console().print(f"online: no answer of this model in {record.online.location} for these months",
                      highlight=False, soft_wrap=True)
    print_feedback(record.feedback)
    without = record.summary.months_without_predictions
    if without:
        console().print(f"no predictions for: {', '.join(without)}", highlight=False)
    decision = record.decision
    style = _ACTION_STYLE[decision.action]
    console().print(f"Decision: [{style}]{decision.action.upper()}[/]", highlight=False)
    for reason in decision.reasons:
        console().print(f"  - {reason}", highlight=False, soft_wrap=True)
    console().print(f"Written to {record.path}", highlight=False, soft_wrap=True)


@handle_errors
def ab_report(
    start: Annotated[str | None, typer.Option("--start", callback=month_flag, help="First month (YYYY-MM). Default: the first scored.")] = None,
    end: Annotated[str | None, typer.Option("--end", callback=month_flag, help="Last month (YYYY-MM). Default: the last scored.")] = None,
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    datamart: DatamartOpt = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Champion vs challenger on mature labels, with 95% intervals from a patient-level bootstrap."""
    settings = load_settings(config, datamart=datamart, registry=registry)
    report = pipeline.ab_report(settings, start_month=start, end_month=end, as_of=_as_of(as_of))
    if as_json:
        print_json(report)
        return
    months = report["months"]
    console().print(f"A/B report, mature months {months[0]}..{months[-1]} (labels as of {report['as_of']})",
                  highlight=False)
    arms = Table(box=box.SIMPLE_HEAD)
    for col in ("Arm", "Model", "Patients", "Rows", "Positives"):
        arms.add_column(col, no_wrap=True)
    for arm, s in report["arms"].items():
        arms.add_row(arm, f"{s['algorithm']} v{s['version']}", str(s["patients"]), str(s["rows"]), str(s["positives"]))
    console().print(arms)
    metrics = Table(title="challenger - champion, 95% CI from a patient-level bootstrap", box=box.SIMPLE_HEAD)
    for col in ("Metric", "Champion", "Challenger", "Difference", "95% CI"):
        metrics.add_column(col, no_wrap=True)
    for key, label in (("auc_roc", "ROC-AUC"), ("brier", "Brier (lower is better)"),
                       ("precision", "Flag precision"), ("recall", "Flag recall")):
        d = report["difference"][key]
        metrics.add_row(label, _num(report["arms"]["champion"][key], 4), _num(report["arms"]["challenger"][key], 4),
                        _num(d["value"], 4), f"{_num(d['ci95'][0], 4)} to {_num(d['ci95'][1], 4)}")
    console().print(metrics)
    style = {"challenger better": "bold green", "challenger worse": "bold red"}.get(report["verdict"], "bold yellow")
    console().print(f"Verdict: [{style}]{report['verdict']}[/]. {report['reason']}", highlight=False, soft_wrap=True)
    console().print(f"Written to {report['path']}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor)
    app.command("ab-report")(ab_report)
