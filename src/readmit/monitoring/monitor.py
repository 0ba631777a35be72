"""One monitoring run: predictions + gold of a month range -> drift, performance, decision, record.

Reads ``gold/model_predictions`` (the rows one model scored: the model an alias points at), the
month's ``gold/feature_store`` rows for the features and ``gold/label_store`` for the labels of
mature months, and beside them the online source (the service's audit records of those months,
:mod:`readmit.monitoring.online`) and the clinicians' feedback on its CDS Hooks cards
(:mod:`readmit.monitoring.feedback`); writes one record per run under ``{registry_uri}/monitoring/{model_name}/``::

    monitoring_{YYYYMMDDTHHMMSS}.json   this run (never rewritten)
    latest_monitoring.json              a copy of the latest run

The record is a :class:`~readmit.monitoring.record.MonitoringRecord` (its module describes the
shape); the functions below each do one part of a run, :func:`run_monitoring` strings them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from readmit.config import MonitoringSection, Settings
from readmit.data.layers import FEATURE_STORE, LABEL, LABEL_STORE, PREDICTIONS
from readmit.errors import ReadmitInputError
from readmit.jsonsafe import jsonable
from readmit.monitoring.decisions import band, decide
from readmit.monitoring.drift import MONTH, drift_by_month
from readmit.monitoring.feedback import feedback_summary
from readmit.monitoring.online import online_source
from readmit.monitoring.performance import estimated_performance, observed_performance
from readmit.monitoring.profile import ensure_profile
from readmit.monitoring.record import (
    Bands,
    Estimated,
    ModelRef,
    MonitoringRecord,
    MonthResult,
    Observed,
    Summary,
)
from readmit.months import is_mature, months_between
from readmit.runtime import Progress
from readmit.storage import Storage

LATEST = "latest_monitoring.json"
_PREDICTION_COLUMNS = ["encounter_id", "patient_nbr", "risk", "flag", "algorithm", "version", "alias", "arm",
                       "scored_at"]


def monitoring_folder(model_name: str) -> str:
    """Where the monitoring records and A/B reports of a model live, under the registry root."""
    return f"monitoring/{model_name}"


def write_record(settings: Settings, prefix: str, latest: str, run_at: datetime,
                 record: dict[str, Any]) -> dict[str, Any]:
    """Write ``record`` as ``{prefix}_{run_at}.json`` and as ``latest`` in the model's monitoring
    folder of the registry; return it with its ``path``."""
    out = Storage(settings.registry_uri)
    folder = monitoring_folder(settings.config.model.model_name)
    name = f"{prefix}_{run_at:%Y%m%dT%H%M%S}.json"
    out.write_json(f"{folder}/{name}", record)
    out.write_json(f"{folder}/{latest}", record)
    record["path"] = out.uri_of(f"{folder}/{name}")
    return record


def prediction_months(settings: Settings, start: str, end: str) -> tuple[list[str], list[str]]:
    """(months of the range with predictions, months without)."""
    wanted = months_between(start, end)
    stored = set(Storage(settings.datamart_uri).list_partitions(PREDICTIONS))
    return [m for m in wanted if m in stored], [m for m in wanted if m not in stored]


def read_predictions(storage: Storage, months: list[str]) -> pl.DataFrame:
    frames = []
    for month in months:
        part = storage.read_partition(PREDICTIONS, month)
        missing = [c for c in ("encounter_id", "risk", "algorithm", "version") if c not in part.columns]
        if missing:
            raise ReadmitInputError(
                f"predictions lack column(s) {', '.join(missing)}",
                source=storage.uri_of(storage.partition_path(PREDICTIONS, month)),
                fix=f"rescore the month with this readmit version (`readmit predict --month {month}`)",
            )
        part = part.select([c for c in _PREDICTION_COLUMNS if c in part.columns])
        frames.append(part.with_columns(pl.lit(month).alias(MONTH)))
    return pl.concat(frames, how="diagonal_relaxed")


def resolve_model(registry: Any, alias: str, predictions: pl.DataFrame) -> tuple[str, str]:
    """(algorithm, version) the alias points at; else the latest one that scored rows under it."""
    from readmit.registry.aliases import get_alias

    target = get_alias(registry, alias)
    if target:
        return target["algorithm"], str(target["version"])
    rows = predictions.filter(pl.col("alias") == alias) if "alias" in predictions.columns else predictions.clear()
    if rows.height:
        order = "scored_at" if "scored_at" in rows.columns else "version"
        last = rows.sort(order).row(-1, named=True)
        return last["algorithm"], str(last["version"])
    raise ReadmitInputError(
        f"no model carries the alias {alias!r} and no prediction was scored under it",
        source=registry.location(""),
        fix="promote a model (`readmit promote`) and score the months (`readmit predict`), or pass --alias",
    )


def _pooled(frame: pl.DataFrame, labelled: bool) -> Observed | Estimated | None:
    if frame.height == 0:
        return None
    p = frame["risk"].to_numpy()
    if labelled:
        return Observed.model_validate(jsonable(observed_performance(frame[LABEL].to_numpy(), p)))
    return Estimated.model_validate(jsonable(estimated_performance(p)))


def _scored_rows(settings: Settings, storage: Storage, registry: Any, start_month: str, end_month: str,
                 alias: str, say: Progress) -> tuple[pl.DataFrame, str, str, list[str], list[str]]:
    """(the rows the alias's model scored, its algorithm, its version, months without predictions,
    months scored by another model)."""
    months, without = prediction_months(settings, start_month, end_month)
    if not months:
        raise ReadmitInputError(
            f"no predictions for {start_month}..{end_month}",
            source=storage.uri_of(PREDICTIONS),
            fix=f"score the months first (`readmit predict --start {start_month} --end {end_month}`)",
        )
    say(f"reading predictions of {len(months)} month(s)")
    predictions = read_predictions(storage, months)
    algorithm, version = resolve_model(registry, alias, predictions)
    scored = predictions.filter((pl.col("algorithm") == algorithm) & (pl.col("version").cast(pl.String) == version))
    if scored.height == 0:
        raise ReadmitInputError(
            f"no prediction of {start_month}..{end_month} was made by {algorithm} v{version} ({alias})",
            source=storage.uri_of(PREDICTIONS),
            fix=f"rescore the months with it (`readmit predict --start {start_month} --end {end_month}`)",
        )
    other = [m for m in months if m not in set(scored[MONTH].to_list())]
    return scored, algorithm, version, without, other


def _with_features(storage: Storage, scored: pl.DataFrame, months: list[str], features: list[str]) -> pl.DataFrame:
    """The scored rows joined to their gold features (for the drift)."""
    no_gold = sorted(set(months) - set(storage.list_partitions(FEATURE_STORE)))
    if no_gold:
        raise ReadmitInputError(
            f"predictions of {', '.join(no_gold)} have no gold feature_store partition to compare features with",
            source=storage.uri_of(FEATURE_STORE),
            fix=f"rebuild gold for them (`readmit medallion --start {no_gold[0]} --end {no_gold[-1]}`)",
        )
    gold = storage.read_table(FEATURE_STORE, months, columns=["encounter_id", *features])
    return scored.join(gold, on="encounter_id", how="left")


def _labelled(storage: Storage, scored: pl.DataFrame, mature: list[str]) -> pl.DataFrame:
    """The scored rows of mature months joined to their labels (rows without one dropped)."""
    label_months = [m for m in mature if m in set(storage.list_partitions(LABEL_STORE))]
    if not label_months:
        return scored.clear().with_columns(pl.lit(None, dtype=pl.Int8).alias(LABEL))  # scored's columns, no rows
    labels = storage.read_table(LABEL_STORE, label_months, columns=["encounter_id", LABEL])
    return scored.filter(pl.col(MONTH).is_in(label_months)).join(
        labels.unique("encounter_id"), on="encounter_id", how="inner").filter(pl.col(LABEL).is_not_null())


def month_results(months: list[str], drift: dict[str, dict[str, Any]], mature: list[str], scored: pl.DataFrame,
                  labelled: pl.DataFrame, cfg: MonitoringSection) -> list[MonthResult]:
    """Each month's drift with its bands, and its observed (mature) or estimated performance."""
    results = []
    for m in months:
        entry = MonthResult.model_validate({"month": m, **jsonable(drift[m])})
        worst = max(entry.csi.items(), key=lambda kv: kv[1] if kv[1] is not None else -1.0, default=(None, None))
        entry.bands = Bands(score_psi=band(entry.score_psi, cfg), csi_max_feature=worst[0], csi_max=worst[1],
                            csi_max_band=band(worst[1], cfg))
        known = labelled.filter(pl.col(MONTH) == m)
        if m in mature and known.height:
            entry.labels, entry.observed = "mature", _pooled(known, True)
        elif m in mature:  # mature, but no outcome known yet (blank readmitted): estimated until one arrives
            entry.labels, entry.estimated = "mature", _pooled(scored.filter(pl.col(MONTH) == m), False)
        else:
            entry.labels, entry.estimated = "immature", _pooled(scored.filter(pl.col(MONTH) == m), False)
        results.append(entry)
    return results


def run_monitoring(
    settings: Settings,
    *,
    start_month: str,
    end_month: str,
    as_of: date | None = None,
    alias: str = "champion",
    progress: Progress | None = None,
) -> MonitoringRecord:
    """Monitor the model ``alias`` points at over [start_month, end_month]; write and return the record."""
    from readmit.registry import Registry

    def say(message: str) -> None:
        if progress:
            progress(message)

    as_of = as_of or date.today()
    cfg = settings.config
    storage = Storage(settings.datamart_uri)
    registry = Registry.for_settings(settings)
    scored, algorithm, version, without, other = _scored_rows(settings, storage, registry, start_month, end_month,
                                                              alias, say)
    months_scored = sorted(set(scored[MONTH].to_list()))
    model, metadata = registry.load(algorithm, version)
    say(f"reference profile of {algorithm} v{version}")
    profile = ensure_profile(settings, registry, algorithm, version, model, metadata)
    frame = _with_features(storage, scored, months_scored, [*profile["numeric"], *profile["categorical"]])
    say(f"drift of {frame.height} rows x {len(profile['numeric']) + len(profile['categorical'])} features")
    drift = drift_by_month(frame, profile, score="risk")

    mature = [m for m in months_scored if is_mature(m, as_of, cfg.training_config.label_maturity_days)]
    immature = [m for m in months_scored if m not in mature]
    labelled = _labelled(storage, scored, mature)
    months = month_results(months_scored, drift, mature, scored, labelled, cfg.monitoring_config)
    summary = Summary(
        mature_months=mature,
        immature_months=immature,
        observed=_pooled(labelled, True) if labelled.height else None,
        estimated=_pooled(scored.filter(pl.col(MONTH).is_in(immature)), False) if immature else None,
        test_auc_roc=((metadata.get("performance") or {}).get("test") or {}).get("auc_roc"),
        months_without_predictions=without,
        months_scored_by_another_model=other,
        profile_source=profile.get("source"),
    )
    decision = decide(months, summary, cfg.monitoring_config, test_auc=summary.test_auc_roc)
    say("online predictions (the service's audit records)")
    online = online_source(registry, storage, months_between(start_month, end_month), algorithm, version)
    say("clinician feedback on the CDS Hooks cards")
    feedback = feedback_summary(registry, months=months_between(start_month, end_month), model=(algorithm, version),
                                band_order=cfg.inference_config.risk_bands.labels)
    run_at = datetime.now(UTC)
    record = MonitoringRecord(
        run_at=run_at.isoformat(), as_of=as_of.isoformat(), start=start_month, end=end_month,
        model=ModelRef(algorithm=algorithm, version=version, alias=alias), months=months, summary=summary,
        decision=decision, thresholds=cfg.monitoring_config.model_dump(mode="json"), online=online,
        feedback=feedback,
    )
    record.path = write_record(settings, "monitoring", LATEST, run_at, record.file_content())["path"]
    say(f"decision: {decision.action} ({'; '.join(decision.reasons)})")
    return record


def read_latest(settings: Settings) -> MonitoringRecord | None:
    """The latest monitoring record, or None before the first run."""
    storage = Storage(settings.registry_uri)
    rel = f"{monitoring_folder(settings.config.model.model_name)}/{LATEST}"
    try:
        data = storage.read_json(rel)
    except FileNotFoundError:
        return None
    return MonitoringRecord.read(data, storage.uri_of(rel))


def monitor_step(settings: Settings, *, start_month: str, end_month: str,
                 progress: Progress | None = None) -> dict[str, Any]:
    """The monitoring graph's step: a run as of today for the champion; returns the decision."""
    record = run_monitoring(settings, start_month=start_month, end_month=end_month, progress=progress)
    return {
        "action": record.decision.action,
        "reasons": record.decision.reasons,
        "model": record.model.model_dump(),
        "months": [m.month for m in record.months],
        "record": record.path,
    }
