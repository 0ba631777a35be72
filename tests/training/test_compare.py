"""Comparing the latest models and recommending one: on test by default, comparable models only."""

from __future__ import annotations

import pytest

from readmit.errors import ArtifactError
from readmit.registry import Registry
from readmit.training.compare import compare_models, recommend


def _window(auc, brier):
    return {"accuracy": 0.7, "precision": 0.2, "recall": 0.5, "f1": 0.3, "pr_auc": 0.2, "brier": brier,
            "log_loss": 0.4, "auc_roc": auc, "gini": 2 * auc - 1,
            "calibration": {"brier": brier, "brier_baseline": 0.096, "brier_skill": 1 - brier / 0.096,
                            "observed_expected": 1.0, "slope": 1.0, "intercept": 0.0, "ece": 0.01, "reliability": []},
            "ci": {"auc_roc": [auc - 0.01, auc + 0.01], "brier": [brier - 0.002, brier + 0.002]}}


def _save(settings, algorithm, test_auc, oot_auc, *, test_brier=0.09, oot_brier=0.09, **extra):
    reg = Registry(settings.registry_uri, settings.config.model.model_name)
    meta = {"performance": {"test": _window(test_auc, test_brier), "oot": _window(oot_auc, oot_brier)},
            "threshold": {"value": 0.3}, "features": {"numeric": ["a"], "categorical": ["b"]}, **extra}
    return reg.save(algorithm, {"algorithm": algorithm}, meta)


def test_highest_test_auc_is_recommended_and_oot_stays_unseen(make_settings):
    settings = make_settings()
    _save(settings, "logistic_regression", 0.66, 0.65)
    _save(settings, "random_forest", 0.67, 0.69)  # best on oot: must not matter
    xgb = _save(settings, "xgboost", 0.68, 0.68)
    result = compare_models(settings)
    rec = result["recommended"]
    assert rec["algorithm"] == "xgboost" and rec["version"] == xgb["version"]
    assert rec["selection_window"] == "test" and result["selection_window"] == "test"
    assert "highest test ROC-AUC (0.6800, 95% CI 0.670-0.690; next random_forest 0.6700)" in rec["reason"]
    assert "chosen on the test window" in rec["reason"]
    assert [c["algorithm"] for c in result["candidates"]] == ["logistic_regression", "random_forest", "xgboost"]
    for c in result["candidates"]:
        for window in ("test", "oot"):
            for metric in ("auc_roc", "brier", "brier_skill", "observed_expected", "slope", "intercept", "ece", "ci"):
                assert metric in c[window]
    assert result["candidates"][1]["auc_drop"] == pytest.approx(-0.02)
    stored = Registry(settings.registry_uri).read_comparison()
    assert stored["recommended"] == rec
    assert result["path"].endswith("models/readmission/latest_model_comparison.json")


def test_a_test_tie_goes_to_the_lower_brier_then_the_smaller_drop(make_settings):
    settings = make_settings()
    _save(settings, "logistic_regression", 0.70, 0.60, test_brier=0.088)
    _save(settings, "random_forest", 0.70, 0.69, test_brier=0.089)
    _save(settings, "xgboost", 0.66, 0.60)
    rec = compare_models(settings)["recommended"]
    assert rec["algorithm"] == "logistic_regression"
    assert "tied with random_forest" in rec["reason"] and "lower test Brier" in rec["reason"]
    same = make_settings(registry=settings.registry_uri + "_b")
    _save(same, "logistic_regression", 0.70, 0.60)
    _save(same, "random_forest", 0.70, 0.69)
    assert compare_models(same)["recommended"]["algorithm"] == "random_forest"  # |drop| 0.01 < 0.10


def test_oot_selection_is_available_and_labelled(make_settings):
    settings = make_settings({"training_config": {"selection": {"window": "oot"}}})
    _save(settings, "logistic_regression", 0.70, 0.67)  # drop 0.03
    _save(settings, "random_forest", 0.675, 0.67)  # drop 0.005
    _save(settings, "xgboost", 0.66, 0.60)
    result = compare_models(settings)
    rec = result["recommended"]
    assert rec["algorithm"] == "random_forest" and rec["selection_window"] == "oot"
    assert "tied with logistic_regression" in rec["reason"] and "smaller absolute test -> oot drop" in rec["reason"]
    assert "OUT-OF-TIME" in rec["reason"] and "no longer an unseen estimate" in rec["reason"]


def test_only_comparable_models_are_ranked_the_others_listed_with_the_reason(make_settings):
    settings = make_settings()
    splits = {"train": {"start_date": "1999-01-01"}}
    _save(settings, "logistic_regression", 0.66, 0.65, temporal_splits=splits, training_date="2026-01-02")
    _save(settings, "random_forest", 0.72, 0.70, temporal_splits={"train": {"start_date": "2003-01-01"}},
          training_date="2026-01-01")
    _save(settings, "xgboost", 0.68, 0.68, temporal_splits=splits, training_date="2026-01-03",
          gold_partitions={"gold/feature_store": {"2008-01": "rows=1"}})
    result = compare_models(settings)
    assert result["recommended"]["algorithm"] == "xgboost"
    assert [c["algorithm"] for c in result["candidates"]] == ["xgboost"]
    reasons = {n["algorithm"]: n["reason"] for n in result["not_comparable"]}
    assert set(reasons) == {"logistic_regression", "random_forest"}
    assert "gold partitions (fingerprints)" in reasons["logistic_regression"]
    assert "temporal splits" in reasons["random_forest"] and "xgboost" in reasons["random_forest"]


def test_recommend_ignores_models_without_the_window_auc():
    cands = [
        {"algorithm": "a", "test": {"auc_roc": None}, "oot": {"auc_roc": 0.7}, "auc_drop": None},
        {"algorithm": "b", "test": {"auc_roc": 0.6}, "oot": {"auc_roc": 0.6}, "auc_drop": 0.0},
    ]
    assert recommend(cands)[0]["algorithm"] == "b"
    assert recommend(cands, "oot")[0]["algorithm"] == "a"
    with pytest.raises(ArtifactError):
        recommend(cands[:1])


def test_untrained_algorithms_are_skipped_but_a_damaged_one_fails_loudly(make_settings):
    settings = make_settings()
    _save(settings, "logistic_regression", 0.66, 0.65)
    xgb = _save(settings, "xgboost", 0.7, 0.7)
    result = compare_models(settings)
    assert result["recommended"]["algorithm"] == "xgboost"
    assert [s["algorithm"] for s in result["skipped"]] == ["random_forest"]  # never trained
    assert "metadata not found" in result["skipped"][0]["reason"] and result["fallbacks"] == []
    reg = Registry(settings.registry_uri)
    for name in ("xgboost_latest.pkl", f"xgboost_v{xgb['version']}.pkl"):
        reg.storage.write_bytes(f"models/readmission/{name}", b"damaged")
    # the best model is damaged: no quiet switch to logistic_regression with a "skipped" line
    with pytest.raises(ArtifactError, match="xgboost is trained but no version of it verifies") as err:
        compare_models(settings)
    assert "does not match its metadata" in str(err.value) and "readmit train --algorithm xgboost" in str(err.value)


def test_truncated_latest_metadata_falls_back_to_the_newest_valid_version(make_settings):
    settings = make_settings()
    _save(settings, "logistic_regression", 0.66, 0.65)
    _save(settings, "random_forest", 0.60, 0.60)
    rf = _save(settings, "random_forest", 0.68, 0.70)
    reg = Registry(settings.registry_uri)
    latest = "models/readmission/random_forest_latest_metadata.json"
    reg.storage.write_bytes(latest, reg.storage.read_bytes(latest)[:200])  # truncated
    result = compare_models(settings)
    assert result["recommended"]["algorithm"] == "random_forest"
    assert result["recommended"]["version"] == rf["version"]
    [fallback] = result["fallbacks"]
    assert fallback["algorithm"] == "random_forest" and fallback["version"] == rf["version"]
    assert "corrupt or truncated" in fallback["reason"] and "newest valid version" in fallback["reason"]


def test_nothing_to_compare(make_settings):
    with pytest.raises(ArtifactError, match="no trained model to compare") as err:
        compare_models(make_settings())
    assert "readmit train" in str(err.value)
