"""Drift per month against the reference profile: PSI of the score, CSI per feature, rates.

The population stability index of two distributions over the same bins, with reference shares
``e`` and current shares ``a``::

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

The characteristic stability index (CSI) is the same formula applied to one input feature.
Bins come from the reference profile (:mod:`readmit.monitoring.profile`): for numeric columns one
bin per value (a column with at most ``profile_bins`` distinct values) or quantile bins, plus a
missing bin; for categorical ones every reference value, a missing bin and a
bin for values never seen in the reference. Empty-bin smoothing: a share of 0 on either side is
replaced by ``EPSILON`` (0.0001) so an empty bin adds a large but finite term instead of an
infinite one.

All counting is one Polars ``group_by`` per column over the whole month range (``count_bins``);
only the per-month bin tables (a few dozen rows each) are handled in Python.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from readmit.monitoring.profile import SCORE, categorical_shares, count_bins, numeric_shares

EPSILON = 1e-4
MONTH = "month"


def psi(expected: Any, actual: Any, epsilon: float = EPSILON) -> float:
    """Population stability index of ``actual`` shares against ``expected`` ones (same bins)."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    a = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def _numeric_vector(ref: dict[str, Any]) -> list[float]:
    return [*ref["shares"], ref["missing"]]


def categorical_vectors(ref: dict[str, Any], shares: dict[str, float], missing: float) -> tuple[list[float], list[float], float]:
    """(reference, current, new-value share) over the bins: reference values, missing, new."""
    known = list(ref["shares"])
    new = sum(v for k, v in shares.items() if k not in ref["shares"])
    expected = [ref["shares"][k] for k in known] + [ref["missing"], 0.0]
    actual = [shares.get(k, 0.0) for k in known] + [missing, new]
    return expected, actual, new


def drift_by_month(frame: pl.DataFrame | pl.LazyFrame, profile: dict[str, Any], *,
                   score: str = "risk", month: str = MONTH) -> dict[str, dict[str, Any]]:
    """Per month of ``frame``: rows, score_psi, csi, missing_rate and new_category_rate per feature.

    ``frame`` holds a ``month`` column, the score column and the profile's feature columns.
    """
    lf = frame.lazy().rename({score: SCORE}) if score != SCORE else frame.lazy()
    numeric = {SCORE: profile["score"]["edges"], **{c: v["edges"] for c, v in profile["numeric"].items()}}
    categorical = list(profile["categorical"])
    counts = count_bins(lf, numeric, categorical, by=month)
    rows_by_month = lf.group_by(month).agg(pl.len()).collect()
    rows = dict(zip(rows_by_month[month].to_list(), rows_by_month["len"].to_list(), strict=True))
    out: dict[str, dict[str, Any]] = {}
    for m in sorted(rows):
        n = rows[m]
        result: dict[str, Any] = {"rows": n, "score_psi": None, "csi": {}, "missing_rate": {},
                                  "new_category_rate": {}}
        for column, edges in numeric.items():
            part = counts[column].filter(pl.col(month) == m)
            shares, missing = numeric_shares(part, column, len(edges), n)
            ref = profile["score"] if column == SCORE else profile["numeric"][column]
            value = psi(_numeric_vector(ref), [*shares, missing])
            if column == SCORE:
                result["score_psi"] = value
            else:
                result["csi"][column] = value
                result["missing_rate"][column] = missing
        for column in categorical:
            part = counts[column].filter(pl.col(month) == m)
            shares, missing = categorical_shares(part, column, n)
            expected, actual, new = categorical_vectors(profile["categorical"][column], shares, missing)
            result["csi"][column] = psi(expected, actual)
            result["missing_rate"][column] = missing
            result["new_category_rate"][column] = new
        out[m] = result
    return out
