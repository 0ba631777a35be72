"""Trained and ready to serve: a small registry trained once per session, read-only, and copies.

Loaded for the whole suite through ``pytest_plugins`` in tests/conftest.py (the serving,
governance, report, monitoring, CLI and Airflow tests share it). Built once: synthetic gold
(tests/training/gold_fixtures.py, 1999-2008), then logistic regression, XGBoost and random forest
through ``pipeline.train`` (so each version has its profile and model card, as at registration)
at the smallest budgets (1 candidate, 2 folds, the minimum bootstrap), then the comparison. No
alias is set.

``small_models`` is built once per test run, however many xdist workers share it
(tests/shared_build.py), and read-only on disk (tests/read_only.py: no write bits, and fingerprinted, so
a test that writes into it fails the session even as root). Tests that change anything work on
a copy (``small_models_copy``, ``small_models_s3``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from read_only import linked_copy, writable_copy
from readmit import pipeline
from readmit.config import Settings, load_settings
from shared_build import built_once
from training.gold_fixtures import SMALL_BUDGET, synthetic_gold_frames, write_gold

ALGORITHMS = ["logistic_regression", "xgboost", "random_forest"]
TINY_SERVING_BUDGET: dict[str, Any] = {
    "training_config": {
        **SMALL_BUDGET["training_config"],
        "algorithms": ALGORITHMS,
        "hyperparameter_tuning": {"n_iter": 1, "cv_folds": 2, "n_jobs": 1},
        "bootstrap": {"resamples": 20},  # the smallest the config allows
    },
}


@dataclass(frozen=True)
class Served:
    config: str
    datamart: str
    registry: str
    raw: str | None = None
    metadata: list[dict[str, Any]] = field(default_factory=list, compare=False)  # as pipeline.train returned it

    def settings(self, extra: dict[str, Any] | None = None, tmp: Path | None = None) -> Settings:
        config = self.config
        if extra:
            merged = _merge(json.loads(Path(self.config).read_text()), extra)
            config = str((tmp or Path(self.config).parent) / f"config_{uuid.uuid4().hex[:8]}.json")
            Path(config).write_text(json.dumps(merged))
        return load_settings(config, raw=self.raw, datamart=self.datamart, registry=self.registry)

    def models(self) -> dict[str, str]:
        """algorithm -> the version trained for this session."""
        reg = pipeline.Registry.for_settings(self.settings())
        return {m["algorithm"]: m["version"] for m in reg.list_models()}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# -- the small registry -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def small_models(tmp_path_factory) -> Served:
    """Synthetic gold + 3 registered models + a comparison, read-only: use small_models_copy to change anything."""
    with built_once(tmp_path_factory, "small_models", _build_small_models, "small_models_copy") as served:
        yield served


def _build_small_models(root: Path) -> Served:
    """Built once per run (tests/shared_build.py), whatever the number of xdist workers."""
    config = root / "model_config.json"
    config.write_text(json.dumps(TINY_SERVING_BUDGET))
    datamart, registry = root / "datamart", root / "registry"
    write_gold(str(datamart), *synthetic_gold_frames())
    s = Served(str(config), str(datamart), str(registry))
    settings = s.settings()
    metadata = pipeline.train(settings)
    pipeline.compare_models(settings)
    return Served(s.config, s.datamart, s.registry, metadata=metadata)


@pytest.fixture
def small_models_copy(small_models, tmp_path) -> Served:
    """A private copy of the small_models datamart and registry: the registry copied (writable),
    the gold tables linked (read-only: a test that changes a gold table takes a copy of it, see
    tests/read_only.py; new tables such as the predictions are its own)."""
    linked_copy(Path(small_models.datamart) / "gold", tmp_path / "datamart" / "gold")
    writable_copy(small_models.registry, tmp_path / "registry")
    return Served(small_models.config, str(tmp_path / "datamart"), str(tmp_path / "registry"),
                  metadata=small_models.metadata)


def upload(local: Path, remote: str, keep=lambda rel: True) -> int:
    """Every file under ``local`` to ``remote`` (bucket/prefix) in one bulk put; returns the count."""
    import s3fs

    files = {f"{remote}/{p.relative_to(local).as_posix()}": p.read_bytes() for p in sorted(local.rglob("*"))
             if p.is_file() and keep(p.relative_to(local).as_posix())}
    s3fs.S3FileSystem().pipe(files)
    return len(files)


@pytest.fixture
def small_models_s3(small_models, s3_uri) -> Served:
    """The small_models registry and the 2008 gold (feature and label stores) on the moto S3 server."""
    base = s3_uri.removeprefix("s3://")
    upload(Path(small_models.datamart) / "gold", f"{base}/datamart/gold",
           lambda rel: "snapshot_month=" not in rel or "snapshot_month=2008-" in rel)
    upload(Path(small_models.registry), f"{base}/registry")
    return Served(small_models.config, f"{s3_uri}/datamart", f"{s3_uri}/registry", metadata=small_models.metadata)
