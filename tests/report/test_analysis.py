"""The report's computed figures on small inputs whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from readmit.report import analysis


def test_decision_curve_by_hand():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.3, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    dc = analysis.decision_curve(y, p, np.array([0.2, 0.5]))
    # t=0.2: flagged 0.9, 0.3, 0.6 -> TP 2, FP 1; odds 0.25 -> 2/10 - 1/10 * 0.25
    assert dc["model"][0] == pytest.approx(0.2 - 0.025)
    # t=0.5: flagged 0.9, 0.6 -> TP 1, FP 1; odds 1
    assert dc["model"][1] == pytest.approx(0.1 - 0.1)
    # flag everyone: prevalence 0.2 - 0.8 * odds
    assert dc["everyone"] == pytest.approx([0.2 - 0.8 * 0.25, 0.2 - 0.8])


def test_at_threshold_per_100():
    y = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    p = np.array([0.8, 0.7, 0.6, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    a = analysis.at_threshold(y, p, 0.5)
    assert a["flagged_per_100"] == pytest.approx(30.0)
    assert a["caught_per_100_flagged"] == pytest.approx(100 / 3)
    assert a["share_of_readmissions_caught"] == pytest.approx(0.5)
    assert analysis.at_threshold(y, p, 0.95)["caught_per_100_flagged"] is None


def test_calibration_of_a_calibrated_score_is_about_one():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.5, 40_000)
    y = (rng.random(p.size) < p).astype(int)
    stats = analysis.calibration_stats(y, p)
    assert stats["observed_expected"] == pytest.approx(1.0, abs=0.03)
    assert stats["slope"] == pytest.approx(1.0, abs=0.08)
    assert stats["ece"] < 0.02
    # a score twice too high is flagged: O/E about one half
    assert analysis.calibration_stats(y, np.minimum(2 * p, 0.99))["observed_expected"] == pytest.approx(0.5, abs=0.03)


def test_reliability_bins_cover_every_row_and_histogram_shares_sum_to_one():
    rng = np.random.default_rng(1)
    p = rng.random(1003)
    y = (rng.random(1003) < p).astype(int)
    bins = analysis.reliability(y, p)
    assert sum(b["count"] for b in bins) == 1003 and len(bins) == 10
    assert [b["mean_predicted"] for b in bins] == sorted(b["mean_predicted"] for b in bins)
    hist = analysis.score_histogram(y, p)
    assert sum(hist["readmitted"]) == pytest.approx(1.0, abs=1e-4)
    assert sum(hist["not_readmitted"]) == pytest.approx(1.0, abs=1e-4)


def test_group_table_counts_and_small_groups():
    rng = np.random.default_rng(2)
    groups = ["A"] * 900 + ["B"] * 95 + [None] * 5
    p = rng.random(1000)
    y = (rng.random(1000) < p).astype(int)
    rows = {r["group"]: r for r in analysis.group_table(y, p, groups, 0.5)}
    assert set(rows) == {"A", "B", "Missing"}
    assert sum(r["rows"] for r in rows.values()) == 1000
    assert not rows["A"]["small"] and rows["B"]["small"] and rows["Missing"]["small"]
    assert rows["Missing"]["auc_roc"] is None  # under MIN_GROUP_POSITIVES positives
    assert rows["A"]["flag_rate"] == pytest.approx(float((p[:900] >= 0.5).mean()))


def test_curves_are_thinned():
    rng = np.random.default_rng(3)
    p = rng.random(50_000)
    y = (rng.random(50_000) < p).astype(int)
    roc = analysis.roc_points(y, p)
    assert len(roc["fpr"]) <= analysis.CURVE_POINTS and roc["fpr"][0] == 0.0 and roc["tpr"][-1] == 1.0
    pr = analysis.pr_points(y, p)
    assert len(pr["recall"]) <= analysis.CURVE_POINTS and pr["prevalence"] == pytest.approx(y.mean())
