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
from readmit.service.auth import Caller, RateLimit
from readmit.serving.batch import ScoringModel
from readmit.serving.history import HistoryStore, RedisHistoryStore, build_history_store, open_store
from readmit.serving.online import Coalescer
from readmit.serving.predict import resolve_models

log = logging.getLogger("readmit.service")


@dataclass
class ServiceState:
    settings: Settings
    tokens: list[tuple[str, Caller]]
    build_history: bool = True
    models: list[ScoringModel] | None = None
    store: HistoryStore | RedisHistoryStore | None = None
    audit: AuditLog | None = None
    problem: str | None = None  # why the service is not ready, when it is not
    loaded_at: str | None = None
    ready_seconds: float | None = None
    reload_problem: str | None = None  # why the last alias move was refused (the old model serves)
    watched: dict[str, Any] = field(default_factory=dict)  # alias -> (algorithm, version) loaded
    started: float = field(default_factory=time.monotonic)
    stopping: threading.Event = field(default_factory=threading.Event)
    rate: RateLimit = field(init=False)

    def __post_init__(self) -> None:
        self.rate = RateLimit(self.settings.config.serve_config.rate_per_token)
    coalescer: Coalescer = field(default_factory=Coalescer)  # one scoring batch at a time (2 cores)
    reload_lock: threading.Lock = field(default_factory=threading.Lock)  # one load or reload at a time

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
            store = open_store(settings)
            if store.fingerprints() is None:
                raise RuntimeError(f"the history store {store.where} was never built (`readmit serve --datamart D` "
                                   "builds it from D's silver)")
            registry = Registry.for_settings(settings)
            models, _ = resolve_models(settings, registry, None, None)
            audit = AuditLog(registry)
            self.watched = self._pointers(registry)
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

    @staticmethod
    def _pointers(registry: Registry) -> dict[str, Any]:
        out = {}
        for alias in ("champion", "challenger"):
            record = get_alias(registry, alias)
            out[alias] = None if record is None else (record["algorithm"], record["version"])
        return out

    def reload_if_moved(self) -> bool:
        """Load the models again when an alias moved; return whether they changed.

        The new models are loaded and verified beside the serving ones, then swapped in one
        assignment: a request in flight finishes with the models it started with. A new model
        that does not verify (tampered, truncated, unreachable) is refused: the last verified
        models keep serving and ``reload_problem`` says why.
        """
        registry = Registry.for_settings(self.settings)
        try:
            pointers = self._pointers(registry)
        except Exception as exc:  # the registry is unreachable (S3 endpoint down, folder gone)
            self._refused("the registry cannot be read at a reload", exc)
            return False
        if pointers == self.watched:  # nothing moved (or it moved back): the serving models are current
            if self.reload_problem is not None:
                log.info("the registry answers again; the serving models are current")
            self.reload_problem = None
            return False
        try:
            models, _ = resolve_models(self.settings, registry, None, None)
        except Exception as exc:
            self._refused("alias moved but the new model is refused", exc)
            return False
        self.models, self.watched, self.reload_problem = models, pointers, None
        self.loaded_at = datetime.now(UTC).isoformat()
        log.info("models reloaded: %s", ", ".join(f"{m.arm} {m.algorithm} v{m.version}" for m in models))
        return True

    def reload_now(self) -> bool:
        """One look at the aliases (or a first load when not ready); the periodic look and an
        admin's ``POST /v1/admin/reload`` take turns. Return whether the models changed."""
        with self.reload_lock:
            if self.ready:
                return self.reload_if_moved()
            self.load()
            return self.ready

    def _refused(self, what: str, exc: Exception) -> None:
        """Keep serving the last verified models; say why in ``reload_problem`` and, once per
        new problem, in the log."""
        problem = f"{what}: {str(exc).splitlines()[0]}"
        if problem != self.reload_problem:
            log.error("%s, still serving the last verified models (%s): %s", what, self._serving(), problem)
        self.reload_problem = problem

    def _serving(self) -> str:
        return ", ".join(f"{m.arm} {m.algorithm} v{m.version}" for m in self.models or [])

    def watch(self, loaded: bool = False) -> None:
        """Load (unless ``loaded``), then look for alias moves every ``serve_config.reload_seconds``
        until stopped."""
        if not loaded:
            with self.reload_lock:
                self.load()
        interval = self.settings.config.serve_config.reload_seconds
        while interval > 0 and not self.stopping.wait(interval):
            self.reload_now()

    def describe(self) -> dict[str, Any]:
        models = self.models or []
        return {"ready": self.ready, "problem": self.problem, "loaded_at": self.loaded_at,
                "reload_problem": self.reload_problem, "models": [_model_info(m) for m in models]}


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
