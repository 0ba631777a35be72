"""One monitoring run: predictions + gold of a month range -> drift, performance, decision, record.

Reads ``gold/model_predictions`` (the rows one model scored: the model an alias points at), the
month's ``gold/feature_store`` rows for the features and ``gold/label_store`` for the labels of
mature months; writes one record per run under ``{registry_uri}/monitoring/{model_name}/``::

    monitoring_{YYYYMMDDTHHMMSS}.json   this run (never rewritten)
    latest_monitoring.json              a copy of the latest run

The record: ``run_at, as_of, start, end, model {algorithm, version, alias}, months [...],
summary {...}, decision {action, reasons}`` (see :func:`run_monitoring`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from readmit.config import Settings
from readmit.data.layers import FEATURE_STORE, LABEL, LABEL_STORE, PREDICTIONS
from readmit.errors import ReadmitInputError
from readmit.jsonsafe import jsonable
from readmit.monitoring.decisions import band, decide
from readmit.monitoring.drift import MONTH, drift_by_month
from readmit.monitoring.performance import estimated_performance, observed_performance
from readmit.monitoring.profile import ensure_profile
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


def _pooled(frame: pl.DataFrame, labelled: bool) -> dict[str, Any] | None:
    if frame.height == 0:
        return None
    p = frame["risk"].to_numpy()
    return observed_performance(frame[LABEL].to_numpy(), p) if labelled else estimated_performance(p)


def run_monitoring(
    settings: Settings,
    *,
    start_month: str,
    end_month: str,
    as_of: date | None = None,
    alias: str = "champion",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Monitor the model ``alias`` points at over [start_month, end_month]; write and return the record."""
    from readmit.registry import Registry

    def say(message: str) -> None:
        if progress:
            progress(message)

    as_of = as_of or date.today()
    cfg = settings.config
    storage = Storage(settings.datamart_uri)
    registry = Registry.for_settings(settings)
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
    months_scored = sorted(set(scored[MONTH].to_list()))
    other = [m for m in months if m not in months_scored]
    if not months_scored:
        raise ReadmitInputError(
            f"no prediction of {start_month}..{end_month} was made by {algorithm} v{version} ({alias})",
            source=storage.uri_of(PREDICTIONS),
            fix=f"rescore the months with it (`readmit predict --start {start_month} --end {end_month}`)",
        )
    model, metadata = registry.load(algorithm, version)
    say(f"reference profile of {algorithm} v{version}")
    profile = ensure_profile(settings, registry, algorithm, version, model, metadata)
    features = [*profile["numeric"], *profile["categorical"]]
    no_gold = sorted(set(months_scored) - set(storage.list_partitions(FEATURE_STORE)))
    if no_gold:
        raise ReadmitInputError(
            f"predictions of {', '.join(no_gold)} have no gold feature_store partition to compare features with",
            source=storage.uri_of(FEATURE_STORE),
            fix=f"rebuild gold for them (`readmit medallion --start {no_gold[0]} --end {no_gold[-1]}`)",
        )
    gold = storage.read_table(FEATURE_STORE, months_scored, columns=["encounter_id", *features])
    frame = scored.join(gold, on="encounter_id", how="left")
    say(f"drift of {frame.height} rows x {len(features)} features")
    drift = drift_by_month(frame, profile, score="risk")

    maturity = cfg.training_config.label_maturity_days
    mature = [m for m in months_scored if is_mature(m, as_of, maturity)]
    immature = [m for m in months_scored if m not in mature]
    labelled = pl.DataFrame(schema={"encounter_id": pl.Int64, LABEL: pl.Int8})
    label_months = [m for m in mature if m in set(storage.list_partitions(LABEL_STORE))]
    if label_months:
        labels = storage.read_table(LABEL_STORE, label_months, columns=["encounter_id", LABEL])
        labelled = scored.filter(pl.col(MONTH).is_in(label_months)).join(
            labels.unique("encounter_id"), on="encounter_id", how="inner").filter(pl.col(LABEL).is_not_null())
    record_months = []
    mcfg = cfg.monitoring_config
    for m in months_scored:
        entry = {"month": m, **drift[m]}
        worst = max(entry["csi"].items(), key=lambda kv: kv[1], default=(None, None))
        entry["bands"] = {"score_psi": band(entry["score_psi"], mcfg), "csi_max_feature": worst[0],
                          "csi_max": worst[1], "csi_max_band": band(worst[1], mcfg)}
        if m in mature:
            rows = labelled.filter(pl.col(MONTH) == m)
            entry |= {"labels": "mature", "observed": _pooled(rows, True), "estimated": None}
        else:
            rows = scored.filter(pl.col(MONTH) == m)
            entry |= {"labels": "immature", "observed": None, "estimated": _pooled(rows, False)}
        record_months.append(entry)
    summary = {
        "mature_months": mature,
        "immature_months": immature,
        "observed": _pooled(labelled, True) if labelled.height else None,
        "estimated": _pooled(scored.filter(pl.col(MONTH).is_in(immature)), False) if immature else None,
        "test_auc_roc": ((metadata.get("performance") or {}).get("test") or {}).get("auc_roc"),
        "months_without_predictions": without,
        "months_scored_by_another_model": other,
        "profile_source": profile.get("source"),
    }
    decision = decide(record_months, summary, cfg.monitoring_config, test_auc=summary["test_auc_roc"])
    run_at = datetime.now(UTC)
    record = {
        "run_at": run_at.isoformat(),
        "as_of": as_of.isoformat(),
        "start": start_month,
        "end": end_month,
        "model": {"algorithm": algorithm, "version": version, "alias": alias},
        "months": record_months,
        "summary": summary,
        "decision": decision,
        "thresholds": cfg.monitoring_config.model_dump(mode="json"),
    }
    record = write_record(settings, "monitoring", LATEST, run_at, jsonable(record))
    say(f"decision: {decision['action']} ({'; '.join(decision['reasons'])})")
    return record


def read_latest(settings: Settings) -> dict[str, Any] | None:
    """The latest monitoring record, or None before the first run."""
    try:
        return Storage(settings.registry_uri).read_json(f"{monitoring_folder(settings.config.model.model_name)}/{LATEST}")
    except FileNotFoundError:
        return None



def monitor_step(settings: Settings, *, start_month: str, end_month: str,
                 progress: Progress | None = None) -> dict[str, Any]:
    """The monitoring graph's step: a run as of today for the champion; returns the decision."""
    record = run_monitoring(settings, start_month=start_month, end_month=end_month, progress=progress)
    return {
        "action": record["decision"]["action"],
        "reasons": record["decision"]["reasons"],
        "model": record["model"],
        "months": [m["month"] for m in record["months"]],
        "record": record["path"],
    }
