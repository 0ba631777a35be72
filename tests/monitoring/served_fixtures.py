"""A served model on the real UCI data: gold, two calibrated models, aliases, 2008 predictions.

The predictions are written here by hand in ``readmit predict``'s schema
(``gold/model_predictions``, one partition per month, real parquet through Storage), not by
``readmit predict`` itself: a champion (logistic regression) and a challenger (XGBoost), both trained at a small
budget by ``readmit.pipeline.train_algorithm``, which calibrates them inside the training window
(the out-of-time year stays unseen), patients split into the two arms by a
stable hash of ``patient_nbr``. Loaded for the whole suite through ``pytest_plugins`` in
tests/conftest.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from readmit.config import Settings, load_settings
from readmit.data.layers import FEATURE_STORE, PREDICTIONS
from readmit.storage import Storage

OOT_MONTHS = [f"2008-{m:02d}" for m in range(1, 13)]
SMALL = {
    "training_config": {"hyperparameter_tuning": {"n_iter": 1, "cv_folds": 2, "n_jobs": 1},
                        "algorithms": ["logistic_regression", "xgboost"]},
}


@dataclass
class Served:
    settings: Settings
    champion: dict[str, Any]  # {"algorithm", "version"}
    challenger: dict[str, Any]
    models: dict[str, Any]  # arm -> (model, metadata)


def calibrate(settings: Settings, algorithm: str) -> tuple[Any, dict[str, Any]]:
    """Train ``algorithm`` at a small budget and register it: training itself calibrates the
    probabilities (cross-fitted inside the training window), as every served model is."""
    from readmit.pipeline import train_algorithm
    from readmit.registry import Registry

    saved = train_algorithm(settings, algorithm)
    model, _ = Registry(settings.registry_uri, settings.config.model.model_name).load(algorithm, saved["version"])
    return model, saved


def set_alias(settings: Settings, alias: str, saved: dict[str, Any]) -> None:
    """The alias file of the serving contract (models/{name}/aliases/{alias}.json)."""
    Storage(settings.registry_uri).write_json(
        f"models/{settings.config.model.model_name}/aliases/{alias}.json",
        {"alias": alias, "algorithm": saved["algorithm"], "version": saved["version"],
         "set_at": datetime.now(UTC).isoformat(), "by": "tests", "reason": "monitoring tests"})


def arm_of(patients: pl.Expr) -> pl.Expr:
    """A stable 50/50 split of patients (the same patient always lands in the same arm)."""
    return pl.when((patients * 2654435761) % 10000 < 5000).then(pl.lit("champion")).otherwise(pl.lit("challenger"))


def write_predictions(settings: Settings, models: dict[str, tuple[Any, dict[str, Any]]], months: list[str],
                      *, ab: bool = True) -> None:
    """Score gold months as serving does and write gold/model_predictions partitions."""
    from readmit.training import predict_proba

    storage = Storage(settings.datamart_uri)
    for month in months:
        gold = storage.read_partition(FEATURE_STORE, month).filter(~pl.col("death_or_hospice"))
        gold = gold.with_columns(arm_of(pl.col("patient_nbr")).alias("arm") if ab else pl.lit("champion").alias("arm"))
        parts = []
        for arm, (model, meta) in models.items():
            rows = gold.filter(pl.col("arm") == arm)
            if rows.height == 0:
                continue
            risk = predict_proba(model, rows)
            threshold = float((meta.get("threshold") or {}).get("value", 0.5))
            parts.append(rows.select(
                "encounter_id", "patient_nbr", "snapshot_date",
                pl.Series("risk", risk, dtype=pl.Float64),
                pl.Series("flag", risk >= threshold),
                pl.Series("risk_band", np.where(risk >= 0.2, "high", np.where(risk >= 0.1, "medium", "low"))),
                pl.lit([], dtype=pl.List(pl.String)).alias("top_reasons"),
                pl.lit(meta["algorithm"]).alias("algorithm"),
                pl.lit(meta["version"]).alias("version"),
                pl.lit(arm).alias("alias"),
                "arm",
                pl.lit(datetime.now(UTC)).alias("scored_at"),
            ))
        storage.write_partition(PREDICTIONS, month, pl.concat(parts))


def served_on(root: Path, raw: Path, *, registry: str | None = None, datamart: str | None = None) -> Served:
    from readmit.data.medallion import run_medallion

    config = root / "config.json"
    config.write_text(json.dumps(SMALL))
    settings = load_settings(str(config), raw=str(raw), datamart=datamart or str(root / "datamart"),
                             registry=registry or str(root / "registry"))
    run_medallion(settings)
    champion = calibrate(settings, "logistic_regression")
    challenger = calibrate(settings, "xgboost")
    set_alias(settings, "champion", champion[1])
    set_alias(settings, "challenger", challenger[1])
    models = {"champion": champion, "challenger": challenger}
    write_predictions(settings, models, OOT_MONTHS[:11])  # 2008-12 is left unscored
    pick = lambda m: {"algorithm": m[1]["algorithm"], "version": m[1]["version"]}  # noqa: E731
    return Served(settings, pick(champion), pick(challenger), models)


@pytest.fixture(scope="session")
def served(uci_zip, tmp_path_factory) -> Served:
    """Full UCI data, served locally (read-only for tests: copy the registry before writing to it)."""
    return served_on(tmp_path_factory.mktemp("served"), uci_zip)


@pytest.fixture
def own_registry(served, tmp_path):
    """The served settings with a private copy of the registry (tests write records and profiles)."""
    import shutil
    from dataclasses import replace

    target = tmp_path / "registry"
    shutil.copytree(served.settings.registry_uri, target)
    return replace(served.settings, registry_uri=str(target))
