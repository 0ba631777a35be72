"""Comparing the latest models and recommending one."""

from __future__ import annotations

import pytest

from readmit.errors import ArtifactError
from readmit.registry import Registry
from readmit.training.compare import compare_models, recommend


def _perf(test_auc, oot_auc):
    base = {"accuracy": 0.7, "precision": 0.2, "recall": 0.5, "f1": 0.3, "pr_auc": 0.2, "brier": 0.1,
            "log_loss": 0.4}
    return {"test": {**base, "auc_roc": test_auc, "gini": 2 * test_auc - 1},
            "oot": {**base, "auc_roc": oot_auc, "gini": 2 * oot_auc - 1}}


def _save(settings, algorithm, test_auc, oot_auc):
    reg = Registry(settings.registry_uri, settings.config.model.model_name)
    return reg.save(algorithm, {"algorithm": algorithm}, {"performance": _perf(test_auc, oot_auc),
                                                          "threshold": {"value": 0.3}})


def test_highest_oot_auc_is_recommended_and_written(make_settings):
    settings = make_settings()
    _save(settings, "logistic_regression", 0.66, 0.65)
    rf = _save(settings, "random_forest", 0.67, 0.69)
    _save(settings, "xgboost", 0.68, 0.68)
    result = compare_models(settings)
    rec = result["recommended"]
    assert rec["algorithm"] == "random_forest" and rec["version"] == rf["version"]
    assert "highest out-of-time ROC-AUC (0.6900; next xgboost 0.6800)" in rec["reason"]
    assert [c["algorithm"] for c in result["candidates"]] == ["logistic_regression", "random_forest", "xgboost"]
    for c in result["candidates"]:
        for metric in ("accuracy", "precision", "recall", "f1", "auc_roc", "pr_auc", "brier", "log_loss", "gini"):
            assert metric in c["test"] and metric in c["oot"]
    assert result["candidates"][1]["auc_drop"] == pytest.approx(-0.02)
    stored = Registry(settings.registry_uri).read_comparison()
    assert stored["recommended"] == rec
    assert result["path"].endswith("models/readmission/latest_model_comparison.json")


def test_a_tie_goes_to_the_smaller_drop(make_settings):
    settings = make_settings()
    _save(settings, "logistic_regression", 0.70, 0.67)  # drop 0.03
    _save(settings, "random_forest", 0.675, 0.67)  # drop 0.005
    _save(settings, "xgboost", 0.66, 0.60)
    rec = compare_models(settings)["recommended"]
    assert rec["algorithm"] == "random_forest"
    assert "tied with logistic_regression" in rec["reason"] and "smaller test -> oot drop" in rec["reason"]


def test_recommend_ignores_models_without_oot_auc():
    cands = [
        {"algorithm": "a", "test": {"auc_roc": 0.7}, "oot": {"auc_roc": None}, "auc_drop": float("inf")},
        {"algorithm": "b", "test": {"auc_roc": 0.6}, "oot": {"auc_roc": 0.6}, "auc_drop": 0.0},
    ]
    assert recommend(cands)[0]["algorithm"] == "b"
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
