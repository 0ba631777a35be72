"""Served models with a year of predictions written by the real scoring path (``readmit predict``).

Two deployments, both a champion (logistic regression) and a challenger (XGBoost) behind the
aliases, their predictions for 2008-01..2008-11 written by :func:`readmit.serving.predict.predict`
with an A/B test (half the patients each, by the stable hash of the serving contract), so the
monitoring tests read exactly what production writes (``risk_band`` from the configured bands,
reasons, arms) and a change in that output can fail them; 2008-12 is left unscored.

- ``served``: the full UCI data through the medallion, the two models trained at a small budget
  and registered by ``readmit.pipeline.train_algorithm`` (calibrated inside the training window;
  their reference profiles removed, so monitoring backfills one). Slow (tests/conftest.py
  SLOW_FIXTURES).
- ``small_served``: a copy of the small registry (tests/serving/model_fixtures.py, synthetic
  gold), for the fast loop.

Both are shared per session (``small_served`` built once per run, read-only: tests/shared_build.py): tests that write (records, profiles) take ``own_registry`` /
``small_own_registry``, a private copy of the registry. Loaded for the whole suite through
``pytest_plugins`` in tests/conftest.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from read_only import writable_copy
from readmit.config import Settings, load_settings
from shared_build import built_once

OOT_MONTHS = [f"2008-{m:02d}" for m in range(1, 13)]
AB_TEST = {"inference_config": {"ab_test": {"enabled": True, "challenger_share": 0.5}}}
SMALL = {
    "training_config": {"hyperparameter_tuning": {"n_iter": 1, "cv_folds": 2, "n_jobs": 1},
                        "algorithms": ["logistic_regression", "xgboost"]},
    **AB_TEST,
}


@dataclass
class Served:
    settings: Settings
    champion: dict[str, Any]  # {"algorithm", "version"}
    challenger: dict[str, Any]


def crown(settings: Settings, alias: str, algorithm: str, version: str) -> dict[str, Any]:
    """Point ``alias`` at a registered version, through the registry's own alias functions."""
    from readmit.registry import Registry
    from readmit.registry.aliases import set_alias

    set_alias(Registry.for_settings(settings), alias, algorithm, version, reason="monitoring tests", by="tests")
    return {"algorithm": algorithm, "version": version}


def write_predictions(settings: Settings, months: list[str]) -> None:
    """``readmit predict --start .. --end ..``: the champion and, with the A/B test, the challenger score the months."""
    from readmit.serving.predict import predict

    predict(settings, months[0], months[-1])


def served_on(root: Path, raw: Path) -> Served:
    """The real data through the medallion; LR and XGBoost registered (calibrated), crowned, scoring 2008.

    Their reference profiles are removed, as for versions registered before profiles existed:
    monitoring must backfill one from gold on first use (the tests check that it does).
    """
    from readmit.data.medallion import run_medallion
    from readmit.pipeline import train_algorithm

    config = root / "config.json"
    config.write_text(json.dumps(SMALL))
    settings = load_settings(str(config), raw=str(raw), datamart=str(root / "datamart"),
                             registry=str(root / "registry"))
    run_medallion(settings)
    champion, challenger = (train_algorithm(settings, a) for a in ("logistic_regression", "xgboost"))
    for saved in (champion, challenger):
        (Path(settings.registry_uri) / "models" / settings.config.model.model_name
         / f"{saved['algorithm']}_v{saved['version']}_profile.json").unlink()
    served = Served(settings, crown(settings, "champion", champion["algorithm"], champion["version"]),
                    crown(settings, "challenger", challenger["algorithm"], challenger["version"]))
    write_predictions(settings, OOT_MONTHS[:11])  # 2008-12 is left unscored
    return served


@pytest.fixture(scope="session")
def served(uci_zip, tmp_path_factory) -> Served:
    """Full UCI data, served locally (read-only for tests: copy the registry before writing to it)."""
    return served_on(tmp_path_factory.mktemp("served"), uci_zip)


@pytest.fixture
def own_registry(served, tmp_path) -> Settings:
    """The served settings with a private copy of the registry (tests write records and profiles)."""
    return replace(served.settings, registry_uri=str(writable_copy(served.settings.registry_uri, tmp_path / "registry")))


@pytest.fixture(scope="session")
def small_served(small_models, tmp_path_factory) -> Served:
    """A copy of the small registry and its gold, LR the champion and XGBoost the challenger, scoring 2008-01..11.

    Built once per run and read-only on disk (tests/shared_build.py): tests that write take small_own_registry."""
    with built_once(tmp_path_factory, "small_served", lambda root: _small_served_on(small_models, root),
                    "small_own_registry") as served:
        yield served


def _small_served_on(small_models, root: Path) -> Served:
    writable_copy(Path(small_models.datamart) / "gold", root / "datamart" / "gold")
    writable_copy(small_models.registry, root / "registry")
    settings = replace(small_models.settings(AB_TEST, root), datamart_uri=str(root / "datamart"),
                       registry_uri=str(root / "registry"))
    models = small_models.models()
    served = Served(settings, crown(settings, "champion", "logistic_regression", models["logistic_regression"]),
                    crown(settings, "challenger", "xgboost", models["xgboost"]))
    write_predictions(settings, OOT_MONTHS[:11])  # 2008-12 is left unscored
    return served


@pytest.fixture
def small_own_registry(small_served, tmp_path) -> Settings:
    """The small_served settings with a private copy of the registry."""
    target = writable_copy(small_served.settings.registry_uri, tmp_path / "registry")
    return replace(small_served.settings, registry_uri=str(target))
