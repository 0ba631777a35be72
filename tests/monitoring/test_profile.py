"""The reference profile is stored at training (through the pipeline) and read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from readmit import pipeline
from readmit.monitoring.profile import ensure_profile, profile_name, read_profile
from readmit.registry import Registry


def test_the_training_step_stores_the_profile_of_its_training_window(make_settings, tmp_path):
    # Platt calibration keeps the score continuous (isotonic's is a step function, whose deciles merge)
    settings = make_settings({"training_config": {"calibration": {"method": "sigmoid"}}},
                             registry=str(tmp_path / "registry"))
    saved = pipeline.run_step("train_logistic_regression", settings)
    path = Path(settings.registry_uri) / "models" / "readmission" / profile_name("logistic_regression", saved["version"])
    profile = json.loads(path.read_text())
    assert profile["source"] == "training"
    assert (profile["algorithm"], profile["version"]) == ("logistic_regression", saved["version"])
    assert profile["rows"] == saved["training_samples"]
    assert list(profile["numeric"]) == saved["features"]["numeric"]
    assert list(profile["categorical"]) == saved["features"]["categorical"]
    assert profile["window"] == {"start_date": "1999-01-01", "end_date": "2005-12-31"}
    for column in profile["numeric"].values():
        assert sum(column["shares"]) + column["missing"] == pytest.approx(1.0)
        assert len(column["shares"]) == len(column["edges"]) + 1
    for column in profile["categorical"].values():
        assert sum(column["shares"].values()) + column["missing"] == pytest.approx(1.0)
    assert profile["numeric"]["age_midpoint"]["missing"] > 0  # the synthetic gold misses an age now and then
    assert len(profile["score"]["edges"]) == 9  # deciles of a continuous score

    registry = Registry(settings.registry_uri)
    assert read_profile(registry, "logistic_regression", saved["version"]) == profile
    assert ensure_profile(settings, registry, "logistic_regression", saved["version"]) == profile


def test_readmit_train_stores_profiles_too(make_settings, tmp_path):
    settings = make_settings({"training_config": {"algorithms": ["logistic_regression"]}},
                             registry=str(tmp_path / "registry"))
    (saved,) = pipeline.train(settings)
    assert read_profile(Registry(settings.registry_uri), "logistic_regression", saved["version"])["source"] == "training"
