"""The reference profile of a model version: what its training window looked like, in bins.

Stored beside the model as ``models/{model_name}/{algorithm}_v{VERSION}_profile.json`` so that
monitoring never needs the training data again::

    {"model_name", "algorithm", "version", "created_at", "source": "training" | "backfill",
     "window": {"start_date", "end_date"}, "rows", "bins",
     "score":       {"edges": [...], "shares": [...], "missing": 0.0, "binning": "quantile"},
     "numeric":     {feature: {"edges": [...], "shares": [...], "missing": share,
                               "binning": "per_value" | "quantile"}},
     "categorical": {feature: {"shares": {value: share}, "missing": share}}}

Numeric bins are right-closed: with edges ``e1 < ... < ek`` bin 0 is ``x <= e1``, bin i is
``e_i < x <= e_(i+1)``, bin k is ``x > ek`` (``k + 1`` bins). A column with no more distinct
values than ``bins`` (a code such as ``discharge_severity``, a 0/1 flag) gets one bin per value:
its edges are its values but the largest (``"binning": "per_value"``; a later value outside the
reference's range counts with the nearest end). Quantile edges would merge a rare value with a
common neighbour and hide its change: the unknown discharge code, 6.8% of the 1999-2005
training window's encounters and 0.1% of 2008's, shared a bin with "home". Any other column
gets the distinct inner quantiles of the reference (``"binning": "quantile"``). Profiles written
before ``binning`` existed have quantile edges throughout and are read as they are: drift needs
only the edges. Missing values (null, NaN) are a bin of their own (``missing``). Categorical
shares are per value; a missing categorical is a null or gold's explicit ``Missing`` category.
Every share is a fraction of all rows, so for a feature ``sum(shares) + missing == 1`` for
numeric ones and ``sum(shares) == 1`` for categorical ones.

A version registered before profiles existed gets one on first use (:func:`ensure_profile`),
computed from the gold training window of that version's ``temporal_splits`` and marked
``"source": "backfill"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from readmit.config import Settings, TemporalSplits
from readmit.data.features import MISSING
from readmit.errors import ArtifactError

SCORE = "score"
MISSING_BIN = -1  # the bin index of a missing numeric value


def profile_name(algorithm: str, version: str) -> str:
    return f"{algorithm}_v{version}_profile.json"


# -- binning, shared with drift -----------------------------------------------------------------


def quantile_edges(values: pl.Series, bins: int) -> list[float]:
    """The distinct inner quantiles (1/bins .. (bins-1)/bins) of the non-missing ``values``.

    Quantiles are observed values (``method="lower"``), so a discrete feature's edges are its own
    values and no bin falls between two of them.
    """
    clean = values.cast(pl.Float64).fill_nan(None).drop_nulls()
    if clean.len() == 0:
        return []
    qs = np.quantile(clean.to_numpy(), np.arange(1, bins) / bins, method="lower")
    return sorted({float(q) for q in qs})


def reference_edges(values: pl.Series, bins: int) -> tuple[list[float], str]:
    """(edges, binning) of one reference column: one bin per value when it has at most ``bins``
    distinct values (``"per_value"``), else :func:`quantile_edges` (``"quantile"``)."""
    distinct = values.cast(pl.Float64).fill_nan(None).drop_nulls().unique().sort().to_list()
    if len(distinct) <= bins:
        return [float(v) for v in distinct[:-1]], "per_value"
    return quantile_edges(values, bins), "quantile"


def numeric_bin(column: str, edges: Sequence[float], *, is_float: bool = True) -> pl.Expr:
    """The bin index of each value (see the module doc); ``MISSING_BIN`` for null or NaN.

    The index is the number of edges below the value, a sum of ``len(edges)`` comparisons
    (about twice as fast in Polars as ``search_sorted`` against a literal).
    """
    value = pl.col(column).fill_nan(None) if is_float else pl.col(column)
    index = pl.sum_horizontal([(value > edge).cast(pl.Int32) for edge in edges]) if edges else pl.lit(0, pl.Int32)
    return pl.when(value.is_null()).then(pl.lit(MISSING_BIN, pl.Int32)).otherwise(index).alias(column)


def count_bins(
    frame: pl.DataFrame | pl.LazyFrame,
    numeric: dict[str, Sequence[float]],
    categorical: Iterable[str],
    by: str | None = None,
) -> dict[str, pl.DataFrame]:
    """Row counts per (``by``,) bin for every numeric column and per value for every categorical one.

    One ``group_by`` per column, all collected together (Polars runs them in parallel over the
    same frame); the result per column has columns ``[by,] <column>, len``. Integer and
    categorical columns are first counted per distinct value (a cheap group key; gold's counts
    have few distinct values), and only that small table is binned or turned into strings (a
    missing categorical, null or ``Missing``, becomes null). Float columns (the score) are binned
    row by row.
    """
    lf = frame.lazy()
    schema = lf.collect_schema()
    keys = [by] if by else []
    floats = {c for c in numeric if schema[c].is_float()}
    queries = [lf.group_by(*keys, numeric_bin(c, e) if c in floats else pl.col(c)).agg(pl.len())
               for c, e in numeric.items()]
    cats = list(categorical)
    queries += [lf.group_by(*keys, c).agg(pl.len()) for c in cats]
    frames = pl.collect_all(queries)
    out = {}
    for (c, edges), counts in zip(numeric.items(), frames[: len(numeric)], strict=True):
        if c not in floats:
            counts = counts.group_by(*keys, numeric_bin(c, edges, is_float=False)).agg(pl.col("len").sum())
        out[c] = counts
    for c, counts in zip(cats, frames[len(numeric):], strict=True):
        value = pl.col(c).cast(pl.String)
        out[c] = counts.with_columns(pl.when(value == MISSING).then(None).otherwise(value).alias(c))
    return out


def numeric_shares(counts: pl.DataFrame, column: str, n_edges: int, rows: int) -> tuple[list[float], float]:
    """(value-bin shares, missing share) from one column's counts (one month or the whole frame)."""
    out = np.zeros(n_edges + 1)
    missing = 0
    for index, count in zip(counts[column].to_list(), counts["len"].to_list(), strict=True):
        if index == MISSING_BIN:
            missing += count
        else:
            out[index] += count
    total = max(rows, 1)
    return (out / total).tolist(), missing / total


def categorical_shares(counts: pl.DataFrame, column: str, rows: int) -> tuple[dict[str, float], float]:
    """({value: share}, missing share) from one column's counts."""
    total = max(rows, 1)
    shares: dict[str, float] = {}
    missing = 0
    for value, count in zip(counts[column].to_list(), counts["len"].to_list(), strict=True):
        if value is None:
            missing += count
        else:
            shares[value] = shares.get(value, 0) + count / total
    return dict(sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))), missing / total


# -- building and storing ----------------------------------------------------------------------


def build_profile(
    frame: pl.DataFrame,
    scores: np.ndarray,
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    bins: int = 10,
) -> dict[str, Any]:
    """The profile of one reference frame (gold feature rows) and the model's scores on it."""
    data = frame.select(*numeric, *categorical).with_columns(pl.Series(SCORE, np.asarray(scores, dtype=np.float64)))
    rows = data.height
    chosen = {c: reference_edges(data[c], bins) for c in (SCORE, *numeric)}
    edges = {c: e for c, (e, _) in chosen.items()}
    counts = count_bins(data, edges, categorical)
    binned: dict[str, dict[str, Any]] = {}
    for column in (SCORE, *numeric):
        shares, missing = numeric_shares(counts[column], column, len(edges[column]), rows)
        binned[column] = {"edges": edges[column], "shares": shares, "missing": missing, "binning": chosen[column][1]}
    cats = {}
    for column in categorical:
        shares, missing = categorical_shares(counts[column], column, rows)
        cats[column] = {"shares": shares, "missing": missing}
    return {
        "rows": rows,
        "bins": bins,
        "score": binned.pop(SCORE),
        "numeric": binned,
        "categorical": cats,
    }


def _features(metadata: dict[str, Any]) -> tuple[list[str], list[str]]:
    features = metadata.get("features") or {}
    if features.get("numeric") is not None:
        return list(features["numeric"]), list(features.get("categorical") or [])
    from readmit.data.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES

    return list(NUMERIC_FEATURES), list(CATEGORICAL_FEATURES)


def profile_for(model: Any, metadata: dict[str, Any], train: pl.DataFrame, *, bins: int,
                source: str) -> dict[str, Any]:
    """Score the training-window rows with ``model`` and profile them."""
    from readmit.training import predict_proba

    numeric, categorical = _features(metadata)
    window = (metadata.get("temporal_splits") or {}).get("train") or {}
    profile = build_profile(train, predict_proba(model, train), numeric, categorical, bins=bins)
    return {
        "model_name": metadata.get("model_name"),
        "registered_model": metadata.get("registered_model"),
        "algorithm": metadata.get("algorithm"),
        "version": metadata.get("version"),
        "created_at": datetime.now(UTC).isoformat(),
        "source": source,
        "window": {"start_date": window.get("start_date"), "end_date": window.get("end_date")},
        **profile,
    }


def _training_window(settings: Settings, metadata: dict[str, Any], data: Any = None) -> pl.DataFrame:
    """The gold rows of the version's own training window (its metadata's temporal_splits)."""
    from readmit.training.split import load_gold

    splits = metadata.get("temporal_splits")
    own = TemporalSplits.model_validate(splits).dates() if splits else None
    if data is None or (own and own != settings.config.temporal_splits.dates()):
        if splits:
            config = settings.config.model_copy(update={"temporal_splits": TemporalSplits.model_validate(splits)})
            settings = replace(settings, config=config)
        data = load_gold(settings, fingerprints=False)
    return data.window("train")


def store_profile(registry: Any, profile: dict[str, Any]) -> str:
    """Write a profile beside its model; return where."""
    name = profile_name(profile["algorithm"], profile["version"])
    registry.storage.write_json(registry.rel(name), profile)
    return registry.location(name)


def read_profile(registry: Any, algorithm: str, version: str) -> dict[str, Any] | None:
    name = profile_name(algorithm, version)
    try:
        return registry.storage.read_json(registry.rel(name))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ArtifactError(f"reference profile is corrupt ({exc})", source=registry.location(name),
                            fix="delete the file; the next `readmit monitor` recomputes it from gold") from None


def store_training_profiles(settings: Settings, saved: Sequence[dict[str, Any]], data: Any = None) -> list[str]:
    """Profile freshly trained versions (their registry metadata) on the training window."""
    from readmit.registry import Registry

    registry = Registry.for_settings(settings)
    bins = settings.config.monitoring_config.profile_bins
    paths = []
    for metadata in saved:
        model, metadata = registry.load(metadata["algorithm"], metadata["version"])
        train = _training_window(settings, metadata, data)
        paths.append(store_profile(registry, profile_for(model, metadata, train, bins=bins, source="training")))
    return paths


def ensure_profile(settings: Settings, registry: Any, algorithm: str, version: str,
                   model: Any = None, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The version's stored profile; computed from gold (``source: backfill``) and stored if absent."""
    profile = read_profile(registry, algorithm, version)
    if profile is not None:
        return profile
    if model is None or metadata is None:
        model, metadata = registry.load(algorithm, version)
    train = _training_window(settings, metadata)
    profile = profile_for(model, metadata, train, bins=settings.config.monitoring_config.profile_bins,
                          source="backfill")
    store_profile(registry, profile)
    return profile
