"""Version names, the patterns every name read from metadata must match, and exclusive creation.

A version is the UTC save time, ``YYYYMMDD_HHMMSS`` -- the reference project's name, so its
artifacts are ``models/{model_name}/{algorithm}_v{YYYYMMDD_HHMMSS}.pkl``. Versions saved by
readmit before 0.2 carry a random suffix (``20240501_120000_ab12cd``); they still match
:data:`VERSION_PATTERN` and load.

Two saves in the same second must not share (or overwrite) a version. The save claims its
version by *creating* the versioned artifact exclusively (:func:`create_exclusive`): the first
creator wins, the other gets :class:`FileExistsError` and takes the next free second
(:func:`next_version`). Nothing is ever overwritten:

- local folder: the bytes go to a temporary file in the same folder, which is then hard-linked to
  the final name (``os.link`` fails when the name exists), so the name appears exclusively *and*
  complete. On a filesystem without hard links the name is created with ``open(path, "xb")``
  (``O_CREAT | O_EXCL``) and then filled; until its metadata exists it is not a visible version.
- S3: one PUT with ``If-None-Match: *`` (S3 conditional writes; s3fs ``pipe_file(mode="create")``),
  which S3 refuses with 412 when the key exists. moto's server (>= 5.2.1) and MinIO implement it.
  A store that ignores the header would let the later PUT win; readmit does not fall back to a
  lock object because every store it is tested on honours the header.

Every name read from metadata (or given by a user) is checked against these patterns before it
is turned into a path, so no metadata can point outside the registry (see
:func:`readmit.registry.store.Registry`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from readmit.errors import ArtifactError
from readmit.storage import Storage

VERSION_FORMAT = "%Y%m%d_%H%M%S"
# The reference's YYYYMMDD_HHMMSS; the optional suffix is the pre-0.2 random one (still loadable).
VERSION_PATTERN = r"\d{8}_\d{6}(?:_[0-9a-f]{6})?"
ALGORITHM_PATTERN = r"[a-z][a-z0-9_]*"
_VERSIONED = re.compile(
    rf"^(?P<alg>{ALGORITHM_PATTERN}?)_v(?P<version>{VERSION_PATTERN})(?P<kind>\.pkl|_metadata\.json)$"
)
# How many next seconds a save tries before giving up (a burst of saves of one algorithm).
MAX_CLAIM_ATTEMPTS = 600


def version_at(now: datetime) -> str:
    """The version name of a save at ``now`` (UTC)."""
    return now.astimezone(UTC).strftime(VERSION_FORMAT)


def new_version(now: datetime | None = None) -> str:
    """The version name for a save now (the caller claims it with :func:`create_exclusive`)."""
    return version_at(now or datetime.now(UTC))


def next_version(version: str) -> str:
    """The version one second later (``20240501_120059`` -> ``20240501_120100``)."""
    stamp = datetime.strptime(version[:15], VERSION_FORMAT).replace(tzinfo=UTC)
    return version_at(stamp + timedelta(seconds=1))


def is_version(version: object) -> bool:
    return isinstance(version, str) and re.fullmatch(VERSION_PATTERN, version) is not None


def check_version(version: object, source: str) -> str:
    """``version`` when it is a version name, else an ArtifactError naming ``source``."""
    if not is_version(version):
        raise ArtifactError(
            f"{version!r} is not a model version (expected YYYYMMDD_HHMMSS)",
            source=source,
            fix="pick a version from the registry listing; metadata naming anything else was "
            "edited by hand or tampered with: restore it from a backup or retrain",
        )
    return version  # type: ignore[return-value]


def check_algorithm(algorithm: object, source: str) -> str:
    if not (isinstance(algorithm, str) and re.fullmatch(ALGORITHM_PATTERN, algorithm)):
        raise ArtifactError(
            f"{algorithm!r} is not an algorithm name (lower-case letters, digits and '_')",
            source=source,
            fix="use an algorithm name such as xgboost; metadata naming anything else was edited "
            "by hand or tampered with",
        )
    return algorithm  # type: ignore[return-value]


def artifact_name(algorithm: str, version: str = "latest") -> str:
    return f"{algorithm}_latest.pkl" if version == "latest" else f"{algorithm}_v{version}.pkl"


def metadata_name(algorithm: str, version: str = "latest") -> str:
    return f"{algorithm}_latest_metadata.json" if version == "latest" else f"{algorithm}_v{version}_metadata.json"


def parse_versioned(name: str) -> tuple[str, str, str] | None:
    """``(algorithm, version, "pkl"|"metadata")`` of a versioned file name, else None."""
    match = _VERSIONED.match(name)
    if not match:
        return None
    return match["alg"], match["version"], "pkl" if match["kind"] == ".pkl" else "metadata"


def create_exclusive(storage: Storage, rel: str, data: bytes) -> None:
    """Create ``rel`` with ``data``; raise FileExistsError if it exists. Never overwrites."""
    storage.create_bytes(rel, data)


def card_names(algorithm: str, version: str) -> tuple[str, str]:
    """The markdown and JSON file names of a version's model card (written by the report, served by
    ``readmit serve`` at ``/v1/model/card``)."""
    return f"{algorithm}_v{version}_model_card.md", f"{algorithm}_v{version}_model_card.json"
