"""The format of the online audit trail, and its reader: one JSON object per answered request.

``readmit serve`` writes them (:mod:`readmit.service.audit`); monitoring and the report read
them as the "online" source beside the batch months (:func:`read_online`). The format lives
here, with the registry the records are kept in, so both floors share one definition.

Where: ``models/{model_name}/audit/online/{YYYY-MM-DD}/{request_id}.json`` in the registry,
each created exclusively, never rewritten. What (JSON)::

    request_id, at (ISO time, UTC), token (the token's name), endpoint
    rows [{encounter, patient (HMAC-SHA256 hex of "encounter:{id}" / "patient:{id}"),
           scored, excluded, risk, risk_band, flag, algorithm, version, alias, arm}
          | {encounter, patient, recorded}]   (a discharge recorded, POST /v1/encounters)

The salt of the hashes is ``READMIT_AUDIT_SALT``, else ``audit/salt`` in the registry (made on
first use): who can read the registry can re-identify, so protect it as the registry.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from typing import Any

import polars as pl

from readmit.errors import ArtifactError
from readmit.registry.store import Registry

ENV_SALT = "READMIT_AUDIT_SALT"
AUDIT_DIR = "audit/online"
FEEDBACK_DIR = "audit/feedback"  # CDS Hooks feedback (accepted, overridden), beside the predictions
SALT_FILE = "audit/salt"
SCORED_FIELDS = ("scored", "excluded", "risk", "risk_band", "flag", "algorithm", "version", "alias", "arm")
ONLINE_SCHEMA = {
    "request_id": pl.String, "at": pl.String, "month": pl.String, "endpoint": pl.String, "encounter": pl.String,
    "patient": pl.String, "risk": pl.Float64, "risk_band": pl.String, "flag": pl.Boolean, "algorithm": pl.String,
    "version": pl.String, "alias": pl.String, "arm": pl.String,
}


def audit_salt(registry: Registry, *, create: bool = True) -> bytes | None:
    """The salt of the hashes: the environment's, else the registry's (made on first use when
    ``create``; None when it was never made and ``create`` is false)."""
    if os.environ.get(ENV_SALT):
        return os.environ[ENV_SALT].encode()
    rel = registry.rel(SALT_FILE)
    if create:
        try:
            registry.storage.create_bytes(rel, secrets.token_hex(32).encode())
        except FileExistsError:
            pass
    try:
        return registry.storage.read_bytes(rel)
    except FileNotFoundError:
        return None


def pseudonym(salt: bytes, kind: str, value: int) -> str:
    """The salted hash the audit keeps instead of an id (``kind``: encounter or patient)."""
    return hmac.new(salt, f"{kind}:{int(value)}".encode(), hashlib.sha256).hexdigest()


def record_rel(registry: Registry, day: str, request_id: str) -> str:
    return registry.rel(f"{AUDIT_DIR}/{day}/{request_id}.json")


def read_online(registry: Registry, months: list[str]) -> pl.DataFrame:
    """Every scored row of the audit records made in ``months`` (YYYY-MM, by the time of the
    request), as ONLINE_SCHEMA; rows not scored (death or hospice) and recorded discharges are
    left out. A file that is not an audit record is an error naming it: nothing is skipped."""
    wanted = set(months)
    storage = registry.storage
    rows: list[dict[str, Any]] = []
    for day in storage.listdir(registry.rel(AUDIT_DIR)):
        if day[:7] not in wanted:
            continue
        for name in storage.listdir(registry.rel(f"{AUDIT_DIR}/{day}")):
            rows += _scored_rows(storage, registry.rel(f"{AUDIT_DIR}/{day}/{name}"))
    return pl.DataFrame(rows, schema=ONLINE_SCHEMA, orient="row")


def _scored_rows(storage: Any, rel: str) -> list[dict[str, Any]]:
    try:
        record = storage.read_json(rel)
        head = {"request_id": record["request_id"], "at": record["at"], "month": record["at"][:7],
                "endpoint": record["endpoint"]}
        return [{**head, **{k: row.get(k) for k in ONLINE_SCHEMA if k not in head}}
                for row in record["rows"] if row.get("scored")]
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"not an audit record ({type(exc).__name__}: {exc})", source=storage.uri_of(rel),
                            fix="move it out of the audit folder (records are written only by readmit serve)"
                            ) from None
