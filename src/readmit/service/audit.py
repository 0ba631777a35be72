"""The audit trail of online predictions: one new object per answered request, never rewritten.

Each record names the request id, the time, the token's name and, per encounter, the model
(algorithm, version, alias, arm), the risk and band, and the patient and encounter ids as
salted hashes (HMAC-SHA256 with the audit salt): no identifier, no token, no clinical value.
Records live where the registry lives (folder or S3), under
``models/{model_name}/audit/online/{YYYY-MM-DD}/{request_id}.json``, each created exclusively;
CDS Hooks feedback (accepted, overridden) beside them under ``audit/feedback/``.
The salt comes from ``READMIT_AUDIT_SALT``, else it is made once and kept at
``audit/salt`` in the registry (who can read the registry can re-identify: protect it as
the registry). A record that cannot be written fails the request: nothing is answered unaudited.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from datetime import datetime
from typing import Any

from readmit.registry import Registry

ENV_SALT = "READMIT_AUDIT_SALT"
AUDIT_DIR = "audit/online"
FEEDBACK_DIR = "audit/feedback"
SALT_FILE = "audit/salt"
_SCORED = ("scored", "excluded", "risk", "risk_band", "flag", "algorithm", "version", "alias", "arm")


def audit_salt(registry: Registry) -> bytes:
    """The salt of the hashes: the environment's, else the registry's (made on first use)."""
    if os.environ.get(ENV_SALT):
        return os.environ[ENV_SALT].encode()
    rel = registry.rel(SALT_FILE)
    try:
        registry.storage.create_bytes(rel, secrets.token_hex(32).encode())
    except FileExistsError:
        pass
    return registry.storage.read_bytes(rel)


class AuditUnavailable(RuntimeError):
    """The audit record could not be written: the request is not answered (503)."""


class AuditLog:
    def __init__(self, registry: Registry):
        self.registry = registry
        self.salt = audit_salt(registry)

    def pseudonym(self, kind: str, value: int) -> str:
        return hmac.new(self.salt, f"{kind}:{int(value)}".encode(), hashlib.sha256).hexdigest()

    def write(self, request_id: str, when: datetime, caller: str, endpoint: str,
              rows: list[dict[str, Any]], patients: dict[int, int], extra: dict[str, Any] | None = None) -> str:
        """Create the record of one request; return where it is (``extra``: more fields of the
        record, e.g. a CDS Hooks call's hookInstance and card uuid, never an identifier)."""
        entries = []
        for row in rows:
            entry = {"encounter": self.pseudonym("encounter", row["encounter_id"]),
                     "patient": self.pseudonym("patient", patients[row["encounter_id"]])}
            keys = _SCORED if "scored" in row else ("recorded",)
            entry.update({k: row.get(k) for k in keys})
            entries.append(entry)
        record = {"request_id": request_id, "at": when.isoformat(), "token": caller, "endpoint": endpoint,
                  "rows": entries, **(extra or {})}
        return self._create(f"{AUDIT_DIR}/{when:%Y-%m-%d}/{request_id}.json", record)

    def write_feedback(self, feedback_id: str, when: datetime, caller: str, record: dict[str, Any]) -> str:
        """Create the record of one CDS Hooks feedback call beside the prediction records."""
        record = {"feedback_id": feedback_id, "at": when.isoformat(), "token": caller, **record}
        return self._create(f"{FEEDBACK_DIR}/{when:%Y-%m-%d}/{feedback_id}.json", record)

    def _create(self, name: str, record: dict[str, Any]) -> str:
        rel = self.registry.rel(name)
        try:
            self.registry.storage.create_bytes(rel, json.dumps(record, sort_keys=True).encode())
        except Exception as exc:  # a full disk, a read-only folder, S3 unreachable: never answer unaudited
            raise AuditUnavailable(f"the audit record could not be written ({type(exc).__name__})") from exc
        return self.registry.storage.uri_of(rel)
