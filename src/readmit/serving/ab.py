"""A/B assignment at scoring time: which arm (champion or challenger) scores each patient.

A patient's bucket is the first 8 bytes of ``sha256("{salt}:{patient_nbr}")`` modulo
``BUCKETS`` (10,000), as experimentation platforms do it: stable across runs, months, machines
and library versions, independent of row order. Buckets below ``challenger_share * BUCKETS``
go to the challenger. The same salt keeps every patient in the same arm; a new salt reshuffles.

The running test (salt, share, start) is stored at ``models/{model_name}/ab_test.json``.
Changing the share under the same salt would move patients between arms mid-test, so it is
refused; starting a new test (a new salt) is always allowed.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import numpy as np

from readmit.config import ABTest
from readmit.errors import ReadmitInputError
from readmit.registry import Registry

BUCKETS = 10_000
ARMS = ("champion", "challenger")
STATE_FILE = "ab_test.json"


def bucket_of(salt: str, patient_nbr: int) -> int:
    """The bucket (0..9999) of one patient."""
    digest = hashlib.sha256(f"{salt}:{int(patient_nbr)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def buckets(salt: str, patient_nbr: np.ndarray) -> np.ndarray:
    """The bucket of every row (each distinct patient is hashed once)."""
    unique, inverse = np.unique(np.asarray(patient_nbr, dtype=np.int64), return_inverse=True)
    per_patient = np.fromiter((bucket_of(salt, p) for p in unique.tolist()), dtype=np.int32, count=unique.size)
    return per_patient[inverse]


def challenger_mask(ab: ABTest, patient_nbr: np.ndarray) -> np.ndarray:
    """True for the rows the challenger scores."""
    return buckets(ab.salt, patient_nbr) < round(ab.challenger_share * BUCKETS)


def start_or_check(registry: Registry, ab: ABTest) -> dict[str, Any]:
    """Record the running test on first use; refuse a share change under the same salt."""
    rel = registry.rel(STATE_FILE)
    try:
        state = registry.storage.read_json(rel)
    except FileNotFoundError:
        state = None
    if state and state.get("salt") == ab.salt:
        if state.get("challenger_share") != ab.challenger_share:
            raise ReadmitInputError(
                f"inference_config.ab_test.challenger_share changed from {state.get('challenger_share')} "
                f"to {ab.challenger_share} while the A/B test with salt {ab.salt!r} is running (since "
                f"{state.get('started_at')}): patients would move between arms mid-test",
                source=registry.storage.uri_of(rel),
                fix=f"restore challenger_share {state.get('challenger_share')}, or start a new test by "
                    "also changing inference_config.ab_test.salt",
            )
        return state
    state = {"salt": ab.salt, "challenger_share": ab.challenger_share, "buckets": BUCKETS,
             "started_at": datetime.now(UTC).isoformat(),
             "previous": {k: state.get(k) for k in ("salt", "challenger_share", "started_at")} if state else None}
    registry.storage.write_json(rel, state)
    return state
