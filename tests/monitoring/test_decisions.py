"""PSI/CSI bands and the keep / watch / retrain decision with its reasons."""

from __future__ import annotations

import pytest

from readmit.config import MonitoringSection, parse_config
from readmit.errors import ConfigError
from readmit.monitoring.decisions import band, decide

CFG = MonitoringSection()


def month(name, score_psi=0.01, **csi):
    return {"month": name, "score_psi": score_psi, "csi": {"age": 0.01, **csi}}


def summary(observed=None, estimated=None, mature=("2008-01",), immature=("2008-02",)):
    return {"observed": observed, "estimated": estimated, "mature_months": list(mature),
            "immature_months": list(immature)}


GOOD = {"auc_roc": 0.66, "observed_expected": 1.0}


def test_default_bands_are_yurdakul_and_naranjo():
    assert (CFG.psi_warning, CFG.psi_alert) == (0.1, 0.25)
    assert [band(v, CFG) for v in (0.0, 0.099, 0.1, 0.25, 0.2501, None)] == [
        "stable", "stable", "watch", "watch", "act", None]
    custom = MonitoringSection(psi_warning=0.05, psi_alert=0.1)
    assert band(0.07, custom) == "watch" and band(0.11, custom) == "act"


def test_auto_retrain_is_off_by_default_and_the_calibration_band_must_be_ordered():
    assert CFG.auto_retrain is False
    with pytest.raises(ConfigError, match="observed_expected_low must be below observed_expected_high"):
        parse_config({"monitoring_config": {"observed_expected_low": 1.3}})


def test_everything_within_bands_is_keep():
    decision = decide([month("2008-01"), month("2008-02")], summary(GOOD, {"auc_roc": 0.65}), CFG, test_auc=0.67)
    assert decision.action == "keep"
    assert "every check within its band" in decision.reasons[0]


def test_an_auc_under_the_floor_or_dropped_from_test_is_retrain():
    low = decide([month("2008-01")], summary({**GOOD, "auc_roc": 0.58}), CFG, test_auc=0.60)
    assert low.action == "retrain"
    assert low.reasons == ["observed ROC-AUC 0.580 on 2008-01 is under the floor min_auc 0.6"]
    drop = decide([month("2008-01")], summary({**GOOD, "auc_roc": 0.61}), CFG, test_auc=0.67)
    assert drop.action == "retrain"
    assert "0.060 under the model's test ROC-AUC 0.670 (auc_drop_alert 0.05)" in drop.reasons[0]


def test_psi_or_csi_in_the_act_band_is_retrain_and_in_the_watch_band_is_watch():
    act = decide([month("2008-01", 0.3), month("2008-02", csi_x=0.01, payer=0.4)], summary(GOOD), CFG, test_auc=0.66)
    assert act.action == "retrain"
    assert act.reasons == [
        "score PSI in the act band (> 0.25) in 1 of 2 month(s), max 0.300 in 2008-01",
        "feature CSI in the act band (> 0.25): payer (1/2 months, max 0.400 in 2008-02)",
    ]
    watch = decide([month("2008-01", 0.12, payer=0.2)], summary(GOOD), CFG, test_auc=0.66)
    assert watch.action == "watch"
    assert watch.reasons == [
        "score PSI in the watch band (0.1-0.25) in 1 of 1 month(s), max 0.120 in 2008-01",
        "feature CSI in the watch band (0.1-0.25): payer (1/1 months, max 0.200 in 2008-01)",
    ]


def test_calibration_off_is_retrain():
    decision = decide([month("2008-01")], summary({**GOOD, "observed_expected": 1.4}), CFG, test_auc=0.66)
    assert decision.action == "retrain"
    assert decision.reasons == ["calibration off: observed/expected 1.40 on 2008-01 is outside 0.8-1.25"]


def test_an_estimate_alone_only_ever_asks_to_watch():
    decision = decide([month("2008-02")], summary(None, {"auc_roc": 0.55}, mature=()), CFG, test_auc=0.66)
    assert decision.action == "watch"
    assert decision.reasons == [
        "estimated ROC-AUC 0.550 on 2008-02 (labels not mature yet) is under min_auc 0.6"]
