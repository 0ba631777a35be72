"""Read what the report shows: gold by month, rejected rows, the registry, predictions, monitoring.

Every reader returns None (or an empty list) when its input does not exist yet, so the report
can say so in one line; a file that exists but cannot be read raises, naming it.
The paths follow the shared contracts (see BRIEF/README): aliases, events and promotion
decisions beside the models, monitoring records and A/B reports under ``monitoring/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from readmit.data.extracts import invalid_codes_by_month, read_ledger
from readmit.data.fetch import KNOWN_SHA256
from readmit.data.layers import BRONZE_TABLE, LABEL_STORE, PREDICTIONS, REJECTED_AREA
from readmit.errors import ArtifactError, ReadmitInputError
from readmit.monitoring.ab import LATEST as LATEST_AB_REPORT
from readmit.monitoring.monitor import LATEST as LATEST_MONITORING
from readmit.monitoring.monitor import monitoring_folder
from readmit.monitoring.record import MonitoringRecord
from readmit.registry import Registry
from readmit.registry.aliases import alias_history, get_aliases, list_decisions
from readmit.storage import Storage


def _json(storage: Storage, rel: str) -> Any:
    """A JSON object, or None when the file does not exist; a corrupt one is an ArtifactError."""
    try:
        raw = storage.read_bytes(rel)
    except FileNotFoundError:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ArtifactError(f"not valid JSON ({exc})", source=storage.uri_of(rel),
                            fix="restore the file or remove it and rerun the step that writes it") from None


# -- data ----------------------------------------------------------------------------------------


def gold_by_month(datamart: Storage) -> pl.DataFrame | None:
    """Encounters and 30-day readmissions per gold month (label_store), or None without gold."""
    months = datamart.list_partitions(LABEL_STORE)
    if not months:
        return None
    labels = datamart.read_table(LABEL_STORE, months, columns=["snapshot_date", "label"])
    return (
        labels.group_by(pl.col("snapshot_date").dt.strftime("%Y-%m").alias("month"))
        .agg(pl.len().alias("rows"), pl.col("label").cast(pl.Int64).sum().alias("readmissions"))
        .with_columns((pl.col("readmissions") / pl.col("rows")).alias("rate"))
        .sort("month")
    )


def rejected_files(datamart: Storage) -> list[dict[str, Any]]:
    """The quarantined raw rows of each bronze run (``rejected/bronze/*.parquet``), newest last."""
    folder = f"{REJECTED_AREA}/bronze"
    out = []
    for name in datamart.listdir(folder):
        if not name.endswith(".parquet"):
            continue
        with datamart.fs.open(datamart.path(f"{folder}/{name}"), "rb") as fh:
            rows = pq.ParquetFile(fh).metadata.num_rows
        out.append({"file": datamart.uri_of(f"{folder}/{name}"), "rows": rows})
    return out


def invalid_codes(datamart: Storage) -> dict[str, int]:
    """Raw rows quarantined for a diagnosis code of neither ICD system, by month (the extract ledger)."""
    return invalid_codes_by_month(read_ledger(datamart))


def source_files(datamart: Storage) -> list[dict[str, Any]]:
    """The raw file(s) bronze was built from: sha256, when ingested, months, and whether it is UCI's."""
    months = datamart.list_partitions(BRONZE_TABLE)
    if not months:
        return []
    try:
        frame = datamart.read_table(BRONZE_TABLE, months, columns=["_source_sha256", "_ingested_at"])
    except ReadmitInputError:  # bronze written before lineage columns existed
        return []
    grouped = frame.group_by("_source_sha256").agg(
        pl.len().alias("rows"), pl.col("_ingested_at").max().alias("ingested_at")).sort("ingested_at")
    return [{"sha256": r["_source_sha256"], "rows": r["rows"], "ingested_at": str(r["ingested_at"]),
             "uci_original": r["_source_sha256"] in KNOWN_SHA256} for r in grouped.iter_rows(named=True)]


def latest_predictions(datamart: Storage) -> tuple[str, pl.DataFrame] | None:
    """The newest month of ``gold/model_predictions`` (its month and rows), or None before any scoring."""
    months = datamart.list_partitions(PREDICTIONS)
    if not months:
        return None
    return months[-1], datamart.read_partition(PREDICTIONS, months[-1])


# -- registry ------------------------------------------------------------------------------------


@dataclass
class RegistryState:
    """The models the report compares and what the registry says about them."""

    candidates: list[dict[str, Any]]  # metadata of each model shown, champion included
    champion: dict[str, Any] | None
    champion_source: str  # "alias champion", "comparison", "best oot ROC-AUC" or "none"
    comparison: dict[str, Any] | None
    aliases: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)


def _metadata(registry: Registry, algorithm: str, version: str = "latest") -> dict[str, Any] | None:
    try:
        return registry.verify(algorithm, version)
    except ArtifactError:
        return None


def label_of(meta: dict[str, Any], others: list[dict[str, Any]]) -> str:
    """The algorithm's name, or ``algorithm vVERSION`` when two shown models share an algorithm."""
    same = [m for m in others if m.get("algorithm") == meta.get("algorithm")]
    return meta["algorithm"] if len(same) <= 1 else f"{meta['algorithm']} v{meta['version']}"


def registry_state(registry: Registry) -> RegistryState:
    """The latest model of every algorithm (the comparison's versions when one exists) and the champion."""
    storage = registry.storage
    comparison = _json(storage, registry.rel("latest_model_comparison.json"))
    aliases = [record for record in get_aliases(registry).values() if record]
    candidates: list[dict[str, Any]] = []
    if comparison:
        for c in comparison.get("candidates", []):
            meta = _metadata(registry, c["algorithm"], c["version"])
            if meta is not None:
                candidates.append(meta)
    shown = {m["algorithm"] for m in candidates}
    for algorithm in registry.algorithms():
        if algorithm not in shown and (meta := _metadata(registry, algorithm)) is not None:
            candidates.append(meta)
    champion, source = None, "none"
    alias = get_aliases(registry)["champion"]
    if alias and alias.get("algorithm") and alias.get("version"):
        champion = next((m for m in candidates if (m["algorithm"], m["version"]) ==
                         (alias["algorithm"], alias["version"])), None)
        champion = champion or _metadata(registry, alias["algorithm"], alias["version"])
        if champion is not None:
            source = "alias champion"
            if champion not in candidates:
                candidates.append(champion)
    if champion is None and comparison:
        rec = comparison.get("recommended", {})
        champion = next((m for m in candidates if (m["algorithm"], m["version"]) ==
                         (rec.get("algorithm"), rec.get("version"))), None)
        source = "comparison" if champion is not None else source
    if champion is None and candidates:
        champion = max(candidates, key=lambda m: (m.get("performance", {}).get("oot", {}).get("auc_roc") or 0))
        source = "best oot ROC-AUC"
    return RegistryState(
        candidates=candidates,
        champion=champion,
        champion_source=source,
        comparison=comparison,
        aliases=aliases,
        events=alias_history(registry),
        decisions=list_decisions(registry),
    )


def monitoring_records(registry: Registry) -> tuple[MonitoringRecord | None, dict[str, Any] | None]:
    """The latest monitoring record and the latest A/B report (None when not written yet)."""
    folder = monitoring_folder(registry.model_name)
    rel = f"{folder}/{LATEST_MONITORING}"
    record = _json(registry.storage, rel)
    return (None if record is None else MonitoringRecord.read(record, registry.storage.uri_of(rel)),
            _json(registry.storage, f"{folder}/{LATEST_AB_REPORT}"))

