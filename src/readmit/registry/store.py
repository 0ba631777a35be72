"""The model registry: versioned, checksummed model artifacts in a folder or on S3.

Layout under ``{registry_uri}/models/{model_name}/``::

    {algorithm}_v{VERSION}.pkl              the pickled model (immutable once written)
    {algorithm}_v{VERSION}_metadata.json    its metadata, with the artifact's sha256
    {algorithm}_latest.pkl                  a copy of the latest version's artifact
    {algorithm}_latest_metadata.json        the latest version's metadata (names version + sha256)
    latest_model_comparison.json            written by :func:`readmit.training.compare.compare_models`

``VERSION`` is ``YYYYMMDD_HHMMSS_xxxxxx``: the UTC save time plus six random hex digits, so two
saves in the same second (two threads, two processes, two machines) never share a version.

Crash safety: a save writes the versioned artifact, then its metadata, then the ``latest``
artifact, then the ``latest`` metadata. Each write is atomic (see :mod:`readmit.storage`). A crash
at any point leaves the previous latest metadata in place, and loading ``latest`` takes the
artifact whose sha256 matches the latest metadata: ``{algorithm}_latest.pkl`` when it matches,
otherwise the immutable versioned file the metadata names. So a loaded (model, metadata) pair
is always consistent.

Concurrency: two saves of the same algorithm at once each write their own versioned files, then
race on the two ``latest`` files; the last writer of the latest metadata wins. After writing, each
saver re-reads the latest metadata and, while ``{algorithm}_latest.pkl`` does not match it, copies
the versioned artifact the metadata names over it. Every write is followed by such a check by the
same saver, so once both saves return, the latest artifact matches the latest metadata.

Loading reads the bytes, verifies the sha256 and only then unpickles: a truncated, corrupt or
missing file raises :class:`~readmit.errors.ArtifactError` naming the file and the fix. Only load
artifacts from a registry you trust: unpickling runs code.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from readmit.errors import ArtifactError
from readmit.storage import Storage

COMPARISON_FILE = "latest_model_comparison.json"
_VERSION_RE = re.compile(r"^(?P<alg>[a-z0-9_]+?)_v(?P<version>\d{8}_\d{6}(?:_[0-9a-z]+)?)_metadata\.json$")
_REPAIR_ROUNDS = 20


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_version(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d_%H%M%S}_{secrets.token_hex(3)}"


def _retrain_fix(algorithm: str) -> str:
    return f"retrain it (`readmit train --algorithm {algorithm}`) or restore the file from a backup"


class Registry:
    """Save and load models under ``{uri}/models/{model_name}/`` (local folder or s3://)."""

    def __init__(self, uri: str, model_name: str = "readmission"):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", model_name or ""):
            raise ArtifactError(
                f"invalid model name {model_name!r}",
                fix="use letters, digits, '_', '-' or '.' in model_config.model_name",
            )
        self.uri = uri
        self.model_name = model_name
        self.storage = Storage(uri)
        self.prefix = f"models/{model_name}"
        # Test hook: called with each relative path right after it is written (crash simulation).
        self._after_write: Callable[[str], None] | None = None

    def __repr__(self) -> str:
        return f"Registry({self.uri!r}, model_name={self.model_name!r})"

    # -- names ---------------------------------------------------------------------------
    def rel(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def artifact_name(self, algorithm: str, version: str = "latest") -> str:
        return f"{algorithm}_latest.pkl" if version == "latest" else f"{algorithm}_v{version}.pkl"

    def metadata_name(self, algorithm: str, version: str = "latest") -> str:
        return (f"{algorithm}_latest_metadata.json" if version == "latest"
                else f"{algorithm}_v{version}_metadata.json")

    def location(self, name: str) -> str:
        return self.storage.uri_of(self.rel(name))

    def _write(self, name: str, data: bytes) -> None:
        self.storage.write_bytes(self.rel(name), data)
        if self._after_write is not None:
            self._after_write(name)

    # -- save ----------------------------------------------------------------------------
    def save(self, algorithm: str, model: Any, metadata: dict[str, Any]) -> dict[str, Any]:
        """Store ``model`` as a new version of ``algorithm`` and make it the latest.

        Returns the metadata written: ``metadata`` plus model_name, algorithm, version,
        saved_at, artifact (file, sha256, bytes) and paths.
        """
        payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        digest = sha256_hex(payload)
        version = new_version()
        art, meta_name = self.artifact_name(algorithm, version), self.metadata_name(algorithm, version)
        meta = {
            **metadata,
            "model_name": self.model_name,
            "algorithm": algorithm,
            "version": version,
            "saved_at": datetime.now(UTC).isoformat(),
            "artifact": {"file": art, "sha256": digest, "bytes": len(payload)},
            "paths": {
                "artifact": self.location(art),
                "metadata": self.location(meta_name),
                "latest_artifact": self.location(self.artifact_name(algorithm)),
                "latest_metadata": self.location(self.metadata_name(algorithm)),
            },
        }
        meta_bytes = json.dumps(meta, indent=2, default=str).encode()
        # 1-2: the immutable version; 3-4: point latest at it (artifact first, metadata last).
        self._write(art, payload)
        self._write(meta_name, meta_bytes)
        self._write(self.artifact_name(algorithm), payload)
        self._write(self.metadata_name(algorithm), meta_bytes)
        self._repair_latest(algorithm)
        return meta

    def _repair_latest(self, algorithm: str) -> None:
        """Make ``{algorithm}_latest.pkl`` match the latest metadata (after concurrent saves)."""
        for _ in range(_REPAIR_ROUNDS):
            try:
                meta = self._read_metadata_file(self.metadata_name(algorithm))
                current = self.storage.read_bytes(self.rel(self.artifact_name(algorithm)))
            except (ArtifactError, FileNotFoundError):
                return
            if sha256_hex(current) == meta["artifact"]["sha256"]:
                return
            try:
                source = self._read_verified(meta["artifact"]["file"], meta["artifact"]["sha256"], algorithm)
            except ArtifactError:
                return  # not ours to fix; loading latest falls back to the versioned file anyway
            self._write(self.artifact_name(algorithm), source)

    # -- load ----------------------------------------------------------------------------
    def _read_metadata_file(self, name: str, algorithm: str | None = None) -> dict[str, Any]:
        alg = algorithm or name.split("_v")[0].removesuffix("_latest_metadata.json")
        try:
            raw = self.storage.read_bytes(self.rel(name))
        except FileNotFoundError:
            raise ArtifactError(
                "model metadata not found",
                source=self.location(name),
                fix=f"train the model first (`readmit train --algorithm {alg}`), or check --registry "
                "and model_config.model_name (`readmit registry list`)",
            ) from None
        try:
            meta = json.loads(raw)
            if not isinstance(meta, dict) or not isinstance(meta["artifact"]["sha256"], str):
                raise ValueError("no artifact.sha256")
            meta["artifact"]["file"]  # noqa: B018 - must exist
        except (ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(
                f"model metadata is corrupt or truncated ({exc})",
                source=self.location(name),
                fix=_retrain_fix(alg),
            ) from None
        return meta

    def _read_verified(self, name: str, digest: str, algorithm: str) -> bytes:
        try:
            data = self.storage.read_bytes(self.rel(name))
        except FileNotFoundError:
            raise ArtifactError("model artifact not found", source=self.location(name),
                                fix=_retrain_fix(algorithm)) from None
        actual = sha256_hex(data)
        if actual != digest:
            raise ArtifactError(
                f"model artifact does not match its metadata (sha256 {actual[:12]}..., expected "
                f"{digest[:12]}...; {len(data)} bytes): it is corrupt, truncated or was replaced",
                source=self.location(name),
                fix=_retrain_fix(algorithm),
            )
        return data

    def _resolve_bytes(self, algorithm: str, version: str) -> tuple[bytes, dict[str, Any], str]:
        version = version.removeprefix("v") if version != "latest" else version
        meta = self._read_metadata_file(self.metadata_name(algorithm, version), algorithm)
        digest = meta["artifact"]["sha256"]
        if version == "latest":
            name = self.artifact_name(algorithm)
            try:
                return self._read_verified(name, digest, algorithm), meta, name
            except ArtifactError:
                # latest.pkl is mid-update or damaged: the versioned file is the source of truth.
                name = meta["artifact"]["file"]
                return self._read_verified(name, digest, algorithm), meta, name
        name = self.artifact_name(algorithm, version)
        return self._read_verified(name, digest, algorithm), meta, name

    def verify(self, algorithm: str, version: str = "latest") -> dict[str, Any]:
        """Check the artifact against its metadata without unpickling; return the metadata."""
        return self._resolve_bytes(algorithm, version)[1]

    def load(self, algorithm: str, version: str = "latest") -> tuple[Any, dict[str, Any]]:
        """The (model, metadata) of a version (default: latest), sha256-verified before unpickling."""
        data, meta, name = self._resolve_bytes(algorithm, version)
        try:
            model = pickle.loads(data)
        except Exception as exc:
            versions = meta.get("versions", {})
            raise ArtifactError(
                f"cannot unpickle the model ({type(exc).__name__}: {exc}); it was saved with "
                f"python {versions.get('python')}, scikit-learn {versions.get('scikit-learn')}, "
                f"xgboost {versions.get('xgboost')}",
                source=self.location(name),
                fix="install the library versions listed in its metadata, or retrain "
                f"(`readmit train --algorithm {algorithm}`)",
            ) from exc
        return model, meta

    # -- listing -------------------------------------------------------------------------
    def _names(self) -> list[str]:
        return self.storage.listdir(self.prefix)

    def algorithms(self) -> list[str]:
        """Algorithms that have a latest model."""
        return sorted(n.removesuffix("_latest_metadata.json") for n in self._names()
                      if n.endswith("_latest_metadata.json"))

    def list_models(self) -> list[dict[str, Any]]:
        """One summary per stored version, oldest first, with ``latest`` marking the current one."""
        names = self._names()
        latest: dict[str, str | None] = {}
        for alg in (n.removesuffix("_latest_metadata.json") for n in names if n.endswith("_latest_metadata.json")):
            try:
                latest[alg] = self._read_metadata_file(self.metadata_name(alg), alg).get("version")
            except ArtifactError:
                latest[alg] = None
        rows = []
        for name in names:
            match = _VERSION_RE.match(name)
            if not match:
                continue
            alg, version = match.group("alg"), match.group("version")
            try:
                meta = self._read_metadata_file(name, alg)
            except ArtifactError as exc:
                rows.append({"algorithm": alg, "version": version, "error": str(exc), "latest": False})
                continue
            perf = meta.get("performance", {})
            rows.append({
                "algorithm": alg,
                "version": version,
                "training_date": meta.get("training_date"),
                "test_auc_roc": perf.get("test", {}).get("auc_roc"),
                "oot_auc_roc": perf.get("oot", {}).get("auc_roc"),
                "training_samples": meta.get("training_samples"),
                "sha256": meta["artifact"]["sha256"],
                "latest": latest.get(alg) == version,
                "metadata": self.location(name),
            })
        rows.sort(key=lambda r: (str(r.get("training_date") or ""), r["version"], r["algorithm"]))
        return rows

    def metadata(self, version_or_algorithm: str) -> dict[str, Any]:
        """Metadata of an algorithm's latest model, of ``{algorithm}_v{version}``, or of a version."""
        key = version_or_algorithm.strip()
        names = self._names()
        if f"{key}_latest_metadata.json" in names:
            return self._read_metadata_file(self.metadata_name(key), key)
        if key.endswith("_latest") and f"{key}_metadata.json" in names:
            return self._read_metadata_file(f"{key}_metadata.json")
        version = key.removeprefix("v")
        matches = []
        for name in names:
            m = _VERSION_RE.match(name)
            if m and (m.group("version") == version or f"{m.group('alg')}_v{m.group('version')}" == key):
                matches.append((m.group("alg"), name))
        if len(matches) == 1:
            return self._read_metadata_file(matches[0][1], matches[0][0])
        if len(matches) > 1:
            algs = ", ".join(f"{a}_v{version}" for a, _ in matches)
            raise ArtifactError(f"version {key!r} is ambiguous ({algs})", source=self.location(""),
                                fix="give the full name, e.g. ALGORITHM_vVERSION")
        raise ArtifactError(
            f"no model or version {key!r} in the registry",
            source=self.location(""),
            fix="pick an algorithm or version from `readmit registry list`, or check --registry",
        )

    # -- comparison ----------------------------------------------------------------------
    def write_comparison(self, comparison: dict[str, Any]) -> str:
        self.storage.write_json(self.rel(COMPARISON_FILE), comparison)
        return self.location(COMPARISON_FILE)

    def read_comparison(self) -> dict[str, Any]:
        try:
            return self.storage.read_json(self.rel(COMPARISON_FILE))
        except FileNotFoundError:
            raise ArtifactError("no model comparison yet", source=self.location(COMPARISON_FILE),
                                fix="run `readmit compare` after training") from None
        except ValueError as exc:
            raise ArtifactError(f"model comparison is corrupt ({exc})", source=self.location(COMPARISON_FILE),
                                fix="rerun `readmit compare`") from None
