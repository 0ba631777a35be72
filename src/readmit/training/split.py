"""Load the gold tables and cut them into the train / test / out-of-time windows.

Rows are assigned to a window by ``snapshot_date`` (both ends inclusive), never by partition
name, so a window may start or end inside a month (``temporal_window_mode: "absolute"``: the
windows are the configured calendar dates).

Purged windows: a row's label looks ``label_maturity_days`` ahead of its date. A training row
whose label horizon reaches into the test window (``snapshot_date + label_maturity_days >=
test.start_date``) is left out of training, and a test row whose horizon reaches into the
out-of-time window is left out of test, so no label is about a stay inside a later window. The
rows left out are counted per window (``GoldData.purged``).

Features and labels are joined on the key columns; encounters ending in death or hospice (the
``death_or_hospice`` flag) are left out when ``training_config.exclude_death_hospice`` is set,
and counted.

Patient sample: a training window with more rows than ``training_config.max_rows`` is cut to
about that many rows by :func:`sample_patients`, whole patients at a time, chosen by a stable
hash of the patient number (the same sample on every run, machine and engine).

Light on purpose (polars only): Airflow parses DAGs that import readmit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from readmit.config import Settings, TemporalSplits, Window
from readmit.data import features
from readmit.data.features import DEATH_OR_HOSPICE, death_or_hospice
from readmit.data.layers import FEATURE_STORE, LABEL, LABEL_STORE
from readmit.errors import ReadmitInputError
from readmit.months import months_spanning
from readmit.runtime import Progress
from readmit.storage import Storage

WINDOWS: tuple[str, ...] = ("train", "test", "oot")
# model_config.target -> the label_store column holding it (one target today)
TARGETS: dict[str, str] = {"readmitted_within_30_days": LABEL}
DATE = "snapshot_date"


@dataclass(frozen=True)
class FeatureSpec:
    """Which gold columns are keys, flags, numeric and categorical features."""

    keys: tuple[str, ...]
    flags: tuple[str, ...]
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    @classmethod
    def default(cls) -> FeatureSpec:
        """The definitions in :mod:`readmit.data.features`."""
        return cls(features.KEY_COLUMNS, features.FLAG_COLUMNS, features.NUMERIC_FEATURES,
                   features.CATEGORICAL_FEATURES)


def months_of(window: Window) -> list[str]:
    """Every calendar month ``YYYY-MM`` that overlaps the window."""
    return months_spanning(window.start_date, window.end_date)


def window_expr(splits: TemporalSplits) -> pl.Expr:
    """``"train" | "test" | "oot" | null`` for each row, from its snapshot_date."""
    expr = pl.lit(None, dtype=pl.String)
    for name in reversed(WINDOWS):
        w = getattr(splits, name)
        expr = pl.when(pl.col(DATE).is_between(w.start_date, w.end_date)).then(pl.lit(name)).otherwise(expr)
    return expr


def purge_expr(splits: TemporalSplits, maturity_days: int) -> pl.Expr:
    """True for a row whose label horizon reaches into the next window (see the module doc)."""
    horizon = pl.col(DATE) + pl.duration(days=maturity_days)
    return (
        ((pl.col("window") == "train") & (horizon >= splits.test.start_date))
        | ((pl.col("window") == "test") & (horizon >= splits.oot.start_date))
    )


@dataclass
class GoldData:
    """The joined gold rows of the three windows, and where they came from."""

    frame: pl.DataFrame  # keys, features, flags, label, "window" (purged rows already left out)
    spec: FeatureSpec
    partitions: dict[str, dict[str, str]]  # table -> month -> fingerprint
    excluded_death_hospice: dict[str, int] = field(default_factory=dict)
    unlabelled: int = 0
    purged: dict[str, int] = field(default_factory=dict)  # window -> rows left out (label horizon)

    def window(self, name: str) -> pl.DataFrame:
        return self.frame.filter(pl.col("window") == name)

    def counts(self) -> dict[str, dict[str, int]]:
        out = {}
        for name in WINDOWS:
            part = self.frame.filter(pl.col("window") == name)
            out[name] = {"rows": part.height, "positives": int(part[LABEL].sum() or 0)}
        return out


def gold_months(storage: Storage, splits: TemporalSplits) -> dict[str, list[str]]:
    """Per table, the stored months that overlap any window."""
    wanted = set()
    for name in WINDOWS:
        wanted.update(months_of(getattr(splits, name)))
    return {t: [m for m in storage.list_partitions(t) if m in wanted] for t in (FEATURE_STORE, LABEL_STORE)}


def load_gold(
    settings: Settings,
    *,
    fingerprints: bool = True,
    progress: Progress | None = None,
) -> GoldData:
    """Read every gold partition overlapping a window, join labels, tag rows with their window."""
    cfg = settings.config
    splits = cfg.temporal_splits
    storage = Storage(settings.datamart_uri)
    months = gold_months(storage, splits)
    if not months[FEATURE_STORE] or not months[LABEL_STORE]:
        raise ReadmitInputError(
            "no gold partitions inside the configured windows "
            f"({splits.train.start_date} .. {splits.oot.end_date})",
            source=storage.uri_of("gold"),
            fix="build the gold tables first (`readmit medallion`), or correct temporal_splits",
        )
    if progress:
        progress(f"reading {len(months[FEATURE_STORE])} feature and {len(months[LABEL_STORE])} label partitions")
    rows = storage.read_table(FEATURE_STORE, months[FEATURE_STORE])
    spec = FeatureSpec.default()
    missing = [c for c in (*spec.keys, *spec.features) if c not in rows.columns]
    if missing:
        raise ReadmitInputError(
            f"gold feature_store lacks column(s) {', '.join(missing)}",
            source=storage.uri_of(FEATURE_STORE),
            fix="rebuild gold with this readmit version (`readmit medallion --layer gold`)",
        )
    label = TARGETS[cfg.model.target]
    labels = storage.read_table(LABEL_STORE, months[LABEL_STORE])
    if label not in labels.columns:
        raise ReadmitInputError(
            f"gold label_store has no {label} column (the label of model_config.target={cfg.model.target})",
            source=storage.uri_of(LABEL_STORE),
            fix="rebuild gold (`readmit medallion --layer gold`)",
        )
    labels = labels.select("encounter_id", pl.col(label).alias(LABEL)).unique("encounter_id", keep="first")
    joined = rows.join(labels, on="encounter_id", how="left")
    joined = joined.with_columns(window_expr(splits).alias("window")).filter(pl.col("window").is_not_null())
    unlabelled = int(joined[LABEL].null_count())
    joined = joined.filter(pl.col(LABEL).is_not_null())
    horizon = purge_expr(splits, cfg.training_config.label_maturity_days)
    purged_counts = joined.filter(horizon).group_by("window").len()
    purged = {w: 0 for w in WINDOWS}
    purged.update(dict(zip(purged_counts["window"].to_list(), purged_counts["len"].to_list(), strict=True)))
    joined = joined.filter(~horizon)
    excluded: dict[str, int] = {}
    if cfg.training_config.exclude_death_hospice:
        if DEATH_OR_HOSPICE not in joined.columns:
            raise ReadmitInputError(
                f"gold feature_store has no {DEATH_OR_HOSPICE} column",
                source=storage.uri_of(FEATURE_STORE),
                fix="rebuild gold (`readmit medallion --layer gold`) or set "
                "training_config.exclude_death_hospice to false",
            )
        flag = death_or_hospice()
        counts = joined.filter(flag).group_by("window").len()
        excluded = {w: 0 for w in WINDOWS}
        excluded.update(dict(zip(counts["window"].to_list(), counts["len"].to_list(), strict=True)))
        excluded["total"] = sum(excluded[w] for w in WINDOWS)
        joined = joined.filter(~flag)
    joined = joined.with_columns(pl.col(LABEL).cast(pl.Int8)).sort(DATE, "encounter_id")
    parts: dict[str, dict[str, str]] = {}
    for table, ms in months.items():
        parts[table] = {m: (storage.partition_fingerprint(table, m) if fingerprints else "") for m in ms}
    return GoldData(joined, spec, parts, excluded, unlabelled, purged)


# -- patient sample --------------------------------------------------------------------------------

SAMPLE_RULE = ("a patient is kept when the first 8 bytes of sha256('{seed}:{patient_nbr}'), read as a "
               "big-endian unsigned integer, are below floor(fraction * 2**64); fraction = max_rows / rows")


def patient_hash(seed: int, patient_nbr: int) -> int:
    """A patient's stable 64-bit hash: sha256 of ``"{seed}:{patient_nbr}"``, its first 8 bytes.

    The same number in any process, library version or engine (``sha2`` in Spark and
    ``sha256`` in DuckDB give the same digest), unlike Polars' or Python's own hashes.
    """
    digest = hashlib.sha256(f"{seed}:{int(patient_nbr)}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def sample_patients(frame: pl.DataFrame, max_rows: int | None, seed: int) -> tuple[pl.DataFrame, dict[str, Any] | None]:
    """``frame`` cut to about ``max_rows`` rows, whole patients at a time; and what was done.

    Nothing happens (``(frame, None)``) when ``max_rows`` is None or ``frame`` has no more rows
    than it. Otherwise every patient is kept or dropped by :data:`SAMPLE_RULE`, so the expected
    number of rows kept is ``max_rows`` and the order of the kept rows is unchanged. The returned
    dict (rows and patients before and after, the fraction, the seed and the rule) goes into the
    model's metadata.
    """
    rows = frame.height
    if max_rows is None or rows <= max_rows:
        return frame, None
    fraction = max_rows / rows
    limit = int(fraction * 2**64)
    patients = frame["patient_nbr"].unique().to_numpy()
    kept = np.fromiter((patient_hash(seed, p) < limit for p in patients.tolist()), dtype=bool, count=patients.size)
    sampled = frame.filter(pl.col("patient_nbr").is_in(pl.Series(patients[kept])))
    info = {
        "max_rows": max_rows,
        "rows_before": rows,
        "rows_after": sampled.height,
        "patients_before": int(patients.size),
        "patients_after": int(kept.sum()),
        "fraction": fraction,
        "seed": seed,
        "rule": SAMPLE_RULE,
    }
    return sampled, info


def describe_sample(info: dict[str, Any] | None) -> str:
    """One line for training's progress output."""
    if info is None:
        return "training on every row of the training window (training_config.max_rows not reached)"
    return (f"training on a patient sample: {info['rows_after']:,} of {info['rows_before']:,} rows, "
            f"{info['patients_after']:,} of {info['patients_before']:,} patients (fraction "
            f"{info['fraction']:.4f} of training_config.max_rows {info['max_rows']:,}; stable hash of patient_nbr)")
