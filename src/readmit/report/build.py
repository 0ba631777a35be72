"""``readmit report``: gather, score, render and write the report.

Writes ``{registry_uri}/reports/readmit_report_{YYYYMMDDTHHMMSS}.html`` and the same bytes as
``readmit_report_latest.html`` (each write atomic). The shown models (the latest of each
algorithm, the champion) are loaded from the registry and score the test and out-of-time windows
of gold afresh, so every curve is computed from the registered artifact, not copied from a file.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from readmit.config import Settings, resolve_windows
from readmit.data.layers import LABEL
from readmit.errors import ReadmitError
from readmit.lineage import git_revision, library_versions
from readmit.monitoring.feedback import feedback_summary
from readmit.registry import Registry
from readmit.report import analysis
from readmit.report.cards import card_names, read_or_write_card
from readmit.report.html import ReportData, render
from readmit.report.inputs import (
    gold_by_month,
    invalid_codes,
    latest_predictions,
    monitoring_records,
    registry_state,
    rejected_files,
    source_files,
)
from readmit.runtime import Progress
from readmit.storage import Storage
from readmit.training import predict_proba
from readmit.training.evaluate import subgroup_columns
from readmit.training.split import load_gold

REPORTS_DIR = "reports"
LATEST_REPORT = "readmit_report_latest.html"
IMPORTANCE_ROWS = 5000
IMPORTANCE_REPEATS = 2


def report_name(now: datetime) -> str:
    return f"readmit_report_{now:%Y%m%dT%H%M%S}.html"


def build_report(settings: Settings, *, now: datetime | None = None,
                 progress: Progress | None = None) -> dict[str, Any]:
    """Write the report; return where it is, its size, the seconds it took and each section's status."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    say = progress or (lambda _m: None)
    settings = resolve_windows(settings)
    cfg = settings.config
    registry = Registry.for_settings(settings)
    datamart = Storage(settings.datamart_uri)
    say("reading the registry and the datamart")
    state = registry_state(registry)
    data = ReportData(
        model_name=cfg.model.model_name,
        generated_at=now.isoformat(timespec="seconds"),
        registry_uri=registry.storage.uri,
        datamart_uri=datamart.uri,
        config=cfg,
        splits=cfg.temporal_splits.model_dump(mode="json"),
        date_method=cfg.data_config.date_derivation.method,
        state=state,
        gold_months=gold_by_month(datamart),
        rejected=rejected_files(datamart),
        invalid_codes=invalid_codes(datamart),
        sources=source_files(datamart),
        predictions=latest_predictions(datamart),
        current_versions=library_versions(),
        current_git=git_revision(),
    )
    data.monitoring, data.ab_report = monitoring_records(registry)
    say("clinician feedback on the CDS Hooks cards")
    try:
        data.feedback = feedback_summary(registry, band_order=cfg.inference_config.risk_bands.labels)
    except ReadmitError as exc:
        data.notes.append(f"clinician feedback could not be read: {exc}")
    if state.candidates and data.gold_months is not None:
        say("scoring the test and out-of-time windows")
        _score(settings, registry, data)
    for label, meta in data.labels.items():
        try:
            _text, location = read_or_write_card(registry, meta, data.sources)
            data.card_links[label] = location
        except ReadmitError as exc:
            data.notes.append(f"model card of {label}: {exc}")
    say("rendering")
    page, status = render(data)
    payload = page.encode()
    name = report_name(now)
    registry.storage.write_bytes(f"{REPORTS_DIR}/{name}", payload)
    registry.storage.write_bytes(f"{REPORTS_DIR}/{LATEST_REPORT}", payload)
    return {
        "path": registry.storage.uri_of(f"{REPORTS_DIR}/{name}"),
        "latest": registry.storage.uri_of(f"{REPORTS_DIR}/{LATEST_REPORT}"),
        "bytes": len(payload),
        "seconds": round(time.perf_counter() - started, 2),
        "champion": data.champion_label,
        "sections": status,
        "notes": data.notes,
    }


def _score(settings: Settings, registry: Registry, data: ReportData) -> None:
    """Score every shown model on test and oot; champion's importance and subgroups on the way."""
    try:
        gold = load_gold(settings)
    except ReadmitError as exc:
        data.notes.append(f"gold could not be read for scoring: {exc}")
        return
    data.current_partitions = gold.partitions
    frames = {w: gold.window(w) for w in ("test", "oot")}
    frames = {w: f for w, f in frames.items() if f.height}
    for label, meta in data.labels.items():
        try:
            model, _ = registry.load(meta["algorithm"], meta["version"])
            scores = {w: (f[LABEL].to_numpy().astype(int), predict_proba(model, f)) for w, f in frames.items()}
        except ReadmitError as exc:
            data.notes.append(f"{label} v{meta['version']} could not be scored: {exc}")
            continue
        data.scores[label] = scores
        for w, (y, p) in scores.items():
            stored = (meta.get("performance", {}).get(w) or {}).get("auc_roc")
            now = analysis.auc(y, p)
            if stored is not None and now is not None and abs(stored - now) > 1e-6:
                data.notes.append(f"{label} {w} ROC-AUC is {now:.4f} on the gold tables now, {stored:.4f} at "
                                  "training: gold changed since (see the fingerprints above)")
        if label == data.champion_label:
            features = [*meta.get("features", {}).get("numeric", []), *meta.get("features", {}).get("categorical", [])]
            native = analysis.native_importance(model, features)
            if native is not None:
                data.importance = {"kind": "native", "values": {f: {"mean": v, "std": 0.0} for f, v in native.items()}}
            elif "test" in frames:
                values = analysis.permutation_importance(
                    model, frames["test"], scores["test"][0], rows=IMPORTANCE_ROWS, repeats=IMPORTANCE_REPEATS,
                    seed=settings.config.model.random_state)
                data.importance = {"kind": "permutation", "values": values}
            if "oot" in frames:
                data.groups = subgroup_columns(frames["oot"])


def model_card(settings: Settings, version: str) -> dict[str, str]:
    """The markdown model card of a version (written now if it has none yet) and its location."""
    registry = Registry.for_settings(settings)
    meta = registry.metadata(version)
    sources = source_files(Storage(settings.datamart_uri))
    text, location = read_or_write_card(registry, meta, sources)
    return {"markdown": text, "location": location, "json": registry.location(
        card_names(meta["algorithm"], meta["version"])[1])}


def write_cards(settings: Settings, metadata: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Write the model card of each freshly registered version (called after training)."""
    from readmit.report.cards import write_model_card

    registry = Registry.for_settings(settings)
    try:
        sources = source_files(Storage(settings.datamart_uri))
    except (OSError, ReadmitError):
        sources = []
    return [write_model_card(registry, meta, sources) for meta in metadata]
