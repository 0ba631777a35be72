"""PSI / CSI on constructed distributions whose values are known, new and missing categories."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from readmit.monitoring.drift import EPSILON, drift_by_month, psi
from readmit.monitoring.profile import build_profile, quantile_edges, reference_edges


def by_hand(expected, actual):
    return sum((a - e) * math.log(a / e) for e, a in zip(expected, actual, strict=True))


def test_psi_of_identical_distributions_is_zero_and_of_a_known_shift_matches_the_formula():
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    # 0.25 * ln 2 + 0.25 * ln 1.5
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.25 * math.log(2) + 0.25 * math.log(1.5), abs=1e-12)
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.2747, abs=1e-4)


def test_an_empty_bin_is_smoothed_to_a_finite_value():
    value = psi([0.5, 0.5, 0.0], [0.5, 0.4, 0.1])
    assert math.isfinite(value)
    assert value == pytest.approx(by_hand([0.5, 0.5, EPSILON], [0.5, 0.4, 0.1]))


PROFILE = {
    "score": {"edges": [0.1, 0.2], "shares": [0.5, 0.25, 0.25], "missing": 0.0},
    "numeric": {"age": {"edges": [50.0], "shares": [0.4, 0.4], "missing": 0.2}},
    "categorical": {"payer": {"shares": {"MC": 0.5, "MD": 0.5}, "missing": 0.0}},
}


def month_frame(month, scores, ages, payers):
    return pl.DataFrame({"month": [month] * len(scores), "risk": scores, "age": ages, "payer": payers},
                        schema={"month": pl.String, "risk": pl.Float64, "age": pl.Int64, "payer": pl.String})


def test_drift_by_month_bins_like_the_reference_and_matches_hand_computed_values():
    # 2008-01 equals the reference exactly; 2008-02 is shifted in every column.
    same = month_frame("2008-01",
                       [0.05, 0.1, 0.15, 0.3] * 5,  # bins: <=0.1, <=0.1, (0.1,0.2], >0.2 -> .5/.25/.25
                       [40, 60, None, 50, 70] * 4,  # <=50: 40, 50 -> .4; >50: .4; missing .2
                       ["MC", "MD"] * 10)
    shifted = month_frame("2008-02",
                          [0.3, 0.3, 0.3, 0.05] * 5,  # .25 / 0 / .75
                          [60, 60, 60, 60, 40] * 4,  # .2 / .8 / 0
                          ["MC", "MC", "MC", "XX", None, "Missing", "MD", "MD", "MD", "MD"] * 2)
    out = drift_by_month(pl.concat([shifted, same]), PROFILE)
    assert list(out) == ["2008-01", "2008-02"]
    jan, feb = out["2008-01"], out["2008-02"]
    assert jan["rows"] == 20 and feb["rows"] == 20
    assert jan["score_psi"] == pytest.approx(0.0, abs=1e-12)
    assert jan["csi"] == {"age": pytest.approx(0.0, abs=1e-12), "payer": pytest.approx(0.0, abs=1e-12)}
    assert feb["score_psi"] == pytest.approx(by_hand([0.5, 0.25, 0.25], [0.25, EPSILON, 0.75]))
    assert feb["csi"]["age"] == pytest.approx(by_hand([0.4, 0.4, 0.2], [0.2, 0.8, EPSILON]))
    # payer bins: MC, MD, missing, new -> reference .5/.5/0/0; February .3/.4/.2/.1
    assert feb["csi"]["payer"] == pytest.approx(by_hand([0.5, 0.5, EPSILON, EPSILON], [0.3, 0.4, 0.2, 0.1]))
    assert feb["new_category_rate"] == {"payer": pytest.approx(0.1)}
    assert feb["missing_rate"] == {"age": pytest.approx(0.0), "payer": pytest.approx(0.2)}
    assert jan["missing_rate"]["age"] == pytest.approx(0.2)


def test_every_new_value_lands_in_one_new_bucket():
    frame = month_frame("2008-03", [0.05] * 10, [40] * 10, ["MC"] * 5 + ["A", "B", "C", "D", "E"])
    out = drift_by_month(frame, PROFILE)["2008-03"]
    assert out["new_category_rate"]["payer"] == pytest.approx(0.5)
    assert out["csi"]["payer"] == pytest.approx(by_hand([0.5, 0.5, EPSILON, EPSILON], [0.5, EPSILON, EPSILON, 0.5]))


def test_quantile_edges_and_reference_shares_of_a_known_distribution():
    values = pl.Series("x", np.arange(1, 101), dtype=pl.Int64)
    assert quantile_edges(values, 4) == [25.0, 50.0, 75.0]
    frame = pl.DataFrame({"x": np.arange(1, 101), "c": ["a"] * 70 + ["b"] * 20 + ["Missing"] * 10})
    profile = build_profile(frame, np.linspace(0, 1, 100), ["x"], ["c"], bins=4)
    assert profile["numeric"]["x"] == {"edges": [25.0, 50.0, 75.0], "shares": [0.25] * 4, "missing": 0.0,
                                       "binning": "quantile"}
    assert profile["categorical"]["c"] == {"shares": {"a": 0.7, "b": 0.2}, "missing": pytest.approx(0.1)}
    assert profile["rows"] == 100 and len(profile["score"]["shares"]) == 4
    # A month drawn from the reference itself is stable.
    same = frame.with_columns(pl.lit("2008-01").alias("month"), pl.Series("risk", np.linspace(0, 1, 100)))
    out = drift_by_month(same, profile)["2008-01"]
    assert out["score_psi"] == pytest.approx(0.0, abs=1e-12) and out["csi"]["x"] == pytest.approx(0.0, abs=1e-12)


def test_a_discrete_feature_gets_one_edge_per_distinct_quantile():
    values = pl.Series("flag", [0] * 90 + [1] * 10)
    assert quantile_edges(values, 10) == [0.0]  # every inner decile is 0: bins "0" and "above 0"
    assert quantile_edges(pl.Series("empty", [None, None], dtype=pl.Float64), 10) == []


# A code like discharge_severity: 0 (unknown) is rare, 1 (home) common. Deciles start at 1, so
# quantile bins put 0 and 1 together and a fall of the unknown code cannot be seen.
CODES = [0] * 7 + [1] * 60 + [2] * 13 + [3] * 15 + [4] * 5


def test_a_feature_with_few_values_gets_one_bin_per_value():
    values = pl.Series("code", CODES)
    assert quantile_edges(values, 10) == [1.0, 2.0, 3.0]  # 0 and 1 share bin "<= 1"
    assert reference_edges(values, 10) == ([0.0, 1.0, 2.0, 3.0], "per_value")
    assert reference_edges(values, 4) == ([1.0, 2.0], "quantile")  # 5 values > 4 bins: quartiles
    assert reference_edges(pl.Series("flag", [0] * 90 + [1] * 10), 10) == ([0.0], "per_value")
    assert reference_edges(pl.Series("one", [3, 3, None]), 10) == ([], "per_value")
    assert reference_edges(pl.Series("empty", [None, None], dtype=pl.Float64), 10) == ([], "per_value")
    frame = pl.DataFrame({"code": CODES})
    profile = build_profile(frame, np.linspace(0, 1, 100), ["code"], [], bins=10)
    assert profile["numeric"]["code"] == {"edges": [0.0, 1.0, 2.0, 3.0], "shares": pytest.approx([0.07, 0.6, 0.13,
                                          0.15, 0.05]), "missing": 0.0, "binning": "per_value"}
    assert profile["score"]["binning"] == "quantile" and len(profile["score"]["edges"]) == 9


def test_a_rare_code_that_vanishes_is_drift_with_per_value_bins():
    frame = pl.DataFrame({"code": CODES})
    profile = build_profile(frame, np.linspace(0, 1, 100), ["code"], [], bins=10)
    # The unknown code's 7% moves to "home".
    month = pl.DataFrame({"month": ["2008-01"] * 100, "risk": np.linspace(0, 1, 100),
                          "code": [1] * 67 + [2] * 13 + [3] * 15 + [4] * 5})
    csi = drift_by_month(month, profile)["2008-01"]["csi"]["code"]
    assert csi == pytest.approx(by_hand([0.07, 0.6, 0.13, 0.15, 0.05, EPSILON], [EPSILON, 0.67, 0.13, 0.15, 0.05,
                                                                              EPSILON]))
    assert csi > 0.25  # "act"

    # A profile written before per-value bins (quantile edges, no "binning" key) keeps working, as it was.
    old = {"rows": 100, "bins": 10,
           "score": {"edges": quantile_edges(pl.Series(np.linspace(0, 1, 100)), 10), "shares": [0.1] * 10,
                     "missing": 0.0},
           "numeric": {"code": {"edges": [1.0, 2.0, 3.0], "shares": [0.67, 0.13, 0.15, 0.05], "missing": 0.0}},
           "categorical": {}}
    hidden = drift_by_month(month, old)["2008-01"]
    assert hidden["csi"]["code"] == pytest.approx(0.0, abs=1e-12)  # the merged bin hides the change
    assert hidden["score_psi"] == pytest.approx(0.0, abs=1e-12)
