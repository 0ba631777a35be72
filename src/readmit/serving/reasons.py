"""Reason codes: the three features that push each patient's risk up most, from the model itself.

- XGBoost: the booster's own per-row contributions in log-odds (``pred_contribs=True``) by the
  path method (``approx_contribs=True``, Saabas): like exact TreeSHAP they add up to the row's
  log-odds, at a cost near a plain prediction; exact TreeSHAP measured ~70x slower here (2 cores,
  150 trees of depth 4), too slow for monthly batches of millions of rows.
- Logistic regression: coefficient x the standardized value (a numeric feature, measured from
  the training mean); a categorical feature contributes its active category's coefficient minus
  the mean coefficient of its categories.
- Random forest (and any model without native per-row contributions): ``["unavailable"]``.

Only positive contributions count, so a row may have fewer than three reasons. A calibration
step after the model (Platt or isotonic) is monotone: it changes the probability, not which
features push it up, so the reasons are read from the uncalibrated model inside the artifact
(:func:`base_pipelines` finds it however the artifact wraps it).
:mod:`readmit.serving.scoring` computes the same contributions and the risk in one pass.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import polars as pl

from readmit.runtime import available_cpus
from readmit.training import fitted_pipelines

UNAVAILABLE = "unavailable"
_INPUT_INDEX = re.compile(r"(?:missingindicator_)?f(\d+)")
TOP = 3


def _is_pipeline(obj: Any) -> bool:
    steps = getattr(obj, "named_steps", None)
    return steps is not None and {"frame", "model"} <= set(steps)


def base_pipelines(model: Any, depth: int = 4) -> list[Any]:
    """The fitted ``Pipeline(frame, prep, model)``s inside ``model``: a calibrated model's one
    (:func:`readmit.training.fitted_pipelines`), the model itself when it is one, or those of a
    model it wraps; [] when there is none."""
    pipes = [p for p in fitted_pipelines(model) if _is_pipeline(p)]
    if pipes or depth == 0:
        return pipes
    for value in getattr(model, "__dict__", {}).values():
        for child in value if isinstance(value, list | tuple) else [value]:
            if child is None or isinstance(child, str | int | float | bool | np.ndarray):
                continue
            found = base_pipelines(child, depth - 1)
            if found:
                return found
    return []


def xgboost_matrix(estimator: Any, X: np.ndarray) -> Any:
    """The ``DMatrix`` of an encoded frame, built with every core (the booster is told so too:
    models are saved single-threaded for Airflow workers, but a scoring run has the machine)."""
    import xgboost as xgb

    cpus = available_cpus()
    estimator.get_booster().set_param({"nthread": cpus})
    return xgb.DMatrix(X, missing=np.nan, nthread=cpus)


def xgboost_contributions(estimator: Any, matrix: Any) -> np.ndarray:
    """Per-row contributions (log-odds) of each input column, from a :func:`xgboost_matrix`."""
    contribs = estimator.get_booster().predict(matrix, pred_contribs=True, approx_contribs=True)
    return np.asarray(contribs)[:, :-1]  # the last column is the bias


def _linear_contributions(prep: Any, estimator: Any, X: np.ndarray, n_features: int) -> np.ndarray:
    """coef x preprocessed value, summed back onto the input feature each output column came from.

    Numeric features are standardized, so their contribution is measured from the training mean.
    A one-hot feature contributes its active category's coefficient, measured from the mean
    coefficient of its categories (otherwise every category would look like a push up or down).
    """
    Z = prep.transform(X) if prep != "passthrough" else X
    Z = np.asarray(Z.toarray() if hasattr(Z, "toarray") else Z, dtype=np.float64)
    coef = np.asarray(estimator.coef_, dtype=np.float64).ravel()
    source, onehot = _output_sources(prep, n_features, Z.shape[1])
    out = (Z * coef) @ np.eye(n_features)[source]
    for feature in np.unique(source[onehot]):
        out[:, feature] -= coef[onehot & (source == feature)].mean()
    return out


def _output_sources(prep: Any, n_features: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """For every output column of ``prep``: the input feature it comes from, and whether it is one-hot."""
    if prep == "passthrough":
        return np.arange(n_features), np.zeros(n_features, dtype=bool)
    source = np.empty(n_out, dtype=np.int64)
    onehot = np.zeros(n_out, dtype=bool)
    for name, transformer, columns in prep.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        sl = prep.output_indices_[name]
        # Output names carry the input index: "f3", "missingindicator_f3", "f47_<category>".
        names = transformer.get_feature_names_out([f"f{c}" for c in columns])
        source[sl] = [int(_INPUT_INDEX.match(n).group(1)) for n in names]
        onehot[sl] = hasattr(transformer, "categories_")
    return source, onehot


def contributions(model: Any, frame: Any) -> tuple[np.ndarray, list[str]] | None:
    """(per-row contribution of each feature, feature names), or None when the model has none."""
    pipes = base_pipelines(model) if reasons_available(model) else []
    if not pipes:
        return None
    total = None
    for pipe in pipes:
        encoder, estimator = pipe.named_steps["frame"], pipe.named_steps["model"]
        prep = pipe.named_steps.get("prep", "passthrough")
        X = encoder.transform(frame)
        if hasattr(estimator, "get_booster"):
            matrix = xgboost_matrix(estimator, prep.transform(X) if prep != "passthrough" else X)
            values = xgboost_contributions(estimator, matrix)
        else:
            values = _linear_contributions(prep, estimator, X, len(feature_names(pipe)))
        total = add_up(total, values)
    return total / len(pipes), feature_names(pipes[-1])


def feature_names(pipe: Any) -> list[str]:
    encoder = pipe.named_steps["frame"]
    return [*encoder.numeric, *encoder.categorical]


def add_up(total: np.ndarray | None, values: np.ndarray) -> np.ndarray:
    """The running sum of contributions (log-odds) over a model's pipelines, then / the count: a
    model holding several averages their predictions, so the reasons average their contributions
    (every model training saves holds one)."""
    return values if total is None else total + values


def row_count(frame: Any) -> int:
    """Rows of a polars frame (``height``) or of anything with a length (an Arrow table, an array)."""
    return frame.height if hasattr(frame, "height") else len(frame)


def top_reasons(model: Any, frame: Any, top: int = TOP) -> pl.Series:
    """For each row, up to ``top`` feature names with the largest positive contributions (list[str])."""
    n = row_count(frame)
    return reason_lists(contributions(model, frame) if n else None, n, top)


def reason_lists(found: tuple[np.ndarray, list[str]] | None, n: int, top: int = TOP) -> pl.Series:
    """``top_reasons`` from (contributions, names), or ``["unavailable"]`` per row when ``found`` is None.

    The largest first; equal contributions in column order (as a stable sort would give them);
    only positive ones. Built as one Arrow list array (offsets + names), not row by row.
    """
    if found is None or n == 0:
        if n == 0:
            return pl.Series("top_reasons", [], dtype=pl.List(pl.String))
        return pl.Series("top_reasons", [[UNAVAILABLE]], dtype=pl.List(pl.String)).extend_constant([UNAVAILABLE], n - 1)
    import pyarrow as pa

    values, names = found
    left = np.array(values, copy=True)
    k = min(top, left.shape[1])
    rows = np.arange(left.shape[0])
    idx = np.empty((left.shape[0], k), dtype=np.int32)
    positive = np.empty((left.shape[0], k), dtype=bool)
    for j in range(k):  # argmax takes the first of equal values: the stable descending order
        idx[:, j] = left.argmax(axis=1)
        positive[:, j] = left[rows, idx[:, j]] > 0
        left[rows, idx[:, j]] = -np.inf
    # descending order: the positive ones come first in every row
    offsets = np.zeros(left.shape[0] + 1, dtype=np.int32)
    np.cumsum(positive.sum(axis=1), out=offsets[1:])
    labels = pa.DictionaryArray.from_arrays(pa.array(idx[positive]), pa.array(names, pa.string()))
    listed = pa.ListArray.from_arrays(pa.array(offsets), labels.dictionary_decode())
    return pl.Series("top_reasons", pl.from_arrow(listed), dtype=pl.List(pl.String))


def reasons_available(model: Any) -> bool:
    pipes = base_pipelines(model)
    return bool(pipes) and all(
        hasattr(p.named_steps["model"], "get_booster") or type(p.named_steps["model"]).__name__ == "LogisticRegression"
        for p in pipes
    )
