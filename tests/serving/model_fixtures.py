"""Real data, trained and ready to serve: gold from the UCI sample and a registry with 3 models.

Loaded for the whole suite through ``pytest_plugins`` in tests/conftest.py (the serving,
governance, CLI and Airflow tests share it). Built once per session: the medallion on the
15% UCI sample, then logistic regression, XGBoost and random forest with a tiny search budget,
then the comparison. No alias is set. Tests that change anything work on a copy
(``uci_models_copy``).
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from readmit import pipeline
from readmit.config import Settings, load_settings

TINY_SERVING_BUDGET: dict[str, Any] = {
    "training_config": {
        "algorithms": ["logistic_regression", "xgboost", "random_forest"],
        "hyperparameter_tuning": {"n_iter": 1, "cv_folds": 2, "n_jobs": 1},
        "min_train_partitions": 3,
    },
}


@dataclass(frozen=True)
class Served:
    config: str
    datamart: str
    registry: str
    raw: str

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


@pytest.fixture(scope="session")
def uci_models(uci_sample, tmp_path_factory) -> Served:
    """Gold (UCI sample) + 3 registered models + a comparison. Do not modify: use uci_models_copy."""
    root = tmp_path_factory.mktemp("uci_models")
    config = root / "model_config.json"
    config.write_text(json.dumps(TINY_SERVING_BUDGET))
    s = Served(str(config), str(root / "datamart"), str(root / "registry"), str(uci_sample))
    settings = s.settings()
    pipeline.run_medallion(settings)
    pipeline.train(settings)
    pipeline.compare_models(settings)
    return s


@pytest.fixture
def uci_models_copy(uci_models, tmp_path) -> Served:
    """A private copy of the uci_models datamart (gold only) and registry."""
    shutil.copytree(uci_models.datamart + "/gold", tmp_path / "datamart" / "gold")
    shutil.copytree(uci_models.registry, tmp_path / "registry")
    return Served(uci_models.config, str(tmp_path / "datamart"), str(tmp_path / "registry"), uci_models.raw)


@pytest.fixture
def uci_models_s3(uci_models, s3_uri) -> Served:
    """The uci_models registry and the 2008 gold (feature and label stores) on the moto S3 server."""
    import s3fs

    fs = s3fs.S3FileSystem()
    base = s3_uri.removeprefix("s3://")
    for local, remote in ((Path(uci_models.datamart) / "gold", f"{base}/datamart/gold"),
                          (Path(uci_models.registry), f"{base}/registry")):
        files = {f"{remote}/{p.relative_to(local).as_posix()}": p.read_bytes() for p in sorted(local.rglob("*"))
                 if p.is_file() and ("snapshot_month=" not in str(p) or "snapshot_month=2008-" in str(p))}
        fs.pipe(files)
    return Served(uci_models.config, f"{s3_uri}/datamart", f"{s3_uri}/registry", uci_models.raw)
