"""Fixtures (a pytest plugin, see tests/conftest.py): the report tests' view of the small registry.

The registry is ``small_models`` (tests/serving/model_fixtures.py: synthetic gold, three models
trained once through ``pipeline.train`` so the model cards are written as at registration,
compared), read-only; tests copy it before writing anything next to it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from read_only import writable_copy
from readmit.config import load_settings


@pytest.fixture(scope="session")
def trained(small_models) -> dict:
    """{"datamart", "registry", "config", "metadata": [...]} of the trained and compared registry (read-only)."""
    return {"datamart": Path(small_models.datamart), "registry": Path(small_models.registry),
            "config": Path(small_models.config), "metadata": small_models.metadata}


@pytest.fixture
def registry_copy(trained, tmp_path):
    """A private copy of the trained registry and its settings (the datamart is shared, read-only)."""
    target = writable_copy(trained["registry"], tmp_path / "registry")
    return load_settings(str(trained["config"]), datamart=str(trained["datamart"]), registry=str(target))
