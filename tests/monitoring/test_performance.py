"""Label maturity, observed metrics and the estimated (calibration-based) performance."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from readmit.monitoring.performance import (
    estimated_performance,
    expected_auc,
    observed_performance,
)
from readmit.training.evaluate import calibration_slope


def test_expected_auc_of_known_score_distributions():
    assert expected_auc(np.full(100, 0.3)) == pytest.approx(0.5)
    # half the rows at 0.2, half at 0.8: positives sit 80/20 high/low, negatives 20/80
    # -> AUC = 0.8 * 0.8 + 0.5 * (0.8 * 0.2 + 0.2 * 0.8) = 0.80
    assert expected_auc(np.r_[np.full(50, 0.2), np.full(50, 0.8)]) == pytest.approx(0.80)
    assert expected_auc(np.array([])) is None
    assert expected_auc(np.zeros(5)) is None  # no expected positive


def test_expected_auc_matches_the_observed_auc_of_labels_drawn_from_calibrated_risks():
    rng = np.random.default_rng(3)
    p = rng.beta(1.2, 9, 200_000)  # mean ~0.12, like 30-day readmission
    y = rng.random(p.size) < p
    assert expected_auc(p) == pytest.approx(roc_auc_score(y, p), abs=0.005)
    est = estimated_performance(p)
    assert est["positive_rate"] == pytest.approx(y.mean(), abs=0.003)


def test_observed_metrics_and_calibration_slope():
    rng = np.random.default_rng(5)
    p = rng.beta(1.2, 9, 100_000)
    y = (rng.random(p.size) < p).astype(int)
    calibrated = observed_performance(y, p)
    assert calibrated["slope"] == pytest.approx(1.0, abs=0.05)
    assert calibrated["observed_expected"] == pytest.approx(1.0, abs=0.03)
    assert calibrated["auc_roc"] == pytest.approx(roc_auc_score(y, p))
    assert calibrated["brier"] == pytest.approx(np.mean((p - y) ** 2))
    # Too extreme scores (logit doubled) have a slope near 0.5; scores halved overstate nothing but O/E ~2.
    logit = np.log(p / (1 - p))
    extreme = 1 / (1 + np.exp(-2 * logit))
    assert calibration_slope(y, extreme) == pytest.approx(0.5, abs=0.05)
    assert observed_performance(y, p / 2)["observed_expected"] == pytest.approx(2.0, abs=0.06)
    assert observed_performance(np.zeros(10), np.full(10, 0.1))["auc_roc"] is None
