"""Checksums and signatures of registry versions.

The sha256 of a pickled model is stored in its metadata and checked before unpickling: that
catches corruption and truncation. It does not catch tampering -- whoever can replace the pickle
can rewrite the digest beside it. For that, a version can be *signed*: when the environment
variable ``READMIT_REGISTRY_KEY`` holds a secret, each saved metadata file (which carries the
artifact's sha256) gets an HMAC-SHA256 signature::

    "signature": {"algorithm": "hmac-sha256", "value": "<hex>"}

computed over the metadata's canonical JSON (sorted keys, no whitespace) without the
``signature`` field itself. Loading verifies it before any unpickling:

- key set, signature present and wrong: refused (always);
- key set, no signature: accepted, unless ``model_config.require_signature`` is true;
- no key: signatures cannot be checked; accepted, unless ``require_signature`` is true.

The key is read from the environment only, never written to a config, a log or metadata.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from readmit.config import ENV_REGISTRY_KEY, from_env
from readmit.errors import ArtifactError
from readmit.jsonsafe import jsonable

SIGNATURE_ALGORITHM = "hmac-sha256"
KEY_ENV = ENV_REGISTRY_KEY[0]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signing_key() -> bytes | None:
    """The registry signing key from ``READMIT_REGISTRY_KEY``, or None when unset."""
    value = from_env(ENV_REGISTRY_KEY)
    return value.encode() if value else None


def canonical(metadata: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the metadata without ``signature``, as canonical JSON."""
    body = {k: v for k, v in metadata.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign(metadata: dict[str, Any], key: bytes) -> dict[str, Any]:
    """``metadata`` (JSON-normalised) with its signature added."""
    plain = jsonable(metadata)  # sign exactly what will be read back
    plain.pop("signature", None)
    value = hmac.new(key, canonical(plain), hashlib.sha256).hexdigest()
    return {**plain, "signature": {"algorithm": SIGNATURE_ALGORITHM, "value": value}}


def check_signature(metadata: dict[str, Any], key: bytes | None, *, required: bool, source: str) -> bool:
    """Apply the signature policy above; return whether the metadata is signed and verified."""
    sig = metadata.get("signature")
    if key is None:
        if required:
            raise ArtifactError(
                "model_config.require_signature is true but no signing key is set, so this version "
                "cannot be verified",
                source=source,
                fix=f"set {KEY_ENV} to the registry's signing key in this process's environment",
            )
        return False
    if sig is None:
        if required:
            raise ArtifactError(
                "model version is not signed and model_config.require_signature is true",
                source=source,
                fix="retrain the model with the signing key set, or set "
                "model_config.require_signature to false to accept unsigned versions",
            )
        return False
    expected = hmac.new(key, canonical(metadata), hashlib.sha256).hexdigest()
    if not (isinstance(sig, dict) and sig.get("algorithm") == SIGNATURE_ALGORITHM
            and isinstance(sig.get("value"), str) and hmac.compare_digest(sig["value"], expected)):
        raise ArtifactError(
            "model metadata signature does not match: the metadata or its artifact digest was "
            "changed after saving, or it was signed with another key",
            source=source,
            fix=f"check that {KEY_ENV} is the key this registry was signed with; otherwise treat the "
            "version as tampered with: restore it from a backup or retrain",
        )
    return True
