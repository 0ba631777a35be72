"""The model registry: versioned, checksummed (optionally signed) model artifacts, folder or S3.

Layout under ``{registry_uri}/models/{model_name}/``::

    {algorithm}_v{VERSION}.pkl              the pickled model (created once, never overwritten)
    {algorithm}_v{VERSION}_metadata.json    its metadata, with the artifact's sha256
    {algorithm}_latest.pkl                  a copy of the latest version's artifact
    {algorithm}_latest_metadata.json        the latest version's metadata (names version + sha256)
    latest_model_comparison.json            written by :func:`readmit.training.compare.compare_models`

``VERSION`` is the reference project's ``YYYYMMDD_HHMMSS`` (UTC save time). A save claims it by
creating the versioned artifact exclusively and takes the next free second when it is taken
(:mod:`readmit.registry.versions`), so concurrent saves -- threads, processes, machines -- get
distinct versions and nothing is ever overwritten.

Metadata stores names relative to the model folder (``artifact.file``); the absolute ``paths`` a
caller sees are computed from where the registry is now, so a copied registry shows its own
files. Every name read from metadata must match the version pattern and is resolved inside the
model folder: ``..``, absolute paths and other buckets are refused (:class:`ArtifactError`), so
no metadata can make the registry read, let alone unpickle, a file outside it.

Crash safety: a save writes the versioned artifact, then its metadata, then the ``latest``
artifact, then the ``latest`` metadata. Each write is atomic (see :mod:`readmit.storage`). A crash
at any point leaves the previous latest metadata in place, and loading ``latest`` takes the
artifact whose sha256 matches the latest metadata: ``{algorithm}_latest.pkl`` when it matches,
otherwise the immutable versioned file the metadata names. So a loaded (model, metadata) pair
is always consistent. A killed save can leave a versioned ``.pkl`` without metadata (an orphan,
never listed as a version) and, locally, ``.tmp-*`` files: :meth:`Registry.gc` lists the former
and removes the latter.

Concurrency: two saves of the same algorithm at once each write their own versioned files, then
race on the two ``latest`` files; the last writer of the latest metadata wins. After writing, each
saver re-reads the latest metadata and, while ``{algorithm}_latest.pkl`` does not match it, copies
the versioned artifact the metadata names over it. Every write is followed by such a check by the
same saver, so once both saves return, the latest artifact matches the latest metadata.

Loading reads the bytes, checks the metadata's signature (:mod:`readmit.registry.artifacts`), the
names it holds and the artifact's sha256, and only then unpickles: a truncated, corrupt, missing,
tampered or escaping file raises :class:`~readmit.errors.ArtifactError` naming the file and the
fix. Unpickling runs code: only load from a registry you trust, and sign it
(``READMIT_REGISTRY_KEY``) when others can write to it.
"""

from __future__ import annotations

import json
import os
import pickle
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from readmit.config import Settings, model_name_problem
from readmit.errors import ArtifactError, ReadmitError, ReadmitInputError
from readmit.jsonsafe import jsonable
from readmit.registry.artifacts import check_signature, sha256_hex, sign, signing_key
from readmit.registry.versions import (
    MAX_CLAIM_ATTEMPTS,
    artifact_name,
    check_algorithm,
    check_version,
    create_exclusive,
    metadata_name,
    new_version,
    next_version,
    parse_versioned,
)
from readmit.storage import Storage

COMPARISON_FILE = "latest_model_comparison.json"
TMP_PREFIX = ".tmp-"
_REPAIR_ROUNDS = 20
_UNSET: Any = object()


def _retrain_fix(algorithm: str) -> str:
    return f"retrain it (`readmit train --algorithm {algorithm}`) or restore the file from a backup"


def read_metadata_contract(meta: dict[str, Any]) -> dict[str, Any]:
    """Metadata as the current contract reads it, whenever it was written (in place; returns it).

    Since issue 21 ``model_name`` is the algorithm (the seed's ``"model_name": "xgboost"``) and
    the registry's model name is ``registered_model``; metadata written before had the registry's
    name in ``model_name`` and no ``registered_model``. The file itself is never rewritten (its
    signature covers it as written).
    """
    if "registered_model" not in meta:
        meta["registered_model"] = meta.get("model_name")
        meta["model_name"] = meta.get("algorithm")
    return meta


class Registry:
    """Save and load models under ``{uri}/models/{model_name}/`` (local folder or s3://).

    ``key``: the HMAC signing key (default: ``READMIT_REGISTRY_KEY``; None disables signing).
    ``require_signature``: refuse versions that are not signed and verified with ``key``.
    """

    def __init__(self, uri: str, model_name: str = "readmission", *, key: bytes | None = _UNSET,
                 require_signature: bool = False):
        problem = model_name_problem(model_name)
        if problem:
            raise ReadmitInputError(f"invalid model name: {problem}", fix="correct model_config.model_name")
        self.uri = uri
        self.model_name = model_name
        self.storage = Storage(uri)
        self.prefix = f"models/{model_name}"
        self._key = signing_key() if key is _UNSET else key
        self.require_signature = require_signature
        # Test hook: called with each relative path right after it is written (crash simulation).
        self._after_write: Callable[[str], None] | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> Registry:
        """The registry the settings point at, with the configured signature policy."""
        model = settings.config.model
        return cls(settings.registry_uri, model.model_name, require_signature=model.require_signature)

    def __repr__(self) -> str:  # never shows the key
        return f"Registry({self.uri!r}, model_name={self.model_name!r}, signed={self._key is not None})"

    # -- names ---------------------------------------------------------------------------
    def rel(self, name: str) -> str:
        """The storage path of ``name``, relative to the model folder (``aliases/x.json`` is fine).

        Empty, ``.`` or ``..`` segments, absolute names and backslashes are refused: no name leaves
        the model folder.
        """
        if not name or "\\" in name or any(part in ("", ".", "..") for part in name.split("/")):
            raise ArtifactError(f"{name!r} is not a file name inside the registry", source=self.location_root(),
                                fix="use names from `readmit registry list`")
        return f"{self.prefix}/{name}"

    artifact_name = staticmethod(artifact_name)
    metadata_name = staticmethod(metadata_name)

    def location_root(self) -> str:
        return self.storage.uri_of(self.prefix)

    def location(self, name: str) -> str:
        return self.storage.uri_of(f"{self.prefix}/{name}" if name else self.prefix)

    def _inside(self, name: str) -> str:
        """``rel(name)``, refused when it resolves (through symlinks) outside the model folder."""
        rel = self.rel(name)
        if self.storage.local:
            folder = os.path.realpath(self.storage.path(self.prefix))
            if not os.path.realpath(self.storage.path(rel)).startswith(folder + os.sep):
                raise ArtifactError("registry file resolves outside the registry (a symbolic link?)",
                                    source=self.location(name), fix="replace the link with the file itself")
        return rel

    def _paths(self, algorithm: str, version: str) -> dict[str, str]:
        return {
            "registry": self.storage.uri_of(""),
            "artifact": self.location(artifact_name(algorithm, version)),
            "metadata": self.location(metadata_name(algorithm, version)),
            "latest_artifact": self.location(artifact_name(algorithm)),
            "latest_metadata": self.location(metadata_name(algorithm)),
        }

    def _located(self, meta: dict[str, Any]) -> dict[str, Any]:
        """``meta`` with absolute ``paths`` computed for this registry's current location."""
        return {**meta, "paths": self._paths(meta["algorithm"], meta["version"])}

    def _write(self, name: str, data: bytes, *, exclusive: bool = False) -> None:
        if exclusive:
            create_exclusive(self.storage, self.rel(name), data)
        else:
            self.storage.write_bytes(self.rel(name), data)
        if self._after_write is not None:
            self._after_write(name)

    # -- save ----------------------------------------------------------------------------
    def _claim(self, algorithm: str, payload: bytes) -> str:
        """Create the versioned artifact under the first free version from now; return it.

        A version already used by another algorithm counts as taken too, so a bare version names
        one model (``registry show VERSION``, ``promote --candidate VERSION``).
        """
        version = new_version()
        for _ in range(MAX_CLAIM_ATTEMPTS):
            used = any(f"_v{version}." in name or f"_v{version}_" in name for name in self._names())
            if not used and not self.storage.exists(self.rel(metadata_name(algorithm, version))):  # not an orphan's
                try:
                    self._write(artifact_name(algorithm, version), payload, exclusive=True)
                    return version
                except FileExistsError:
                    pass
            version = next_version(version)
        raise ReadmitError(
            f"no free version for {algorithm} in the {MAX_CLAIM_ATTEMPTS} seconds from now: "
            f"{self.location_root()} already holds them all"
        )

    def save(self, algorithm: str, model: Any, metadata: dict[str, Any]) -> dict[str, Any]:
        """Store ``model`` as a new version of ``algorithm`` and make it the latest.

        Returns the metadata written (``metadata`` plus model_name (the algorithm, as in the seed's
        metadata), registered_model (the registry's model name), algorithm, version, saved_at,
        artifact {file, sha256, bytes} and, when a key is set, signature) with absolute ``paths``.
        """
        check_algorithm(algorithm, self.location_root())
        self.check_root()
        payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        digest = sha256_hex(payload)
        # 1: claim and write the immutable version; 2: its metadata; 3-4: latest (artifact first).
        version = self._claim(algorithm, payload)
        meta = {k: v for k, v in metadata.items() if k not in ("paths", "signature")}
        meta.update({
            # the seed's contract: model_name is the algorithm; the registry's name is registered_model
            "model_name": algorithm,
            "registered_model": self.model_name,
            "algorithm": algorithm,
            "version": version,
            "saved_at": datetime.now(UTC).isoformat(),
            "artifact": {"file": artifact_name(algorithm, version), "sha256": digest, "bytes": len(payload)},
        })
        meta = sign(meta, self._key) if self._key else jsonable(meta)
        meta_bytes = json.dumps(meta, indent=2).encode()
        try:
            self._write(metadata_name(algorithm, version), meta_bytes, exclusive=True)
        except FileExistsError:  # only if someone wrote it by hand in between: never overwrite
            raise ArtifactError("version metadata appeared while saving", source=self.location(
                metadata_name(algorithm, version)), fix="retrain; do not write registry files by hand") from None
        self._write(artifact_name(algorithm), payload)
        self._write(metadata_name(algorithm), meta_bytes)
        self._repair_latest(algorithm)
        return self._located(meta)

    def _repair_latest(self, algorithm: str) -> None:
        """Make ``{algorithm}_latest.pkl`` match the latest metadata (after concurrent saves)."""
        for _ in range(_REPAIR_ROUNDS):
            try:
                meta = self._read_metadata_file(metadata_name(algorithm), algorithm)
                current = self.storage.read_bytes(self.rel(artifact_name(algorithm)))
            except (ArtifactError, FileNotFoundError):
                return
            if sha256_hex(current) == meta["artifact"]["sha256"]:
                return
            try:
                source = self._read_verified(artifact_name(algorithm, meta["version"]), meta["artifact"]["sha256"],
                                             algorithm)
            except ArtifactError:
                return  # not ours to fix; loading latest falls back to the versioned file anyway
            self._write(artifact_name(algorithm), source)

    # -- load ----------------------------------------------------------------------------
    def _read_metadata_file(self, name: str, algorithm: str, version: str = "latest") -> dict[str, Any]:
        """Parse and check a metadata file: signature, names, digest. Never trusts a path in it."""
        source = self.location(name)
        try:
            raw = self.storage.read_bytes(self._inside(name))
        except FileNotFoundError:
            raise ArtifactError(
                "model metadata not found",
                source=source,
                fix=f"train the model first (`readmit train --algorithm {algorithm}`), or check --registry "
                "and model_config.model_name (`readmit registry list`)",
            ) from None
        try:
            meta = json.loads(raw)
            if not isinstance(meta, dict) or not isinstance(meta["artifact"], dict):
                raise ValueError("not a metadata object")
            digest = meta["artifact"]["sha256"]
            if not (isinstance(digest, str) and len(digest) == 64):
                raise ValueError("no artifact.sha256")
            meta["artifact"]["file"]  # noqa: B018 - must exist
        except (ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(
                f"model metadata is corrupt or truncated ({exc})",
                source=source,
                fix=_retrain_fix(algorithm),
            ) from None
        check_signature(meta, self._key, required=self.require_signature, source=source)
        meta_version = check_version(meta.get("version"), source)
        if meta.get("algorithm", algorithm) != algorithm or (version != "latest" and meta_version != version):
            raise ArtifactError(
                f"metadata describes {meta.get('algorithm')!r} version {meta_version!r}, not the "
                f"{algorithm} {version} its file name says",
                source=source, fix=_retrain_fix(algorithm))
        meta["algorithm"] = algorithm
        read_metadata_contract(meta)
        expected = artifact_name(algorithm, meta_version)
        if meta["artifact"]["file"] != expected:
            raise ArtifactError(
                f"metadata names the artifact {meta['artifact']['file']!r}, but version {meta_version} "
                f"of {algorithm} can only be {expected!r} in this folder; refusing to read a file the "
                "metadata points at (a path outside the registry or another version)",
                source=source,
                fix="treat the metadata as tampered with: " + _retrain_fix(algorithm),
            )
        return meta

    def _read_verified(self, name: str, digest: str, algorithm: str) -> bytes:
        try:
            data = self.storage.read_bytes(self._inside(name))
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
        check_algorithm(algorithm, self.location_root())
        if version != "latest":
            version = check_version(version.removeprefix("v"), self.location_root())
        meta = self._read_metadata_file(metadata_name(algorithm, version), algorithm, version)
        digest = meta["artifact"]["sha256"]
        versioned = artifact_name(algorithm, meta["version"])
        if version == "latest":
            try:
                return self._read_verified(artifact_name(algorithm), digest, algorithm), meta, artifact_name(algorithm)
            except ArtifactError:
                pass  # latest.pkl is mid-update or damaged: the versioned file is the source of truth.
        return self._read_verified(versioned, digest, algorithm), meta, versioned

    def verify(self, algorithm: str, version: str = "latest") -> dict[str, Any]:
        """Check signature, names and the artifact's sha256 without unpickling; return the metadata."""
        return self._located(self._resolve_bytes(algorithm, version)[1])

    def load(self, algorithm: str, version: str = "latest") -> tuple[Any, dict[str, Any]]:
        """The (model, metadata) of a version (default: latest), verified before unpickling."""
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
        return model, self._located(meta)

    def newest_valid(self, algorithm: str) -> tuple[dict[str, Any] | None, list[str]]:
        """The newest version of ``algorithm`` that verifies, and why each newer one did not."""
        problems = []
        for version in sorted(self._versions(algorithm), reverse=True):
            try:
                return self.verify(algorithm, version), problems
            except ArtifactError as exc:
                problems.append(str(exc).replace("\n", " "))
        return None, problems

    # -- listing -------------------------------------------------------------------------
    def check_root(self) -> None:
        """On S3, refuse a bucket that does not exist (instead of listing it as empty)."""
        if self.storage.local:
            for folder in (self.storage.root, self.storage.path("models"), self.storage.path(self.prefix)):
                if os.path.exists(folder) and not os.path.isdir(folder):
                    raise ReadmitInputError("the registry location is a file, not a folder", source=folder,
                                            fix="point --registry / READMIT_REGISTRY_URI / "
                                            "model_config.registry_uri at a folder")
            return
        bucket = self.storage.root.split("/", 1)[0]
        try:
            found = self.storage.fs.exists(bucket)
        except PermissionError as exc:
            raise ReadmitInputError(f"no permission to read bucket {bucket!r} ({exc})", source=f"s3://{bucket}",
                                    fix="check the AWS credentials and the bucket policy") from None
        if not found:
            raise ReadmitInputError(
                f"bucket {bucket!r} does not exist",
                source=self.storage.uri_of(""),
                fix=f"create it (`aws s3 mb s3://{bucket}`) or correct --registry / READMIT_REGISTRY_URI "
                "/ model_config.registry_uri",
            )

    def _names(self) -> list[str]:
        try:
            names = self.storage.listdir(self.prefix)
        except NotADirectoryError:
            names = []
        if not names:
            self.check_root()
        return names

    def _versions(self, algorithm: str, names: list[str] | None = None) -> list[str]:
        found = (parse_versioned(n) for n in (self._names() if names is None else names))
        return sorted(p[1] for p in found if p and p[0] == algorithm and p[2] == "metadata")

    def has_files(self, algorithm: str) -> bool:
        """Whether any file of ``algorithm`` (a version, an orphan, a latest pointer) is stored."""
        for name in self._names():
            parsed = parse_versioned(name)
            if (parsed and parsed[0] == algorithm) or name in (artifact_name(algorithm), metadata_name(algorithm)):
                return True
        return False

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
                latest[alg] = self._read_metadata_file(metadata_name(alg), alg).get("version")
            except ArtifactError:
                latest[alg] = None
        rows = []
        for name in names:
            parsed = parse_versioned(name)
            if not parsed or parsed[2] != "metadata":
                continue
            alg, version, _ = parsed
            try:
                meta = self._read_metadata_file(name, alg, version)
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
                "signed": self._key is not None and "signature" in meta,  # read => verified
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
            return self._located(self._read_metadata_file(metadata_name(key), key))
        if key.endswith("_latest") and f"{key}_metadata.json" in names:
            alg = key.removesuffix("_latest")
            return self._located(self._read_metadata_file(metadata_name(alg), alg))
        version = key.removeprefix("v")
        matches = []
        for name in names:
            parsed = parse_versioned(name)
            if parsed and parsed[2] == "metadata" and (parsed[1] == version or f"{parsed[0]}_v{parsed[1]}" == key):
                matches.append(parsed)
        if len(matches) == 1:
            alg, ver, _ = matches[0]
            return self._located(self._read_metadata_file(metadata_name(alg, ver), alg, ver))
        if len(matches) > 1:
            algs = ", ".join(f"{a}_v{v}" for a, v, _ in matches)
            raise ArtifactError(f"version {key!r} is ambiguous ({algs})", source=self.location_root(),
                                fix="give the full name, e.g. ALGORITHM_vVERSION")
        raise ArtifactError(
            f"no model or version {key!r} in the registry",
            source=self.location_root(),
            fix="pick an algorithm or version from `readmit registry list`, or check --registry",
        )

    # -- litter --------------------------------------------------------------------------
    def gc(self, *, older_than_seconds: float = 3600.0, dry_run: bool = False) -> dict[str, Any]:
        """Remove stale temporaries, list orphans; never touch a complete version.

        Temporaries (``.tmp-*``, left locally by killed writes) anywhere under the registry root
        are removed when older than ``older_than_seconds`` (a write in progress is younger).
        Orphans -- a versioned ``.pkl`` without its metadata (a save killed between the two, or
        one still running) or metadata without its ``.pkl`` -- are listed, not removed.
        """
        self.check_root()
        now = time.time()
        removed, young = [], []
        if self.storage.local and os.path.isdir(self.storage.root):
            for folder, _dirs, files in os.walk(self.storage.root):
                for file in files:
                    if not file.startswith(TMP_PREFIX):
                        continue
                    path = os.path.join(folder, file)
                    try:
                        age = now - os.path.getmtime(path)
                    except FileNotFoundError:
                        continue  # its writer just finished
                    if age < older_than_seconds:
                        young.append(path)
                        continue
                    if not dry_run:
                        try:
                            os.remove(path)
                        except FileNotFoundError:
                            continue
                    removed.append(path)
        names = set(self._names())
        orphans = []
        for name in sorted(names):
            parsed = parse_versioned(name)
            if not parsed:
                continue
            alg, version, kind = parsed
            partner = metadata_name(alg, version) if kind == "pkl" else artifact_name(alg, version)
            if partner not in names:
                orphans.append({
                    "file": self.location(name),
                    "problem": "artifact without metadata" if kind == "pkl" else "metadata without artifact",
                })
        return {
            "registry": self.storage.uri_of(""),
            "dry_run": dry_run,
            "older_than_seconds": older_than_seconds,
            "temporaries": removed,  # removed, or (dry run) to be removed
            "temporaries_too_young": young,
            "orphans": orphans,
        }

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
