"""Aliases (``champion``, ``challenger``) that point at one model version, and their history.

Layout under ``{registry_uri}/models/{model_name}/``::

    aliases/{alias}.json                         {"alias", "algorithm", "version", "set_at", "by", "reason"}
    events/{YYYYMMDDTHHMMSSffffff}_{uuid8}.json  one change: {"event", "alias", "from", "to", "at", "by", "reason", ...}
    decisions/promotion_{YYYYMMDDTHHMMSSffffff}.json   a promotion decision (readmit.governance)

Setting an alias writes its event first, then the alias file; each write is atomic (see
:mod:`readmit.storage`), so a reader sees the old alias or the new one, and every alias value it
can see has an event. Events and decisions are append-only: each is its own object with a unique
name, created exclusively (never overwritten: a local hard link, an S3 ``If-None-Match`` PUT).
The history is the events in name (= time) order.

Loading by alias (:func:`load_alias`) goes through :meth:`Registry.load`, which verifies the
artifact before unpickling it; an alias never bypasses that check.
"""

from __future__ import annotations

import getpass
import os
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from readmit.errors import ArtifactError, ReadmitInputError
from readmit.jsonsafe import dumps
from readmit.registry.store import Registry
from readmit.registry.versions import check_algorithm, check_version, create_exclusive

ALIASES = ("champion", "challenger")
EVENT_TYPES = ("alias_set", "promotion", "rollback")
ALIASES_DIR = "aliases"
EVENTS_DIR = "events"
DECISIONS_DIR = "decisions"
_EVENT_NAME = re.compile(r"^\d{8}T\d{12}_[0-9a-f]{8}\.json$")


def actor() -> str:
    """Who is acting: ``READMIT_ACTOR`` when set, else the operating-system user."""
    name = os.environ.get("READMIT_ACTOR")
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        return "unknown"


def _stamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S%f")


def _check_alias(alias: str) -> str:
    if alias not in ALIASES:
        raise ReadmitInputError(f"unknown alias {alias!r}", fix=f"use one of: {', '.join(ALIASES)}")
    return alias


def alias_path(registry: Registry, alias: str) -> str:
    return registry.rel(f"{ALIASES_DIR}/{_check_alias(alias)}.json")


def get_alias(registry: Registry, alias: str) -> dict[str, Any] | None:
    """The alias record, or None when the alias was never set (or was cleared)."""
    rel = alias_path(registry, alias)
    try:
        record = registry.storage.read_json(rel)
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ArtifactError(f"alias file is corrupt ({exc})", source=registry.storage.uri_of(rel),
                            fix=f"set it again (`readmit promote`) or restore it from {EVENTS_DIR}/") from None
    if not isinstance(record, dict) or not {"algorithm", "version"} <= set(record):
        raise ArtifactError("alias file lacks algorithm/version", source=registry.storage.uri_of(rel),
                            fix="set it again (`readmit promote`)")
    # A name like "../../x" would point outside the registry: refuse before any file is read.
    check_algorithm(record["algorithm"], registry.storage.uri_of(rel))
    check_version(record["version"], registry.storage.uri_of(rel))
    return record


def get_aliases(registry: Registry) -> dict[str, dict[str, Any] | None]:
    return {alias: get_alias(registry, alias) for alias in ALIASES}


def record_event(registry: Registry, event: dict[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
    """Append one event (a new object with a unique, time-ordered name); return it with its path."""
    if event.get("event") not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event.get('event')!r}")
    now = now or datetime.now(UTC)
    name = f"{_stamp(now)}_{uuid.uuid4().hex[:8]}.json"
    rel = registry.rel(f"{EVENTS_DIR}/{name}")
    record = {**event, "at": event.get("at") or now.isoformat()}
    create_exclusive(registry.storage, rel, dumps(record).encode())  # never overwrites
    return {**record, "path": registry.storage.uri_of(rel)}


def _pointer(record: dict[str, Any] | None) -> dict[str, str] | None:
    return None if record is None else {"algorithm": record["algorithm"], "version": record["version"]}


def set_alias(
    registry: Registry,
    alias: str,
    algorithm: str | None,
    version: str | None,
    *,
    reason: str,
    by: str | None = None,
    event: str = "alias_set",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Point ``alias`` at ``{algorithm}_v{version}`` (None, None clears it); return the event.

    The version must exist and its artifact must match its sha256 (checked without unpickling).
    """
    _check_alias(alias)
    by = by or actor()
    if algorithm is not None:
        if version is None or version == "latest":
            raise ReadmitInputError("an alias points at a fixed version, not 'latest'",
                                    fix="give the version (`readmit registry list`)")
        registry.verify(algorithm, version)
    now = datetime.now(UTC)
    previous = get_alias(registry, alias)
    target = None if algorithm is None else {"algorithm": algorithm, "version": version}
    recorded = record_event(registry, {
        "event": event, "alias": alias, "from": _pointer(previous), "to": target,
        "at": now.isoformat(), "by": by, "reason": reason, **(extra or {}),
    }, now=now)
    rel = alias_path(registry, alias)
    if target is None:
        registry.storage.delete(rel)
    else:
        registry.storage.write_json(rel, {"alias": alias, **target, "set_at": now.isoformat(), "by": by,
                                          "reason": reason})
    return recorded


def alias_history(registry: Registry, alias: str | None = None) -> list[dict[str, Any]]:
    """Every recorded event, oldest first (optionally only those of one alias)."""
    out = []
    for name in registry.storage.listdir(registry.rel(EVENTS_DIR)):
        if not _EVENT_NAME.match(name):
            continue
        rel = registry.rel(f"{EVENTS_DIR}/{name}")
        try:
            event = registry.storage.read_json(rel)
        except (FileNotFoundError, ValueError) as exc:
            raise ArtifactError(f"event is unreadable ({exc})", source=registry.storage.uri_of(rel),
                                fix="restore it from a backup; events are never rewritten") from None
        if alias is None or event.get("alias") == alias:
            out.append({**event, "id": name.removesuffix(".json")})
    return out


def champion_lineage(registry: Registry) -> list[dict[str, str]]:
    """The champions in force, oldest first: each promotion or setting pushes, a rollback pops.

    The last entry is the current champion; the one before it is what a rollback restores.
    """
    stack: list[dict[str, str]] = []
    for event in alias_history(registry, "champion"):
        target = event.get("to")
        if event.get("event") == "rollback":
            if stack:
                stack.pop()
            if target is not None and (not stack or stack[-1] != target):
                stack.append(target)  # the restored version, should the stack not already end with it
        elif target is None:
            stack.clear()
        elif not stack or stack[-1] != target:
            stack.append(target)
    return stack


def load_alias(registry: Registry, alias: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(model, metadata, alias record) of the version ``alias`` points at, verified before unpickling."""
    record = get_alias(registry, alias)
    if record is None:
        raise ArtifactError(
            f"no {alias} model yet",
            source=registry.storage.uri_of(alias_path(registry, alias)),
            fix="promote one (`readmit promote` after `readmit train` and `readmit compare`)"
            if alias == "champion" else
            "name one (`readmit promote --candidate VERSION --as challenger`); or use --alias champion",
        )
    model, meta = registry.load(record["algorithm"], record["version"])
    return model, meta, record


def write_decision(registry: Registry, decision: dict[str, Any], *, now: datetime | None = None) -> str:
    """Store a promotion decision as a new object; return its location."""
    now = now or datetime.now(UTC)
    rel = registry.rel(f"{DECISIONS_DIR}/promotion_{_stamp(now)}.json")
    location = registry.storage.uri_of(rel)
    create_exclusive(registry.storage, rel, dumps({**decision, "path": location}).encode())
    return location


def list_decisions(registry: Registry) -> list[dict[str, Any]]:
    """Every stored promotion decision, oldest first."""
    names = [n for n in registry.storage.listdir(registry.rel(DECISIONS_DIR)) if n.startswith("promotion_")]
    return [registry.storage.read_json(registry.rel(f"{DECISIONS_DIR}/{n}")) for n in names]
