"""Metrics, the threshold rules and ROC-AUC by group."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from readmit.training.evaluate import (
    LEAKAGE_AUC,
    age_band,
    auc,
    binary_metrics,
    choose_threshold,
    evaluate_window,
    grouped_auc,
    leakage_warnings,
)

REFERENCE = ("accuracy", "precision", "recall", "f1", "auc_roc")


def _scores(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.15).astype(int)
    p = np.clip(0.15 + 0.25 * y + rng.normal(0, 0.15, n), 0.001, 0.999)
    return y, p


def test_binary_metrics_has_reference_and_extra_metrics():
    y, p = _scores()
    m = binary_metrics(y, p, 0.3)
    for key in (*REFERENCE, "pr_auc", "brier", "log_loss", "gini"):
        assert isinstance(m[key], float), key
    assert m["gini"] == pytest.approx(2 * m["auc_roc"] - 1)
    assert m["samples"] == 2000 and m["positives"] == int(y.sum())
    pred = p >= 0.3
    assert m["recall"] == pytest.approx(pred[y == 1].mean())


def test_best_f1_threshold_maximises_f1():
    from sklearn.metrics import f1_score

    y, p = _scores()
    t = choose_threshold(y, p, "best_f1")
    best = f1_score(y, p >= t)
    for other in np.linspace(0.05, 0.95, 37):
        assert f1_score(y, p >= other) <= best + 1e-9


def test_target_recall_threshold_is_the_highest_reaching_the_target():
    y, p = _scores()
    t = choose_threshold(y, p, "target_recall", 0.8)
    assert (p[y == 1] >= t).mean() >= 0.8
    higher = np.nextafter(t, 1)
    assert (p[y == 1] >= higher).mean() < 0.8


@pytest.mark.parametrize("seed", range(5))
def test_auc_is_sklearns_roc_auc_with_ties_and_any_two_labels(seed):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 3000))
    y = (rng.random(n) < rng.uniform(0.05, 0.6)).astype(int)
    y[:2] = [0, 1]
    p = np.round(rng.random(n) * 0.3 + 0.2 * y, int(rng.integers(1, 4)))  # rounded: many ties
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert auc(np.where(y == 1, 7, 3), p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)  # larger = positive
    assert auc(y.astype(bool), p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_auc_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="NaN"):
        auc(np.array([0, 1, 1]), np.array([0.1, np.nan, 0.3]))
    with pytest.raises(ValueError, match="two classes"):
        auc(np.array([0, 1, 2]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="same length"):
        auc(np.array([0, 1, 1]), np.array([0.1, 0.2]))
    assert auc(np.array([], int), np.array([])) is None


def test_single_class_gives_null_auc_not_a_crash():
    m = binary_metrics(np.zeros(10, int), np.linspace(0, 1, 10), 0.5)
    assert m["auc_roc"] is None and m["pr_auc"] is None and m["gini"] is None
    assert choose_threshold(np.zeros(5, int), np.ones(5)) == 0.5


def test_grouped_auc_nulls_small_groups_with_counts():
    y, p = _scores(1000)
    groups = np.where(np.arange(1000) < 950, "big", "small")
    y[950:] = 0
    y[950:953] = 1
    out = grouped_auc(y, p, groups, min_positives=10)
    assert out["big"]["auc_roc"] is not None
    assert out["small"] == {"auc_roc": None, "samples": 50, "positives": 3,
                            "note": "fewer than 10 positives or no negatives"}


def test_age_band_and_window_evaluation():
    assert age_band(75) == "[70-80)" and age_band(5.0) == "[0-10)" and age_band(None) == "Missing"
    y, p = _scores(400)
    frame = pl.DataFrame({
        "snapshot_date": pl.date_range(pl.date(2008, 1, 1), pl.date(2009, 2, 3), "1d", eager=True)[:400],
        "age_midpoint": [75, 45] * 200,
        "gender": ["Female", "Male"] * 200,
        "race": ["Caucasian"] * 400,
    })
    out = evaluate_window(frame, y, p, 0.3, by_month=True)
    assert set(out["auc_roc_by_group"]) == {"age_band", "gender", "race"}
    assert set(out["auc_roc_by_group"]["age_band"]) == {"[70-80)", "[40-50)"}
    assert "2008-01" in out["auc_roc_by_month"]


def test_leakage_warning_above_075():
    assert leakage_warnings({"test": {"auc_roc": 0.70}, "oot": {"auc_roc": None}}) == []
    warnings = leakage_warnings({"test": {"auc_roc": LEAKAGE_AUC + 0.01}})
    assert len(warnings) == 1 and "leakage" in warnings[0]


# -- calibration and the patient bootstrap ------------------------------------------------------


def test_calibration_metrics_of_true_probabilities_and_of_distorted_ones():
    from readmit.training.evaluate import calibration_metrics

    rng = np.random.default_rng(3)
    p = rng.beta(1.2, 9, 40000)
    y = (rng.random(p.size) < p).astype(int)
    true = calibration_metrics(y, p)
    assert 0.97 < true["observed_expected"] < 1.03 and 0.93 < true["slope"] < 1.07
    assert abs(true["intercept"]) < 0.05 and true["ece"] < 0.01
    assert true["brier_baseline"] == pytest.approx(y.mean() * (1 - y.mean()))
    assert true["brier_skill"] == pytest.approx(1 - true["brier"] / true["brier_baseline"])
    table = true["reliability"]
    assert len(table) == 10 and sum(r["count"] for r in table) == y.size
    assert all(abs(r["observed_rate"] - r["mean_predicted"]) < 0.03 for r in table)
    doubled = calibration_metrics(y, np.clip(2 * p, 0, 1))  # what class weights do to a score
    assert doubled["observed_expected"] < 0.6 and doubled["intercept"] < -0.5 and doubled["brier"] > true["brier"]
    spread = calibration_metrics(y, 1 / (1 + np.exp(-2 * np.log(p / (1 - p)))))  # over-confident
    assert spread["slope"] == pytest.approx(0.5, abs=0.05)


def test_bootstrap_auc_matches_sklearn_and_resamples_patients():
    from sklearn.metrics import roc_auc_score

    from readmit.training.evaluate import bootstrap_ci, weighted_auc

    rng = np.random.default_rng(5)
    p = np.round(rng.random(3000), 2)  # ties
    y = (rng.random(3000) < p).astype(int)
    w = rng.integers(0, 3, (4, 3000)).astype(float)
    np.testing.assert_allclose(weighted_auc(y, p, w), [roc_auc_score(y, p, sample_weight=wi) for wi in w])
    # each patient repeated 10 times: resampling patients sees 300 units, resampling rows 3000
    p10, y10 = np.repeat(p[:300], 10), np.repeat(y[:300], 10)
    by_row = bootstrap_ci(y10, p10, np.arange(3000), resamples=200)
    by_patient = bootstrap_ci(y10, p10, np.repeat(np.arange(300), 10), resamples=200)
    width = lambda ci: ci["auc_roc"][1] - ci["auc_roc"][0]  # noqa: E731
    assert width(by_patient) > 2 * width(by_row)
    assert by_patient["unit"] == "patient" and by_patient["resamples"] == 200
    lo, hi = by_patient["auc_roc"]
    assert lo < roc_auc_score(y10, p10) < hi
