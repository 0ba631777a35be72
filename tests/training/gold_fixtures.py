"""Synthetic gold tables (feature_store + label_store) with the real gold shape, and fixtures.

Loaded for the whole suite through ``pytest_plugins`` in tests/conftest.py, so the checks,
registry, comparison and CLI tests share them.

The columns come from :mod:`readmit.data.features` (keys, every feature with its gold dtype, the
death/hospice flag), so the synthetic gold follows the feature definitions when they change. The
label carries a modest signal (prior inpatient visits, earlier encounters, age, length of stay,
discharge to a nursing facility), like the real data: a good model reaches a ROC-AUC near 0.7.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from read_only import shared_read_only
from readmit.config import load_settings
from readmit.data import features as F
from readmit.data.layers import FEATURE_STORE, LABEL_STORE
from readmit.storage import Storage

FIRST_DAY = date(1999, 1, 1)
LAST_DAY = date(2008, 12, 31)

_VOCAB: dict[str, list[str]] = {
    "race": ["Caucasian", "AfricanAmerican", "Hispanic", "Asian", "Other", "Missing"],
    "gender": ["Female", "Male"],
    "admission_type": ["1", "2", "3", "5", "6"],
    "discharge_disposition": ["1", "3", "6", "2", "11", "18"],
    "admission_source": ["7", "1", "4", "6"],
    "payer_group": ["Medicare", "Medicaid", "SelfPay", "Missing", "Private/Other"],
    "specialty_group": ["InternalMedicine", "Family/GeneralPractice", "Emergency/Trauma", "Cardiology",
                        "Surgery", "Missing", "Other"],
}
_DIAG = ["Circulatory", "Respiratory", "Digestive", "Diabetes", "Injury", "Musculoskeletal",
         "Genitourinary", "Neoplasms", "Other", "Missing"]
_WEIGHTS = {
    "race": [0.74, 0.19, 0.02, 0.01, 0.015, 0.025],
    "discharge_disposition": [0.6, 0.14, 0.13, 0.08, 0.03, 0.02],
}


def synthetic_gold_frames(rows: int = 6000, seed: int = 7, first_day: date = FIRST_DAY,
                          last_day: date = LAST_DAY) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(feature_store rows, label_store rows) spread evenly over [first_day, last_day]."""
    rng = np.random.default_rng(seed)
    n = rows
    days = (last_day - first_day).days + 1
    day = (np.arange(n) * days) // n
    snapshot = [first_day + timedelta(days=int(d)) for d in day]
    patients = rng.integers(1, max(2, int(n * 0.7)), n)
    cols: dict[str, Any] = {
        "encounter_id": np.arange(1, n + 1, dtype=np.int64) * 7 + 1000,
        "patient_nbr": patients.astype(np.int64),
        "snapshot_date": snapshot,
    }
    inpatient = rng.poisson(0.6, n)
    prior = rng.poisson(0.5, n)
    age = rng.choice([35, 45, 55, 65, 75, 85, 95], n, p=[0.05, 0.1, 0.17, 0.23, 0.26, 0.16, 0.03])
    stay = rng.integers(1, 15, n)
    for name in F.NUMERIC_FEATURES:
        if name == "age_midpoint":
            values = age.astype(float)
        elif name == "number_inpatient":
            values = inpatient
        elif name == "prior_encounters":
            values = prior
        elif name == "time_in_hospital":
            values = stay
        elif name == "utilisation":
            values = inpatient + stay / 7 + rng.poisson(0.5, n)
        else:
            values = rng.poisson(1.5, n)
        cols[name] = values
    for name in F.CATEGORICAL_FEATURES:
        vocab = _VOCAB.get(name, _DIAG if name.startswith("diag_") else ["A", "B", "C"])
        weights = _WEIGHTS.get(name)
        cols[name] = rng.choice(vocab, n, p=weights).tolist()
    frame = pl.DataFrame(cols)
    # a missing age now and then, a null "days since" when there is no earlier encounter
    frame = frame.with_columns(
        pl.when(pl.Series(rng.random(n) < 0.01)).then(None).otherwise(pl.col("age_midpoint")).alias("age_midpoint"),
    )
    if "days_since_prior_encounter" in frame.columns:
        frame = frame.with_columns(
            pl.when(pl.col("prior_encounters") == 0).then(None)
            .otherwise(pl.col("days_since_prior_encounter") * 30).alias("days_since_prior_encounter")
        )
    dead = (frame["discharge_disposition"] == "11").to_numpy() | (rng.random(n) < 0.005)
    frame = frame.with_columns(pl.Series("death_or_hospice", dead))
    logit = (-3.0 + 0.8 * inpatient + 0.5 * prior + 0.02 * (age - 65) + 0.08 * stay
             + 0.8 * (frame["discharge_disposition"] == "3").to_numpy() + rng.normal(0, 0.5, n))
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))) & ~dead
    dtypes = {c: t for c, t in F.FEATURE_DTYPES.items() if c in frame.columns}
    features = frame.select(*F.KEY_COLUMNS, *F.FEATURE_COLUMNS, *F.FLAG_COLUMNS).cast(
        {"snapshot_date": pl.Date, **dtypes})
    other = np.where(rng.random(n) < 0.4, ">30", "NO")
    labels = features.select(*F.KEY_COLUMNS).with_columns(
        pl.Series("readmitted", np.where(label, "<30", other)),
        pl.Series("label", label.astype(np.int8), dtype=pl.Int8),
    )
    return features, labels


def write_gold(uri: str, features: pl.DataFrame, labels: pl.DataFrame, *,
               tables: tuple[str, ...] = (FEATURE_STORE, LABEL_STORE)) -> list[str]:
    """Write both tables as monthly partitions under ``uri``; return the months."""
    storage = Storage(uri)
    months = []
    for table, frame in ((FEATURE_STORE, features), (LABEL_STORE, labels)):
        if table not in tables:
            continue
        tagged = frame.with_columns(pl.col("snapshot_date").dt.strftime("%Y-%m").alias("_m"))
        for (month,), part in tagged.partition_by("_m", as_dict=True, maintain_order=True).items():
            storage.write_partition(table, month, part.drop("_m"))
            months.append(month)
    return sorted(set(months))


SMALL_BUDGET: dict[str, Any] = {
    "training_config": {
        "hyperparameter_tuning": {"n_iter": 2, "cv_folds": 2, "n_jobs": 1},
        "min_train_partitions": 10,
        "min_rows_per_window": 100,
        "min_positives_per_window": 10,
    },
}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture(scope="session")
def synthetic_gold(tmp_path_factory) -> str:
    """A local datamart with synthetic gold for 1999-01 .. 2008-12 (6,000 rows), read-only on disk."""
    root = tmp_path_factory.mktemp("synthetic_datamart")
    write_gold(str(root), *synthetic_gold_frames())
    with shared_read_only(root, "synthetic_gold", "a datamart of its own (write_gold)"):
        yield str(root)


@pytest.fixture
def write_config(tmp_path) -> Callable[..., str]:
    """write_config(**overrides) -> path of a config JSON: small budget + the overrides (nested)."""
    counter = {"n": 0}

    def make(extra: dict[str, Any] | None = None, *, base: dict[str, Any] | None = None) -> str:
        counter["n"] += 1
        path = Path(tmp_path) / f"config_{counter['n']}.json"
        path.write_text(json.dumps(_merge(SMALL_BUDGET if base is None else base, extra or {}), default=str))
        return str(path)

    return make


@pytest.fixture
def make_settings(tmp_path, write_config, synthetic_gold) -> Callable[..., Any]:
    """make_settings(extra_config=None, datamart=synthetic gold, registry=tmp) -> Settings."""

    def make(extra: dict[str, Any] | None = None, *, datamart: str | None = None, registry: str | None = None):
        return load_settings(write_config(extra), datamart=datamart or synthetic_gold,
                             registry=registry or str(Path(tmp_path) / "registry"))

    return make
