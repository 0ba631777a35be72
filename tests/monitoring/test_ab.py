"""The A/B report: weighted metrics, the patient-level bootstrap and the verdict."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import brier_score_loss, precision_score, recall_score, roc_auc_score

from readmit.config import load_settings
from readmit.data.layers import LABEL_STORE, PREDICTIONS
from readmit.errors import ReadmitInputError
from readmit.monitoring.ab import ab_report, verdict, weighted_metrics
from readmit.storage import Storage


def test_weighted_metrics_equal_sklearn_with_sample_weights_ties_included():
    rng = np.random.default_rng(1)
    p = np.round(rng.random(500), 1)  # many ties
    y = (rng.random(500) < p).astype(int)
    flag = p >= 0.5
    w = rng.integers(0, 4, (3, 500))
    got = weighted_metrics(p, y, flag, w)
    for k in range(3):
        assert got["auc_roc"][k] == pytest.approx(roc_auc_score(y, p, sample_weight=w[k]))
        assert got["brier"][k] == pytest.approx(brier_score_loss(y, p, sample_weight=w[k]))
        assert got["precision"][k] == pytest.approx(precision_score(y, flag, sample_weight=w[k]))
        assert got["recall"][k] == pytest.approx(recall_score(y, flag, sample_weight=w[k]))


def test_the_verdict_follows_the_interval():
    assert verdict(0.03, 0.01, 0.05, 0.01, 1000)["verdict"] == "challenger better"
    assert verdict(-0.03, -0.05, -0.01, 0.01, 1000)["verdict"] == "challenger worse"
    unsure = verdict(0.01, -0.01, 0.03, 0.01, 1000)
    # an interval of half-width 1.96 * 0.01 excludes 0.01 at 1000 * 1.96^2 ~ 3842 patients
    assert unsure == {"verdict": "not enough evidence yet", "patients_needed": 2842}
    assert verdict(0.0, -0.01, 0.01, 0.005, 1000)["patients_needed"] is None


def write_arms(uri: str, challenger_noise: bool, patients: int = 3000, *, ab: bool = True) -> None:
    """Three months of predictions + labels; a patient has 1-3 encounters and stays in one arm."""
    rng = np.random.default_rng(11)
    storage = Storage(uri)
    for m, month in enumerate(("2008-01", "2008-02", "2008-03")):
        patient = np.repeat(np.arange(patients), rng.integers(1, 3, patients)) + 1
        n = patient.size
        risk = rng.beta(1.2, 9, n)
        label = (rng.random(n) < risk).astype(np.int8)
        arm = np.where((patient % 2 == 0) | (not ab), "champion", "challenger")
        if challenger_noise:
            risk = np.where(arm == "challenger", rng.permutation(risk), risk)
        ids = np.arange(n) + 1_000_000 * (m + 1)
        storage.write_partition(PREDICTIONS, month, pl.DataFrame({
            "encounter_id": ids, "patient_nbr": patient, "risk": risk, "flag": risk >= 0.2,
            "algorithm": np.where(arm == "champion", "logistic_regression", "xgboost"),
            "version": "20260101_000000", "alias": arm, "arm": arm}))
        storage.write_partition(LABEL_STORE, month, pl.DataFrame({"encounter_id": ids, "label": label}))


@pytest.fixture
def ab_settings(tmp_path, write_config):
    def make(challenger_noise: bool):
        datamart = str(tmp_path / f"dm_{challenger_noise}")
        write_arms(datamart, challenger_noise)
        cfg = write_config({"training_config": {"bootstrap": {"resamples": 300}}})
        return load_settings(cfg, datamart=datamart, registry=str(tmp_path / f"reg_{challenger_noise}"))

    return make


def test_a_challenger_that_ranks_at_random_is_worse_and_the_report_is_written(ab_settings, tmp_path):
    settings = ab_settings(True)
    report = ab_report(settings, as_of=date(2008, 6, 1))
    assert report["verdict"] == "challenger worse"
    assert report["arms"]["challenger"]["auc_roc"] == pytest.approx(0.5, abs=0.05)
    low, high = report["difference"]["auc_roc"]["ci95"]
    assert low < report["difference"]["auc_roc"]["value"] < high < 0
    assert report["bootstrap"] == {"samples": 300, "unit": "patient", "seed": 42}
    folder = tmp_path / "reg_True" / "monitoring" / "readmission"
    assert (folder / "latest_ab_report.json").is_file()
    assert len(list(folder.glob("ab_report_*.json"))) == 1


def test_two_arms_scored_alike_are_not_enough_evidence_and_say_how_many_patients_to_wait_for(ab_settings):
    report = ab_report(ab_settings(False), as_of=date(2008, 6, 1))
    low, high = report["difference"]["auc_roc"]["ci95"]
    assert low < 0 < high
    assert report["verdict"] == "not enough evidence yet"
    assert report["patients_needed"] is None or report["patients_needed"] > 0
    assert report["arms"]["champion"]["patients"] + report["arms"]["challenger"]["patients"] == 3000


def test_only_mature_months_count_and_none_mature_is_an_input_error(ab_settings):
    settings = ab_settings(False)
    assert ab_report(settings, as_of=date(2008, 3, 31))["months"] == ["2008-01", "2008-02"]
    with pytest.raises(ReadmitInputError, match="no scored month with mature labels"):
        ab_report(settings, as_of=date(2008, 2, 1))


def test_without_a_challenger_arm_the_report_says_how_to_get_one(tmp_path, write_config):
    write_arms(str(tmp_path / "dm"), False, ab=False)
    settings = load_settings(write_config(), datamart=str(tmp_path / "dm"), registry=str(tmp_path / "reg"))
    with pytest.raises(ReadmitInputError, match=r"no labelled challenger arm[\s\S]*inference_config.ab_test"):
        ab_report(settings, as_of=date(2008, 6, 1))
