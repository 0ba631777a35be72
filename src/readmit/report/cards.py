"""The model card of a registered version: ``{algorithm}_v{version}_model_card.md`` and its JSON twin.

Written beside the version's metadata, from that metadata alone (plus the raw file's sha256 when
the datamart is at hand), following the TRIPOD+AI items that apply to a registered model: source
of data and dates, eligibility, outcome, predictors, missing data, sample sizes and events,
tuning and calibration, discrimination and calibration with confidence intervals, subgroups,
intended use and limitations. A field the metadata does not hold (an older version) reads
"not recorded"; nothing is made up.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from readmit.data.schema import DEATH_OR_HOSPICE_DISPOSITIONS
from readmit.registry import Registry
from readmit.registry.versions import card_names

WINDOWS = ("train", "test", "oot")
WINDOW_NAMES = {"train": "training", "test": "test (model selection, threshold)", "oot": "out-of-time (unseen)"}
NOT_RECORDED = "not recorded"
DATA_SOURCE = (
    'UCI Machine Learning Repository, "Diabetes 130-US Hospitals for Years 1999-2008" (Strack et al., '
    "2014, doi:10.1155/2014/781670; data set doi:10.24432/C5230J; CC BY 4.0): 101,766 inpatient "
    "encounters of diabetic patients in 130 US hospitals"
)
OUTCOME = ('Readmission within 30 days of discharge: `readmitted == "<30"` in the source file (1), '
           'otherwise `>30` or `NO` (0). The score is the model\'s probability of that outcome.')
INTENDED_USE = (
    "Rank patients at discharge by their risk of a 30-day readmission so that care teams can "
    "prioritise follow-up (a call, an early clinic visit, medication review). It adds patients to "
    "a follow-up list; it must never be used to deny, delay or reduce care, nor to judge a patient "
    "or a hospital. A clinician stays responsible for every decision."
)
LIMITATIONS = (
    "Dates are derived: the UCI file has no dates, so encounters are placed on a timeline by "
    "encounter_id order; 'out-of-time' means later in that order, not later in calendar time.",
    "One data source: 130 US hospitals, 1999-2008, diabetic inpatients only; performance in another "
    "population, era or coding practice is unknown until measured there.",
    "Class prevalence: about 11% of encounters are readmitted within 30 days, so precision is low "
    "at any useful recall; most flagged patients will not be readmitted.",
    "Discrimination is modest (published leakage-free ROC-AUC on this data: 0.64-0.68); the score "
    "supports prioritisation, not diagnosis.",
    "Readmissions to other hospitals are not in the data; the outcome is what the source recorded.",
)

UNCALIBRATED = (
    "This version records no calibration: read its scores as a ranking, not as probabilities, until "
    "the report's reliability diagram shows they match the observed rates."
)
# hyperparameter_tuning.scoring -> the metric's name in a card
SCORER_NAMES = {"roc_auc": "ROC-AUC", "average_precision": "PR-AUC", "neg_brier_score": "Brier score (negated)",
                "neg_log_loss": "log loss (negated)"}
WEIGHT_PARAMS = ("class_weight", "scale_pos_weight")


def tuning_text(meta: dict[str, Any]) -> dict[str, Any]:
    """How the version was tuned, as its metadata says (never a fixed sentence)."""
    cv = meta.get("cv") or {}
    scoring = SCORER_NAMES.get(cv.get("scoring"), cv.get("scoring") or "ROC-AUC (older metadata)")
    folds = f"{cv.get('folds', '?')} {cv.get('strategy', '?')} folds on the training window"
    if cv.get("method") == "none":
        method = f"no search: the algorithm's own hyperparameters, cross-validated over {folds}, scored by {scoring}"
    else:
        method = (f"{str(cv.get('method') or 'random_search').replace('_', ' ')}, {cv.get('n_iter', '?')} candidates "
                  f"x {folds}, scored by {scoring}")
    params = meta.get("best_params") or {}
    weights = {k: v for k, v in params.items() if k in WEIGHT_PARAMS and v not in (None, 1, 1.0)}
    return {
        "method": method,
        "scoring": scoring,
        "cv_score": cv.get("best_mean_score", cv.get("best_mean_auc_roc")),
        "best_params": meta.get("best_params"),
        "class_imbalance": (f"class weights {json.dumps(weights)}, no resampling" if weights else
                            "no class weights and no resampling (the decision threshold handles the prevalence)"),
    }


def _ci(perf: dict[str, Any], metric: str) -> list[float] | None:
    ci = (perf.get("ci") or {}).get(metric)
    return list(ci) if isinstance(ci, list | tuple) and len(ci) == 2 else None


def build_card(meta: dict[str, Any], sources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The card's content as a JSON-able dict, from a version's metadata."""
    perf = meta.get("performance", {})
    positives = meta.get("positives") or {}
    rows = {"train": meta.get("training_samples"), "test": meta.get("test_samples"), "oot": meta.get("oot_samples")}
    features = meta.get("features") or {}
    config = meta.get("config") or {}
    derivation = (config.get("data_config") or {}).get("date_derivation") or {}
    excluded = meta.get("excluded_death_hospice_by_window") or {}
    calibrated = any(isinstance((perf.get(w) or {}).get("calibration"), dict) for w in ("test", "oot"))
    return {
        "model": {
            "name": meta.get("registered_model"), "algorithm": meta.get("algorithm"), "version": meta.get("version"),
            "trained_at": meta.get("training_date"), "artifact_sha256": (meta.get("artifact") or {}).get("sha256"),
            "git_revision": meta.get("git_revision"), "library_versions": meta.get("versions") or NOT_RECORDED,
        },
        "source_of_data": {
            "data_set": DATA_SOURCE,
            "raw_files": sources or NOT_RECORDED,
            "datamart": meta.get("datamart_uri"),
            "dates": (f"snapshot_date derived by {derivation.get('method', 'encounter_order')} over "
                      f"{derivation.get('start_date', '?')}..{derivation.get('end_date', '?')} "
                      "(the UCI file has no dates) unless the input carried its own snapshot_date"),
            "windows": meta.get("temporal_splits") or NOT_RECORDED,
        },
        "eligibility": {
            "population": "inpatient encounters of diabetic patients (the source's inclusion criteria)",
            "excluded_death_hospice": meta.get("exclude_death_hospice"),
            "death_hospice_dispositions": sorted(DEATH_OR_HOSPICE_DISPOSITIONS),
            "excluded_rows_by_window": excluded or NOT_RECORDED,
            "unlabelled_rows_dropped": meta.get("unlabelled_rows_dropped"),
        },
        "outcome": OUTCOME,
        "predictors": {
            "numeric": features.get("numeric", []), "categorical": features.get("categorical", []),
            "count": meta.get("feature_count"),
            "definitions": "docs/data_dictionary.md; every feature is known at discharge, patient history "
                           "counts only strictly earlier encounters",
        },
        "missing_data": (
            "'?' in the source is missing. A missing category is the explicit category 'Missing' "
            "(max_glu_serum/A1Cresult 'None' = not measured, a real category); a missing number stays "
            "missing in gold. The model's own preprocessing: "
            + str(meta.get("preprocessing") or NOT_RECORDED)
            + ". No row is dropped for a missing predictor."
        ),
        "sample_sizes": {
            w: {"rows": rows.get(w), "events": positives.get(w),
                "event_rate": (positives.get(w) / rows[w]) if rows.get(w) and positives.get(w) is not None else None}
            for w in WINDOWS
        },
        "tuning": tuning_text(meta),
        "calibration_method": meta.get("calibration_method") or (meta.get("calibration") or {}).get("method")
        or NOT_RECORDED,
        "threshold": meta.get("threshold") or NOT_RECORDED,
        "performance": {w: _performance(perf.get(w) or {}) for w in ("test", "oot")},
        "subgroups": {w: (perf.get(w) or {}).get("auc_roc_by_group") or NOT_RECORDED for w in ("test", "oot")},
        "intended_use": INTENDED_USE,
        "limitations": list(LIMITATIONS) + ([] if calibrated else [UNCALIBRATED]),
        "warnings": meta.get("warnings") or [],
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _performance(p: dict[str, Any]) -> dict[str, Any]:
    """One window's discrimination, calibration and figures at the threshold, from its metadata."""
    return {
        "auc_roc": p.get("auc_roc"), "auc_roc_ci95": _ci(p, "auc_roc"),
        "pr_auc": p.get("pr_auc"), "brier": p.get("brier"), "brier_ci95": _ci(p, "brier"),
        "calibration": p.get("calibration") or NOT_RECORDED,
        "at_threshold": {k: p.get(k) for k in ("precision", "recall", "predicted_positive_rate")},
        "unseen_patients": p.get("unseen_patients") or NOT_RECORDED,
    }


def _f(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_f(v)}" for k, v in value.items())
    return NOT_RECORDED if value is None else str(value)


def _with_ci(value: Any, ci: list[float] | None) -> str:
    return _f(value) + (f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else "")


def render_markdown(card: dict[str, Any]) -> str:
    """The card as markdown, section by section in TRIPOD+AI order."""
    m, src, elig = card["model"], card["source_of_data"], card["eligibility"]
    lines = [
        f"# Model card: {m['name']} / {m['algorithm']} v{m['version']}",
        "",
        f"Trained {m['trained_at']}; artifact sha256 `{m['artifact_sha256']}`; code revision "
        f"`{m['git_revision'] or NOT_RECORDED}`.",
        "",
        "## Intended use",
        card["intended_use"],
        "",
        "## Source of data and dates",
        f"- Data: {src['data_set']}.",
    ]
    lines += _md_sources(src)
    lines += [
        "",
        "## Eligibility",
        f"- Population: {elig['population']}.",
        f"- Encounters ending in death or hospice (discharge_disposition_id "
        f"{', '.join(map(str, elig['death_hospice_dispositions']))}) excluded: "
        f"{_f(elig['excluded_death_hospice'])}; rows excluded per window: {_f(elig['excluded_rows_by_window'])}.",
        f"- Rows without a label dropped: {_f(elig['unlabelled_rows_dropped'])}.",
        "",
        "## Outcome",
        card["outcome"],
        "",
        "## Predictors",
        f"{_f(card['predictors']['count'])} predictors ({card['predictors']['definitions']}).",
        "",
        f"- Numeric: {', '.join(card['predictors']['numeric']) or NOT_RECORDED}",
        f"- Categorical: {', '.join(card['predictors']['categorical']) or NOT_RECORDED}",
        "",
        "## Missing data",
        card["missing_data"],
        "",
        "## Sample sizes and events",
        "| window | rows | events (readmitted < 30 d) | event rate |",
        "|---|---|---|---|",
    ]
    for w, s in card["sample_sizes"].items():
        lines.append(f"| {WINDOW_NAMES[w]} | {_f(s['rows'])} | {_f(s['events'])} | {_f(s['event_rate'])} |")
    t = card["tuning"]
    thr = card["threshold"]
    lines += [
        "",
        "## Tuning and calibration",
        f"- Tuning: {t['method']}; best cross-validated {t['scoring']} {_f(t['cv_score'])}; class imbalance: "
        f"{t['class_imbalance']}.",
        f"- Best parameters: `{json.dumps(t['best_params'])}`",
        f"- Calibration: {_f(card['calibration_method'])}.",
        (f"- Threshold: {_f(thr.get('value'), 4)} ("
         + ("fixed by training_config.threshold" if thr.get("chosen_on") == "fixed"
            else f"{thr.get('rule')}, chosen on {thr.get('chosen_on', 'test')}") + ")."
         if isinstance(thr, dict) else f"- Threshold: {NOT_RECORDED}."),
        "",
        "## Discrimination and calibration",
        "| window | ROC-AUC | PR-AUC | Brier | observed/expected | calibration slope | precision at threshold | recall at threshold |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [_md_performance_row(w, p) for w, p in card["performance"].items()]
    lines += ["", "## Subgroups (ROC-AUC, out-of-time window)", *_md_subgroups(card["subgroups"].get("oot"))]
    lines += ["", "## Limitations", *[f"- {item}" for item in card["limitations"]]]
    if card["warnings"]:
        lines += ["", "## Warnings", *[f"- {w}" for w in card["warnings"]]]
    lines += ["", f"_Generated {card['generated_at']} by readmit from the version's metadata._", ""]
    return "\n".join(lines)


def _md_sources(src: dict[str, Any]) -> list[str]:
    """The raw files, dates and windows lines of "Source of data and dates"."""
    lines = []
    if isinstance(src["raw_files"], list):
        for f in src["raw_files"]:
            origin = "the original UCI file" if f.get("uci_original") else "not the published UCI file"
            lines.append(f"- Raw file sha256 `{f['sha256']}` ({origin}), {_f(f['rows'])} rows, ingested {f['ingested_at']}.")
    else:
        lines.append(f"- Raw file sha256: {NOT_RECORDED}.")
    lines.append(f"- Dates: {src['dates']}.")
    windows = src["windows"]
    if isinstance(windows, dict):
        lines.append("- Windows: " + "; ".join(
            f"{w} {windows[w]['start_date']}..{windows[w]['end_date']}" for w in WINDOWS if w in windows) + ".")
    return lines


def _md_performance_row(window: str, p: dict[str, Any]) -> str:
    cal = p["calibration"] if isinstance(p["calibration"], dict) else {}
    at = p["at_threshold"]
    return (f"| {WINDOW_NAMES[window]} | {_with_ci(p['auc_roc'], p['auc_roc_ci95'])} | {_f(p['pr_auc'])} | "
            f"{_with_ci(p['brier'], p['brier_ci95'])} | {_f(cal.get('observed_expected'))} | {_f(cal.get('slope'))} | "
            f"{_f(at.get('precision'))} | {_f(at.get('recall'))} |")


def _md_subgroups(groups: Any) -> list[str]:
    """The subgroup table of one window (``not recorded`` when the metadata has none)."""
    if not isinstance(groups, dict):
        return [NOT_RECORDED]
    lines = ["| attribute | group | rows | events | ROC-AUC |", "|---|---|---|---|---|"]
    for attribute, values in groups.items():
        for group, g in values.items():
            auc = _f(g.get("auc_roc")) if g.get("auc_roc") is not None else "too few events to judge"
            lines.append(f"| {attribute} | {group} | {_f(g.get('samples'))} | {_f(g.get('positives'))} | {auc} |")
    return lines


def write_model_card(registry: Registry, meta: dict[str, Any],
                     sources: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """Write the markdown card and its JSON twin beside the version's metadata; return their locations."""
    md_name, json_name = card_names(meta["algorithm"], meta["version"])
    card = build_card(meta, sources)
    registry.storage.write_json(registry.rel(json_name), card)
    registry.storage.write_bytes(registry.rel(md_name), render_markdown(card).encode())
    return {"markdown": registry.location(md_name), "json": registry.location(json_name)}


def read_or_write_card(registry: Registry, meta: dict[str, Any],
                       sources: list[dict[str, Any]] | None = None) -> tuple[str, str]:
    """The version's markdown card and its location, written first when it does not exist yet."""
    md_name, _ = card_names(meta["algorithm"], meta["version"])
    try:
        return registry.storage.read_bytes(registry.rel(md_name)).decode(), registry.location(md_name)
    except FileNotFoundError:
        write_model_card(registry, meta, sources)
        return registry.storage.read_bytes(registry.rel(md_name)).decode(), registry.location(md_name)
