"""What a running service holds: settings, tokens, the verified models, the history store, the audit log."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from readmit.config import Settings
from readmit.registry import Registry
from readmit.registry.aliases import get_alias
from readmit.service.audit import AuditLog
from readmit.service.auth import Caller
from readmit.serving.history import HistoryStore, build_history_store, store_path
from readmit.serving.predict import ScoringModel, resolve_models

log = logging.getLogger("readmit.service")


@dataclass
class ServiceState:
    settings: Settings
    tokens: list[tuple[str, Caller]]
    build_history: bool = True
    models: list[ScoringModel] | None = None
    store: HistoryStore | None = None
    audit: AuditLog | None = None
    problem: str | None = None  # why the service is not ready, when it is not
    loaded_at: str | None = None
    ready_seconds: float | None = None
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one scoring at a time (2 cores)

    @property
    def ready(self) -> bool:
        return self.models is not None and self.store is not None and self.audit is not None

    def load(self) -> None:
        """Open the history store (building it from silver when missing or stale) and load the models.

        Every artifact is verified (sha256, and the signature when the config requires it) before
        it is unpickled (:meth:`readmit.registry.Registry.load`). A failure is kept in ``problem``.
        """
        try:
            settings = self.settings
            if self.build_history:
                built = build_history_store(settings)
                log.info("history store %s: %d silver + %d recorded encounters (%s)", built.path,
                         built.silver_rows, built.recorded_rows, "rebuilt" if built.rebuilt else "up to date")
            store = HistoryStore(store_path(settings.datamart_uri))
            if store.fingerprints() is None:
                raise RuntimeError(f"the history store {store.path} was never built (`readmit serve --datamart D` "
                                   "builds it from D's silver)")
            registry = Registry.for_settings(settings)
            models, _ = resolve_models(settings, registry, None, None)
            audit = AuditLog(registry)
            self.store, self.audit, self.models = store, audit, models
            self.loaded_at = datetime.now(UTC).isoformat()
            self.ready_seconds = time.monotonic() - self.started
            self.problem = None
            champion = get_alias(registry, "champion") or {}
            log.info("ready in %.2f s: %s", self.ready_seconds,
                     ", ".join(f"{m.arm} {m.algorithm} v{m.version}" for m in models) or champion)
        except Exception as exc:  # kept for /v1/health/ready and the log; the service stays up
            self.problem = str(exc).splitlines()[0]
            log.error("not ready: %s", self.problem)

    def describe(self) -> dict[str, Any]:
        models = self.models or []
        return {"ready": self.ready, "problem": self.problem, "loaded_at": self.loaded_at,
                "models": [_model_info(m) for m in models]}


def _model_info(model: ScoringModel) -> dict[str, Any]:
    meta = model.metadata
    numeric, categorical = model.features()
    return {
        "arm": model.arm, "alias": model.alias, "algorithm": model.algorithm, "version": model.version,
        "threshold": meta.get("threshold"), "calibration": meta.get("calibration"),
        "features": {"numeric": numeric, "categorical": categorical},
        "training_date": meta.get("training_date"), "saved_at": meta.get("saved_at"),
        "temporal_splits": meta.get("temporal_splits"), "label": meta.get("label"),
        "performance": meta.get("performance"), "artifact_sha256": (meta.get("artifact") or {}).get("sha256"),
        "scoring": model.scorer.method,
    }
