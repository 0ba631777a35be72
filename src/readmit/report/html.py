"""The report page: nine sections, each with a one-line reading guide, in one self-contained file.

The page is plain HTML and CSS written with the standard library: no script, no web font, no
external stylesheet, every figure an inline ``<svg>`` (see :mod:`readmit.report.plots`). A section
whose input does not exist yet (no predictions, no monitoring record) says so in one line
(``<p class="missing">``) instead of failing. Metrics stored in a model's metadata are printed
from the metadata; curves and per-group figures are computed from scores of the test and
out-of-time windows (:mod:`readmit.report.analysis`).

Machine-readable hooks for tests and scrapers: ``<section data-section=ID>``,
``<figure data-plot=ID>``, ``<td data-metric=NAME>`` in the model table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

import numpy as np

from readmit.config import ReadmitConfig
from readmit.jsonsafe import dumps
from readmit.monitoring.record import FeedbackSource, MonitoringRecord
from readmit.report import analysis, plots
from readmit.report.inputs import RegistryState, label_of

SECTIONS: tuple[tuple[str, str], ...] = (
    ("data", "Data"),
    ("models", "Models"),
    ("usefulness", "Clinical usefulness"),
    ("why", "Why"),
    ("fairness", "Fairness"),
    ("over-time", "Over time"),
    ("feedback", "Clinician feedback"),
    ("governance", "Governance"),
    ("lineage", "Lineage"),
)
FAIRNESS_ATTRIBUTES = ("age_band", "gender", "race")
TOP_FEATURES = 15
TOP_REASONS = 12
TOP_CSI = 4
RECENT_EVENTS = 25

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{background:#17324d;color:#fff;padding:18px 32px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;opacity:.85}nav{background:#fff;border-bottom:1px solid #ddd;padding:8px 32px;position:sticky;top:0}
nav a{margin-right:14px;color:#17324d;text-decoration:none;font-weight:600}
main{padding:8px 32px 40px;max-width:1300px}section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:6px 20px 16px;margin:18px 0}
h2{font-size:19px;margin:12px 0 2px}h3{font-size:15px;margin:16px 0 4px}
.guide{color:#555;font-style:italic;margin:0 0 10px}.missing{color:#8a5a00;background:#fff7e0;padding:6px 10px;border-radius:4px}
.warn{color:#9b1c1c}.ok{color:#1b6e20}figure{margin:10px 0}figure svg{max-width:100%;height:auto}
figcaption{color:#555;font-size:12px}table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{border-bottom:1px solid #e6e6e6;padding:3px 10px;text-align:left;vertical-align:top}th{background:#f3f5f7}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.code{font:11px ui-monospace,monospace;overflow-wrap:anywhere}tr.champion td{background:#eef7ee;font-weight:600}
tr.small td{color:#999}pre{background:#f6f8fa;padding:8px;font-size:11px;max-height:260px;overflow:auto}
.kpi{display:inline-block;margin:4px 18px 8px 0}.kpi b{display:block;font-size:22px}
"""


@dataclass
class ReportData:
    """Everything a report shows, gathered and scored by :func:`readmit.report.build.build_report`."""

    model_name: str
    generated_at: str
    registry_uri: str
    datamart_uri: str
    config: ReadmitConfig  # the typed config: every threshold shown is the one monitoring applies
    splits: dict[str, dict[str, str]]
    date_method: str
    state: RegistryState
    gold_months: Any = None  # polars frame: month, rows, readmissions, rate
    rejected: list[dict[str, Any]] = field(default_factory=list)
    invalid_codes: dict[str, int] = field(default_factory=dict)  # month -> rows quarantined for a code of neither ICD system
    sources: list[dict[str, Any]] = field(default_factory=list)
    scores: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    groups: dict[str, list[Any]] = field(default_factory=dict)  # oot subgroup columns
    importance: dict[str, Any] | None = None  # {"kind": "native"|"permutation", "values": {feature: {mean, std}}}
    predictions: tuple[str, Any] | None = None
    monitoring: MonitoringRecord | None = None
    feedback: FeedbackSource | None = None  # None: the audit trail could not be read (see notes)
    ab_report: dict[str, Any] | None = None
    current_partitions: dict[str, dict[str, str]] | None = None
    current_versions: dict[str, Any] = field(default_factory=dict)
    current_git: str | None = None
    notes: list[str] = field(default_factory=list)  # problems met while gathering, shown in lineage
    card_links: dict[str, str] = field(default_factory=dict)  # label -> model card location

    @property
    def labels(self) -> dict[str, dict[str, Any]]:
        return {label_of(m, self.state.candidates): m for m in self.state.candidates}

    @property
    def champion_label(self) -> str | None:
        champ = self.state.champion
        return None if champ is None else label_of(champ, self.state.candidates)


# -- small HTML pieces ----------------------------------------------------------------------------


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def missing(text: str) -> str:
    return f'<p class="missing">{escape(text)}</p>'


def para(text: str, cls: str = "") -> str:
    return f'<p{f" class={cls!r}" if cls else ""}>{escape(text)}</p>'


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, row_attrs: Sequence[str] | None = None,
          cell_attrs: Sequence[str] | None = None, raw: bool = False) -> str:
    """A table; cells are escaped unless ``raw``; ``cell_attrs[j]`` is added to column j's cells."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        attrs = f" {row_attrs[i]}" if row_attrs and row_attrs[i] else ""
        cells = []
        for j, cell in enumerate(row):
            extra = f" {cell_attrs[j]}" if cell_attrs and cell_attrs[j] else ""
            text = cell if raw and isinstance(cell, str) and cell.startswith("<") else escape(fmt(cell))
            cls = ""
            if isinstance(cell, int | float) and not isinstance(cell, bool):
                cls = ' class="num"'
            elif isinstance(cell, str) and len(cell) > 20 and " " not in cell:  # versions, hashes, files
                cls = ' class="code"'
            cells.append(f"<td{cls}{extra}>{text}</td>")
        body.append(f"<tr{attrs}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(plot_id: str, svg: str, caption: str) -> str:
    return (f'<figure data-plot="{escape(plot_id)}" id="fig-{escape(plot_id)}">{svg}'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def kpis(items: Sequence[tuple[str, Any]]) -> str:
    return "".join(f'<span class="kpi"><b>{escape(fmt(v))}</b>{escape(k)}</span>' for k, v in items)


def _pre(obj: Any) -> str:
    return f"<pre>{escape(dumps(obj))}</pre>"


def _window_months(split: dict[str, str]) -> tuple[str, str]:
    return split["start_date"][:7], split["end_date"][:7]


# -- 1 data ---------------------------------------------------------------------------------------


def data_section(d: ReportData) -> str:
    out = []
    if d.gold_months is None:
        return missing("No gold tables in the datamart yet: run `readmit medallion` (or `readmit run`).")
    g = d.gold_months
    rows, readm = int(g["rows"].sum()), int(g["readmissions"].sum())
    rejected = d.rejected[-1]["rows"] if d.rejected else 0  # the latest bronze run's quarantine file
    out.append(kpis([("encounters in gold", rows), ("months", g.height),
                     ("30-day readmission rate", readm / rows if rows else None),
                     ("raw rows rejected (latest bronze run)", rejected)]))
    windows = {w: _window_months(s) for w, s in d.splits.items()}
    svg = plots.timeline(g["month"].to_list(), g["rows"].to_list(), g["rate"].to_list(), windows)
    out.append(figure("data-timeline", svg, "Encounters (bars) and 30-day readmission rate (red line) per "
                                            "month of snapshot_date; shaded: train, test and out-of-time windows."))
    if d.rejected:
        out.append(table(["quarantine file (one per bronze run, oldest first)", "rows rejected"],
                         [(r["file"], r["rows"]) for r in d.rejected]))
    else:
        out.append(para("No raw row was rejected: no quarantine file under rejected/bronze (without "
                        "quarantine, a bad row stops bronze instead)."))
    if d.invalid_codes:
        out.append(table(["month", "rows quarantined: a diagnosis code of neither ICD-9-CM nor ICD-10-CM"],
                         list(d.invalid_codes.items())))
    champ = d.state.champion
    if champ:
        pos = champ.get("positives") or {}
        sizes = {"train": champ.get("training_samples"), "test": champ.get("test_samples"),
                 "oot": champ.get("oot_samples")}
        excluded = champ.get("excluded_death_hospice_by_window") or {}
        out.append(table(
            ["window", "from", "to", "rows used", "readmitted < 30 d", "death/hospice excluded"],
            [(w, d.splits[w]["start_date"], d.splits[w]["end_date"], sizes.get(w), pos.get(w), excluded.get(w))
             for w in ("train", "test", "oot") if w in d.splits]))
    uci = bool(d.sources) and all(s["uci_original"] for s in d.sources)
    if uci:
        note = (f"Dates are derived: the UCI file has no dates, so snapshot_date is made up from "
                f"encounter_id order ({d.date_method}); months and windows are positions in that order, "
                "not calendar time.")
    else:
        note = (f"snapshot_date comes from the input when it has one; otherwise it is derived "
                f"({d.date_method}) from encounter_id order and the months are positions, not calendar time.")
    out.append(para(note, "warn"))
    return "".join(out)


# -- 2 models -------------------------------------------------------------------------------------


def _ci_text(perf: dict[str, Any], metric: str = "auc_roc") -> str:
    value = perf.get(metric)
    ci = (perf.get("ci") or {}).get(metric)
    text = fmt(value)
    return text + (f" ({ci[0]:.3f}–{ci[1]:.3f})" if ci and value is not None else "")


def _calibration(perf: dict[str, Any], scores: tuple[np.ndarray, np.ndarray] | None) -> tuple[dict[str, Any], bool]:
    """The window's calibration from the metadata, else computed from the scores (flagged False)."""
    cal = perf.get("calibration")
    if isinstance(cal, dict):
        return cal, True
    if scores is None:
        return {}, True
    return analysis.calibration_stats(*scores), False


def models_section(d: ReportData) -> str:
    if not d.state.candidates:
        return missing("No model is registered yet: train one with `readmit train` (or `readmit run`).")
    out = []
    rows, attrs, computed = [], [], False
    metrics = ["model", "version", "test_auc_roc", "oot_auc_roc", "test_pr_auc", "oot_pr_auc", "oot_brier",
               "oot_observed_expected", "oot_calibration_slope", "threshold"]
    for label, meta in d.labels.items():
        perf = meta.get("performance", {})
        test, oot = perf.get("test", {}), perf.get("oot", {})
        cal, stored = _calibration(oot, d.scores.get(label, {}).get("oot"))
        computed |= not stored
        mark = "" if stored else "†"
        rows.append((label + (" ★" if label == d.champion_label else ""), meta.get("version"),
                     _ci_text(test), _ci_text(oot), fmt(test.get("pr_auc")), fmt(oot.get("pr_auc")),
                     _ci_text(oot, "brier"), fmt(cal.get("observed_expected")) + (mark if cal else ""),
                     fmt(cal.get("slope")) + (mark if cal else ""),
                     fmt((meta.get("threshold") or {}).get("value"), 4)))
        attrs.append(f'data-algorithm="{escape(meta["algorithm"])}" data-version="{escape(str(meta["version"]))}"'
                     + (' class="champion"' if label == d.champion_label else ""))
    out.append(table(["model", "version", "test ROC-AUC (95% CI)", "oot ROC-AUC (95% CI)", "test PR-AUC",
                      "oot PR-AUC", "oot Brier", "oot observed/expected", "oot calibration slope", "threshold"],
                     rows, row_attrs=attrs, cell_attrs=[f'data-metric="{m}"' for m in metrics]))
    foot = ["★ the champion (" + d.state.champion_source + "). CIs are shown where the metadata holds them."]
    if computed:
        foot.append("† computed now from the scored window: this version's metadata has no calibration.")
    out.append(para(" ".join(foot)))
    comp = d.state.comparison
    if comp:
        rec = comp.get("recommended", {})
        out.append(f'<p data-recommended="{escape(str(rec.get("algorithm")))}"><b>Recommended: '
                   f'{escape(str(rec.get("algorithm")))} v{escape(str(rec.get("version")))}</b>. '
                   f'{escape(str(rec.get("reason", "")))} Criterion: {escape(str(comp.get("criterion", "")))}.</p>')
    else:
        out.append(missing("No comparison yet: run `readmit compare` to record which model is recommended and why."))
    if not d.scores:
        out.append(missing("No curves: the models could not be scored (see Lineage notes)."))
        return "".join(out)
    windows = ("test", "oot")
    roc = {w: {lab: analysis.roc_points(*s[w]) for lab, s in d.scores.items() if w in s} for w in windows}
    pr = {w: {lab: analysis.pr_points(*s[w]) for lab, s in d.scores.items() if w in s} for w in windows}
    rel = {w: {lab: analysis.reliability(*s[w]) for lab, s in d.scores.items() if w in s} for w in windows}
    hist = {lab: analysis.score_histogram(*s["oot"]) for lab, s in d.scores.items() if "oot" in s}
    out.append(figure("roc", plots.roc(roc), "ROC curves on the test window (model choice) and the "
                                             "out-of-time window (unseen); dashed: chance."))
    out.append(figure("pr", plots.precision_recall(pr), "Precision against recall; dashed: the readmission "
                                                        "rate, what flagging at random achieves."))
    out.append(figure("reliability", plots.reliability(rel), "Observed 30-day rate against mean predicted risk "
                                                             "per decile of risk; on the diagonal = calibrated."))
    out.append(figure("score-distributions", plots.score_distributions(hist, "oot"),
                      "Predicted risk of patients readmitted within 30 days (red) and not (grey), out-of-time."))
    return "".join(out)


# -- 3 clinical usefulness -------------------------------------------------------------------------


def usefulness_section(d: ReportData) -> str:
    if not d.scores or d.champion_label not in d.scores:
        return missing("No scored champion: train and register a model first.")
    champ = d.state.champion or {}
    threshold = (champ.get("threshold") or {}).get("value")
    grid = analysis.decision_thresholds(threshold)
    curves = {lab: analysis.decision_curve(*s["oot"], grid) for lab, s in d.scores.items() if "oot" in s}
    out = [figure("decision-curve", plots.decision_curve(curves, threshold, "oot"),
                  "Net benefit against the threshold probability, out-of-time: above both 'flag everyone' "
                  "and 'flag no one' the model helps.")]
    if threshold is None:
        out.append(missing("The champion's metadata has no stored threshold."))
        return "".join(out)
    rows = []
    for w in ("test", "oot"):
        if w in d.scores[d.champion_label]:
            a = analysis.at_threshold(*d.scores[d.champion_label][w], threshold)
            rows.append((w, a["patients"], a["flagged_per_100"], a["caught_per_100_flagged"],
                         a["share_of_readmissions_caught"]))
    oot = next((r for r in rows if r[0] == "oot"), rows[-1])
    out.append(f'<p data-threshold="{threshold:.6f}">At the stored threshold <b>{threshold:.3f}</b> '
               f'({escape(str((champ.get("threshold") or {}).get("rule")))}, chosen on test), of every 100 patients '
               f'<b>{oot[2]:.1f}</b> are flagged, and of every 100 flagged <b>{fmt(oot[3], 1)}</b> are readmitted '
               f"within 30 days ({escape(oot[0])} window).</p>")
    out.append(table(["window", "patients", "flagged per 100", "readmissions per 100 flagged",
                      "share of all readmissions caught"], rows))
    return "".join(out)


# -- 4 why ----------------------------------------------------------------------------------------


def why_section(d: ReportData) -> str:
    out = []
    if d.importance and d.importance["values"]:
        top = sorted(d.importance["values"].items(), key=lambda kv: -kv[1]["mean"])[:TOP_FEATURES]
        if d.importance["kind"] == "native":
            unit, title = "share of the model's total importance", f"Native importance - {d.champion_label}"
            caption = ("The champion's own importance of each input (for trees: the total gain or impurity "
                       "decrease of its splits), as a share of the total.")
            errors = None
        else:
            unit, title = "drop in ROC-AUC when shuffled", f"Permutation importance - {d.champion_label}, test window"
            caption = ("How much the champion's test ROC-AUC drops when one input's values are shuffled "
                       "(bars: mean of repeats, whiskers: spread).")
            errors = [v["std"] for _, v in top]
        out.append(figure("importance", plots.bars([(k, v["mean"]) for k, v in top], unit, title, errors), caption))
        out.append(table(["feature", unit], [(k, v["mean"]) for k, v in top]))
    else:
        out.append(missing("No feature importance: no champion could be scored on the test window."))
    if d.predictions is None:
        out.append(missing("No predictions yet: reason codes appear once `gold/model_predictions` is written "
                           "by scoring."))
        return "".join(out)
    month, frame = d.predictions
    if "top_reasons" not in frame.columns or frame.height == 0:
        out.append(missing(f"The latest predictions ({month}) carry no reason codes."))
        return "".join(out)
    if "arm" in frame.columns:
        champ_rows = frame.filter(frame["arm"] == "champion")
        frame = champ_rows if champ_rows.height else frame
    counts = Counter(r for reasons in frame["top_reasons"].to_list() for r in (reasons or []))
    top = counts.most_common(TOP_REASONS)
    flagged = float(frame["flag"].mean()) if "flag" in frame.columns else None
    out.append(para(f"Latest predictions: month {month}, {frame.height:,} encounters"
                    + (f", {100 * flagged:.1f}% flagged" if flagged is not None else "") + "."))
    if top:
        out.append(figure("reason-codes", plots.bars([(k, v / frame.height) for k, v in top],
                                                     "share of encounters with this reason",
                                                     f"Most frequent reason codes - {month}"),
                          "Reason codes most often among an encounter's top reasons in the latest scoring."))
    return "".join(out)


# -- 5 fairness -----------------------------------------------------------------------------------


def fairness_section(d: ReportData) -> str:
    label = d.champion_label
    if not d.scores or label not in d.scores or "oot" not in d.scores[label] or not d.groups:
        return missing("No scored champion on the out-of-time window: fairness cannot be measured yet.")
    threshold = ((d.state.champion or {}).get("threshold") or {}).get("value") or 0.5
    y, p = d.scores[label]["oot"]
    tables = {a: analysis.group_table(y, p, d.groups[a], threshold) for a in FAIRNESS_ATTRIBUTES if a in d.groups}
    out = []
    overall = analysis.auc(y, p)
    small = []
    for attribute, rows in tables.items():
        out.append(f"<h3>{escape(attribute)}</h3>")
        out.append(table(["group", "rows", "readmitted < 30 d", "ROC-AUC", "observed/expected", "flag rate"],
                         [(r["group"], r["rows"], r["readmissions"], r["auc_roc"], r["observed_expected"],
                           r["flag_rate"]) for r in rows],
                         row_attrs=[f'data-group="{escape(r["group"])}"' + (' class="small"' if r["small"] else "")
                                    for r in rows]))
        small += [f"{attribute}={r['group']} ({r['rows']} rows, {r['readmissions']} readmitted)"
                  for r in rows if r["small"]]
    if small:
        out.append(f'<p class="warn" data-small-groups="{len(small)}">Too small to judge (fewer than '
                   f"{analysis.MIN_GROUP_POSITIVES} readmissions or {analysis.SMALL_GROUP_ROWS} rows; greyed): "
                   f"{escape('; '.join(small))}.</p>")
    out.insert(0, figure("fairness", plots.group_auc(tables, overall),
                         "ROC-AUC per group on the out-of-time window (grey: too small to judge; red line: all "
                         "patients)."))
    return "".join(out)


# -- 6 over time ----------------------------------------------------------------------------------


def over_time_section(d: ReportData) -> str:
    out = []
    cfg = d.config.monitoring_config
    series: dict[str, dict[str, float | None]] = {}
    champ = d.state.champion
    if champ:
        for w in ("test", "oot"):
            by_month = (champ.get("performance", {}).get(w) or {}).get("auc_roc_by_month") or {}
            series[f"{w} (at training)"] = {m: v.get("auc_roc") for m, v in by_month.items()}
    mon = d.monitoring
    if mon:
        series["monitored observed"] = {m.month: m.observed.auc_roc if m.observed else None for m in mon.months}
        series["monitored estimated"] = {m.month: m.estimated.auc_roc if m.estimated else None for m in mon.months}
    if any(v is not None for s in series.values() for v in s.values()):
        out.append(figure("auc-over-time", plots.auc_over_time(series, cfg.min_auc),
                          "ROC-AUC per month: at training (test and out-of-time windows) and, once monitored, "
                          "observed where labels are mature and estimated (dashed) where not."))
    if not mon:
        out.append(missing("No monitoring record yet: `readmit monitor` writes one (score PSI, feature CSI, "
                           "observed and estimated ROC-AUC per month, and a decision)."))
        return "".join(out)
    months = mon.months
    csi_max: Counter[str] = Counter()
    for m in months:
        for feature, value in m.csi.items():
            if value is not None:
                csi_max[feature] = max(csi_max[feature], value)
    top = [f for f, _ in csi_max.most_common(TOP_CSI)]
    out.append(figure("drift", plots.drift([m.month for m in months], [m.score_psi for m in months],
                                           {f: [m.csi.get(f) for m in months] for f in top},
                                           cfg.psi_warning, cfg.psi_alert),
                      "Score PSI and the most drifting features' CSI per month against the reference; yellow: "
                      "warning band, red: alert band."))
    out.append(online_part(mon))
    action, reasons = mon.decision.action, mon.decision.reasons
    out.append(f'<p data-decision="{escape(action)}">Latest monitoring decision ({escape(mon.run_at)}, '
               f'model {escape(mon.model.algorithm)} v{escape(mon.model.version)}): <b>{escape(action)}</b>'
               + (": " + escape("; ".join(reasons)) if reasons else "") + "</p>")
    return "".join(out)


def online_part(mon: MonitoringRecord) -> str:
    """The online source beside the batch months: the service's answers by request month."""
    online = mon.online
    if online is None:  # a note, not a missing input: batch-only deployments are complete without it
        return para("This monitoring record predates the online source: rerun `readmit monitor` to see "
                    "what readmit serve answered.")
    if not online.rows:
        return para(f"No online prediction by this model in these months ({online.location}): "
                       "`readmit serve` writes one audit record per answer.")
    rows = [(m.month, m.rows, m.requests, m.risk_mean, m.risk_p50, m.risk_p90, m.flag_rate,
             " ".join(f"{k} {v}" for k, v in m.bands.items()), " ".join(f"{k} {v}" for k, v in m.arms.items()),
             m.labelled, m.observed.auc_roc if m.observed else None, m.observed.brier if m.observed else None)
            for m in online.months]
    return ('<h3 id="online">Online predictions</h3>'
            + para(f"What readmit serve answered with this model ({online.rows:,} encounters in "
                   f"{online.requests:,} requests; {online.other_models_rows:,} answered by another model), "
                   f"from its audit records ({online.location}); observed performance where an outcome is known.")
            + table(["month", "encounters", "requests", "mean risk", "p50", "p90", "flagged", "bands", "arms",
                     "labelled", "ROC-AUC", "Brier"], rows))


# -- 7 clinician feedback ------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _day(at: str | None) -> str:
    return "–" if at is None else at[:10]


def feedback_section(d: ReportData) -> str:
    """What clinicians did with the CDS Hooks cards, by risk band: the early signal, the same day."""
    fb = d.feedback
    if fb is None:
        return missing("The CDS Hooks audit trail could not be read (see Lineage's notes).")
    if not fb.cards:
        return missing(f"No clinician feedback: no CDS Hooks card with a risk was shown yet ({fb.location}). "
                       "`readmit serve` with serve_config.cds_hooks on keeps each card and each feedback call.")
    out = [kpis([("cards shown", fb.cards), ("with feedback", fb.with_feedback), ("accepted", fb.accepted),
                 ("overridden", fb.overridden), ("acceptance rate", _pct(fb.acceptance_rate)),
                 ("override rate", _pct(fb.override_rate))])]
    period = f"cards shown {_day(fb.first_card_at)} to {_day(fb.last_card_at)}; "
    period += (f"feedback {_day(fb.first_feedback_at)} to {_day(fb.last_feedback_at)}" if fb.with_feedback
               else "no feedback received yet")
    out.append(f'<p data-feedback-period="{escape(_day(fb.first_card_at))}..{escape(_day(fb.last_card_at))}">'
               + escape(f"Every model's cards with a risk, {period}. Rates are over the cards shown (a card "
                        "nobody answered is neither accepted nor overridden); a card's latest outcome counts. "
                        f"From {fb.location} and the hook calls' audit records.") + "</p>")
    bands = list(fb.bands.items())
    out.append(table(["risk band", "cards", "with feedback", "accepted", "acceptance rate", "overridden",
                      "override rate", "override reasons"],
                     [(band, b.cards, b.with_feedback, b.accepted, _pct(b.acceptance_rate), b.overridden,
                       _pct(b.override_rate), " ".join(f"{k} {v}" for k, v in b.override_reasons.items()) or "–")
                      for band, b in bands]
                     + [("all", fb.cards, fb.with_feedback, fb.accepted, _pct(fb.acceptance_rate), fb.overridden,
                         _pct(fb.override_rate), "")],
                     row_attrs=[f'data-band="{escape(band)}"' for band, _ in bands] + ['data-band="all"']))
    if fb.override_reasons:
        out.append("<h3>Override reasons</h3>" + table(
            ["reason", "code", "overridden cards"],
            [(fb.reason_names.get(code, "–"), code, n) for code, n in fb.override_reasons.items()],
            row_attrs=[f'data-reason="{escape(code)}"' for code in fb.override_reasons]))
    else:
        out.append(para("No card was overridden."))
    if fb.info_cards or fb.feedback_elsewhere:
        out.append(para(f"Not counted above: {fb.info_cards:,} info card(s) outside the model's intended use "
                        f"(no risk shown) and {fb.feedback_elsewhere:,} feedback item(s) on cards the audit trail "
                        "does not hold with a risk."))
    return "".join(out)


# -- 8 governance ---------------------------------------------------------------------------------


def _scalars(obj: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in obj.items():
        if key.startswith("_"):
            continue
        if isinstance(value, dict) and not prefix:
            out += _scalars(value, f"{key}.")
        elif not isinstance(value, dict | list):
            out.append((prefix + key, value))
    return out


def governance_section(d: ReportData) -> str:
    out = ["<h3>Aliases now</h3>"]
    if d.state.aliases:
        out.append(table(["alias", "algorithm", "version", "set at", "by", "reason"],
                         [(a.get("alias"), a.get("algorithm"), a.get("version"), a.get("set_at"), a.get("by"),
                           a.get("reason")) for a in d.state.aliases]))
    else:
        out.append(missing("No alias set yet: the champion is the comparison's recommendation until one is."))
    out.append("<h3>Promotion and alias history</h3>")
    if d.state.events:
        recent = d.state.events[-RECENT_EVENTS:][::-1]
        out.append(table(["at", "event", "alias", "from", "to", "by", "reason"],
                         [(e.get("at"), e.get("event"), e.get("alias"), _version_text(e.get("from")),
                           _version_text(e.get("to")), e.get("by"), e.get("reason")) for e in recent]))
    else:
        out.append(missing("No alias or promotion event recorded yet."))
    if d.state.decisions:
        last = d.state.decisions[-1]
        out.append("<h3>Latest promotion decision</h3>")
        out.append(table(["field", "value"], _scalars(last)))
    out.append("<h3>A/B comparison</h3>")
    if d.ab_report:
        out.append(table(["field", "value"], _scalars(d.ab_report)))
    else:
        out.append(missing("No A/B report yet: one is written when a challenger is scored beside the champion."))
    return "".join(out)


def _version_text(value: Any) -> Any:
    if isinstance(value, dict):
        return f"{value.get('algorithm')} v{value.get('version')}"
    return value


# -- 9 lineage ------------------------------------------------------------------------------------


def lineage_section(d: ReportData) -> str:
    out = ["<h3>Data</h3>"]
    if d.sources:
        out.append(table(["raw file sha256", "published UCI file", "rows in bronze", "ingested at"],
                         [(s["sha256"], s["uci_original"], s["rows"], s["ingested_at"]) for s in d.sources]))
    else:
        out.append(missing("No bronze lineage columns found: the raw file's hash is unknown."))
    champ = d.state.champion
    trained = (champ or {}).get("gold_partitions") or {}
    if trained:
        rows = []
        for table_name, months in trained.items():
            current = (d.current_partitions or {}).get(table_name, {})
            changed = [m for m, fp in months.items() if fp and current.get(m) and current[m] != fp]
            gone = [m for m in months if m not in current] if d.current_partitions is not None else []
            rows.append((table_name, len(months), len(changed), len(gone),
                         (", ".join((changed + gone)[:6]) + (" ..." if len(changed + gone) > 6 else "")) or "none"))
        out.append(table(["gold table", "partitions at training", "changed since", "missing now", "months"], rows))
        out.append(para("Fingerprints: parquet footer row count and size of each gold partition the champion "
                        "was trained on, compared with the datamart now."))
    out.append("<h3>Code and libraries</h3>")
    versions = (champ or {}).get("versions") or {}
    libs = sorted(set(versions) | set(d.current_versions))
    out.append(table(["library", "champion trained with", "report run with"],
                     [(lib, versions.get(lib), d.current_versions.get(lib)) for lib in libs]))
    out.append(para(f"git revision: champion {(champ or {}).get('git_revision') or 'unknown'}; "
                    f"report {d.current_git or 'unknown'}."))
    out.append("<h3>Configuration in use</h3>")
    same = champ is not None and champ.get("config") == d.config.to_json_dict()
    out.append(para("Equal to the champion's training config." if same else
                    "Differs from the champion's training config (or the champion is unknown)."))
    out.append(_pre(d.config.to_json_dict()))
    out.append("<h3>Models and cards</h3>")
    rows = [(lab, m.get("version"), (m.get("artifact") or {}).get("sha256"),
             d.card_links.get(lab, "–").rsplit("/", 1)[-1]) for lab, m in d.labels.items()]
    out.append(table(["model", "version", "artifact sha256", "model card"], rows))
    out.append(para(f"Registry {d.registry_uri} (model cards beside the models under models/{d.model_name}/); "
                    f"datamart {d.datamart_uri}."))
    if d.notes:
        out.append("<h3>Notes</h3><ul>" + "".join(f"<li>{escape(n)}</li>" for n in d.notes) + "</ul>")
    return "".join(out)


GUIDES: dict[str, str] = {
    "data": "How many encounters each month, how often they were readmitted within 30 days, and which "
            "months trained, chose and tested the models.",
    "models": "Higher ROC-AUC ranks risk better; a reliability curve on the diagonal means a risk of 20% "
              "comes true for 1 in 5; the out-of-time window is the honest one.",
    "usefulness": "Where the model's curve lies above both reference lines, acting on its flags does more "
                  "good than following up everyone or no one.",
    "why": "Which inputs the champion leans on overall, and which reasons it gives most often for today's patients.",
    "fairness": "The champion should rank and calibrate about equally well in every group; a greyed group is "
                "too small to tell.",
    "over-time": "Is the champion still as good as when it was trained? Lines entering the shaded bands call for a look.",
    "feedback": "Do clinicians act on the cards? Overrides come the same day, a month before the 30-day "
                "labels: a band overridden far more often than the others is worth a look.",
    "governance": "Who put which model in service, when and why, and how a challenger fared.",
    "lineage": "Exactly which data, code, libraries and settings produced these models and this page.",
}

BUILDERS: dict[str, Callable[[ReportData], str]] = {
    "data": data_section,
    "models": models_section,
    "usefulness": usefulness_section,
    "why": why_section,
    "fairness": fairness_section,
    "over-time": over_time_section,
    "feedback": feedback_section,
    "governance": governance_section,
    "lineage": lineage_section,
}


def render(d: ReportData) -> tuple[str, dict[str, str]]:
    """The whole page, and per section "shown", "partial" (some inputs missing) or "missing"."""
    status: dict[str, str] = {}
    parts = []
    for number, (sid, title) in enumerate(SECTIONS, start=1):
        body = BUILDERS[sid](d)
        status[sid] = ("missing" if body.startswith('<p class="missing">') else
                       "partial" if '<p class="missing">' in body else "shown")
        parts.append(f'<section id="{sid}" data-section="{sid}"><h2>{number} {escape(title)}</h2>'
                     f'<p class="guide">{escape(GUIDES[sid])}</p>{body}</section>')
    nav = "".join(f'<a href="#{sid}">{n} {escape(t)}</a>' for n, (sid, t) in enumerate(SECTIONS, start=1))
    champ = d.champion_label or "none yet"
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>readmit report - {escape(d.model_name)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>30-day readmission risk - {escape(d.model_name)}</h1>"
        f"<p>Generated {escape(d.generated_at)} · champion: {escape(champ)} · registry {escape(d.registry_uri)}</p>"
        f"</header><nav>{nav}</nav><main>{''.join(parts)}</main></body></html>"
    )
    return page, status
