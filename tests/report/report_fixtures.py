"""Fixtures (a pytest plugin, see tests/conftest.py): a registry with trained models (synthetic gold, small budget), shared by the report tests.

Trained once per session through ``pipeline.train`` (so the model cards are written as at
registration) and compared; tests copy it before writing anything next to it.
"""

from __future__ import annotations

import json
import shutil

import pytest

from readmit import pipeline
from readmit.config import load_settings
from training.gold_fixtures import SMALL_BUDGET, synthetic_gold_frames, write_gold

ALGORITHMS = ["logistic_regression", "xgboost"]


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict:
    """{"datamart", "registry", "config", "metadata": [...]} of a trained and compared registry."""
    root = tmp_path_factory.mktemp("report_trained")
    datamart, registry, config = root / "datamart", root / "registry", root / "config.json"
    write_gold(str(datamart), *synthetic_gold_frames())
    config.write_text(json.dumps({**SMALL_BUDGET, "training_config": {
        **SMALL_BUDGET["training_config"], "algorithms": ALGORITHMS}}))
    settings = load_settings(str(config), datamart=str(datamart), registry=str(registry))
    metadata = pipeline.train(settings)
    pipeline.compare_models(settings)
    return {"datamart": datamart, "registry": registry, "config": config, "metadata": metadata}


@pytest.fixture
def registry_copy(trained, tmp_path):
    """A private copy of the trained registry and its settings (the datamart is shared, read-only)."""
    target = tmp_path / "registry"
    shutil.copytree(trained["registry"], target)
    settings = load_settings(str(trained["config"]), datamart=str(trained["datamart"]), registry=str(target))
    return settings
