"""One storage layer for the datamart and the registry: a local folder or ``s3://bucket/prefix``.

Everything readmit persists goes through :class:`Storage`, so the same code runs on a laptop and
on S3. S3 is reached with s3fs; the endpoint and credentials come from the standard AWS
environment variables (``AWS_ENDPOINT_URL`` included), so MinIO or moto work unchanged.

Writes are atomic: a reader sees the old object or the new one, never a half-written one.
Locally a file is written under a temporary name in the same folder and then renamed over the
target (``os.replace``). On S3 a single PUT is already atomic: the object appears only when the
upload completes.

A partitioned table is a folder of monthly partitions, one parquet file each::

    {table}/snapshot_month=YYYY-MM/data.parquet

A folder without its ``data.parquet`` is not a partition, so a crash mid-write leaves nothing
visible; rerunning a month replaces its file and touches nothing else.

Failures of a location are translated here, once, into readmit's errors that name the location,
what failed and what to do (:func:`storage_errors`): an endpoint that does not answer or a full
disk is a :class:`~readmit.errors.StorageError` (exit 1); a missing bucket, refused credentials,
a read-only folder or a file where a folder should be is a :class:`~readmit.errors.LocationError`
(exit 2). Every S3 call has bounded waits: connect and read timeouts and a number of attempts
(botocore's retries, with exponential backoff), from the environment (:data:`S3_SETTINGS`);
each retry is logged (logger ``readmit.storage``), so a long wait says what it is waiting for.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fsspec
import polars as pl
import pyarrow.parquet as pq

from readmit.errors import LocationError, ReadmitError, ReadmitInputError, StorageError
from readmit.jsonsafe import dumps
from readmit.months import check_month

PARTITION_FILE = "data.parquet"
_PARTITION_DIR = re.compile(r"^snapshot_month=(\d{4}-\d{2})$")


def is_remote(uri: str) -> bool:
    return "://" in str(uri) and not str(uri).startswith("file://")


log = logging.getLogger("readmit.storage")

# S3 waits: (environment variable, default). Read when a filesystem is made, never at import.
S3_SETTINGS: dict[str, tuple[str, float | int | str]] = {
    "connect_timeout": ("READMIT_S3_CONNECT_TIMEOUT", 5.0),  # seconds to open a connection
    "read_timeout": ("READMIT_S3_READ_TIMEOUT", 30.0),  # seconds without a byte from the server
    "max_attempts": ("READMIT_S3_MAX_ATTEMPTS", 3),  # tries per call, first one included
    "retry_mode": ("READMIT_S3_RETRY_MODE", "standard"),  # botocore: standard | adaptive | legacy
}
_RETRY_MODES = ("standard", "adaptive", "legacy")


def s3_settings() -> dict[str, Any]:
    """The S3 timeouts and retries from the environment (defaults in :data:`S3_SETTINGS`)."""
    values: dict[str, Any] = {}
    for key, (env, default) in S3_SETTINGS.items():
        raw = os.environ.get(env, "").strip()
        if not raw:
            values[key] = default
            continue
        try:
            value = type(default)(raw)
            ok = value in _RETRY_MODES if isinstance(value, str) else value > 0
        except ValueError:
            ok = False
        if not ok:
            allowed = " | ".join(_RETRY_MODES) if isinstance(default, str) else (
                "a positive whole number" if isinstance(default, int) else "a positive number of seconds")
            raise ReadmitInputError(f"invalid value {raw!r}", source=env, fix=f"set {env} to {allowed}"
                                    f" (default {default}), or unset it")
        values[key] = value
    return values


def _endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def s3_filesystem() -> fsspec.AbstractFileSystem:
    """An s3fs filesystem configured from the standard AWS environment variables, with the
    timeouts and retries of :func:`s3_settings` (botocore does the retrying, with backoff)."""
    try:
        import s3fs  # noqa: F401
        from aiobotocore.session import AioSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ReadmitInputError(
            "s3:// locations need the s3 extra",
            fix="pip install 'readmit[s3]'",
        ) from exc
    endpoint = _endpoint()
    client_kwargs = {"endpoint_url": endpoint} if endpoint else {}
    waits = s3_settings()
    session = AioSession()
    session.register("needs-retry.s3", _retry_reporter(waits["max_attempts"]))
    session.register("before-call.s3", _no_expect_continue)
    # skip_instance_cache: credentials or endpoint may change between calls (tests, long workers).
    fs = fsspec.filesystem(
        "s3", client_kwargs=client_kwargs, skip_instance_cache=True, session=session,
        config_kwargs={
            "connect_timeout": waits["connect_timeout"],
            "read_timeout": waits["read_timeout"],
            "retries": {"max_attempts": waits["max_attempts"], "mode": waits["retry_mode"]},
        },
    )
    fs.retries = 1  # one loop of retries (botocore's, configured above), not s3fs's on top of it
    return fs


def _no_expect_continue(params: dict[str, Any], **_: Any) -> None:
    """Drop botocore's ``Expect: 100-continue`` header (added to every upload): aiohttp waits for
    the server's "100 Continue" without the read timeout, so a frozen endpoint hung an upload
    forever. Without it the body goes at once and the read timeout bounds the wait."""
    params.get("headers", {}).pop("Expect", None)


def _retry_reporter(max_attempts: int):
    """A botocore ``needs-retry`` handler that logs each failed attempt that will be retried."""

    def report(attempts: int, caught_exception: Exception | None = None, response: Any = None,
               operation: Any = None, **_: Any) -> None:
        status = (response[1] or {}).get("ResponseMetadata", {}).get("HTTPStatusCode") if response else None
        if attempts >= max_attempts or (caught_exception is None and (status or 0) < 500):
            return  # the call succeeded, failed for good, or will not be retried
        why = f"{type(caught_exception).__name__}: {caught_exception}" if caught_exception else f"HTTP {status}"
        log.warning("waiting for S3 (%s at %s): attempt %d of %d failed (%s); retrying",
                    getattr(operation, "name", "request"), _endpoint() or "AWS", attempts,
                    max_attempts, why)

    return report


def _bucket_missing(exc: BaseException) -> bool:
    text = str(exc)
    return "NoSuchBucket" in text or "bucket does not exist" in text


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the S3 endpoint could not be reached or answered too slowly."""
    if isinstance(exc, TimeoutError):
        return True
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError
    except ImportError:  # pragma: no cover - no s3 extra, no S3 call
        return False
    try:
        from fsspec.exceptions import FSTimeoutError
    except ImportError:  # pragma: no cover
        FSTimeoutError = TimeoutError  # noqa: N806
    return isinstance(exc, BotoConnectionError | HTTPClientError | FSTimeoutError)


def storage_error(exc: BaseException, location: str, action: str) -> ReadmitError | None:
    """The readmit error for a failure of ``action`` ("write", "read", "list") at ``location``.

    None when ``exc`` is not a failure of the location (a plain FileNotFoundError of one object
    stays one: callers decide what a missing object means).
    """
    remote = location.startswith("s3://")
    where = "this folder" if not remote else "this bucket and prefix"
    elsewhere = ("or point the location elsewhere (--datamart / --registry / --raw, or "
                 "READMIT_DATAMART_URI / READMIT_REGISTRY_URI / READMIT_RAW)")
    if remote and _unreachable(exc):
        waits = s3_settings()
        return StorageError(
            f"cannot {action}: the S3 endpoint {_endpoint() or '(AWS default)'} did not answer "
            f"({type(exc).__name__}: {exc}) after {waits['max_attempts']} attempt(s)",
            source=location,
            fix="check that the endpoint is up and reachable (AWS_ENDPOINT_URL), then rerun (every "
                f"step is safe to rerun); waits are bounded by READMIT_S3_CONNECT_TIMEOUT="
                f"{waits['connect_timeout']}s, READMIT_S3_READ_TIMEOUT={waits['read_timeout']}s and "
                f"READMIT_S3_MAX_ATTEMPTS={waits['max_attempts']}",
        )
    if isinstance(exc, FileNotFoundError) and remote and _bucket_missing(exc):
        bucket = location[len("s3://"):].split("/", 1)[0]
        return LocationError(
            f"cannot {action}: the bucket {bucket!r} does not exist",
            source=location,
            fix=f"create it (`aws s3 mb s3://{bucket}`), or correct the location's bucket name",
        )
    if isinstance(exc, PermissionError) or (isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM)):
        if remote:
            return LocationError(
                f"cannot {action}: access denied ({exc})",
                source=location,
                fix="check the AWS credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE) "
                    f"and that they may read and write {where}",
            )
        mode = "writable" if action in ("write", "delete") else "readable"
        return LocationError(
            f"cannot {action}: permission denied",
            source=location,
            fix=f"make {where if mode == 'writable' else 'it'} {mode} by this user, {elsewhere}",
        )
    if not isinstance(exc, OSError):
        return None
    if exc.errno == errno.EROFS:
        return LocationError(f"cannot {action}: the file system is read-only", source=location,
                             fix=f"use a writable disk, {elsewhere}")
    if isinstance(exc, NotADirectoryError | FileExistsError) or exc.errno == errno.ENOTDIR:
        return LocationError(
            f"cannot {action}: part of the path is a file, not a folder ({exc.filename or exc})",
            source=location,
            fix=f"move that file away, {elsewhere}",
        )
    if isinstance(exc, IsADirectoryError):
        return LocationError(f"cannot {action}: it is a folder, not a file", source=location,
                             fix="give the path of a file")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(
            f"cannot {action}: no space left on the device ({exc.strerror})",
            source=location,
            fix=f"free space on that disk (or raise the quota) and rerun, {elsewhere}",
        )
    if isinstance(exc, FileNotFoundError):
        return None
    return StorageError(f"cannot {action} ({type(exc).__name__}: {exc})", source=location,
                        fix="check the location and rerun (every step is safe to rerun)")


@contextmanager
def storage_errors(location: str, action: str, keep: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Translate failures of ``location`` inside the block (see :func:`storage_error`).

    Exceptions of the types in ``keep`` pass through unchanged.
    """
    try:
        yield
    except (ReadmitError, *keep):
        raise
    except Exception as exc:
        error = storage_error(exc, location, action)
        if error is None:
            raise
        raise error from exc


def open_uri(uri: str, mode: str = "rb"):
    """Open a single local path or s3:// URI (used for config files and raw inputs)."""
    if str(uri).startswith("s3://"):
        with storage_errors(str(uri), "open"):
            return s3_filesystem().open(str(uri), mode)
    return open(uri, mode)  # noqa: SIM115 - the caller closes it


def _link_exclusive(tmp: str, target: str, data: bytes) -> None:
    """Give the complete file ``tmp`` the name ``target`` unless that name exists."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # No hard links here: claim the name with O_EXCL, then fill it.
        with open(target, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


class Storage:
    """A root location (local folder or ``s3://bucket/prefix``) and atomic I/O under it."""

    def __init__(self, uri: str | Path):
        uri = str(uri)
        self.uri = uri.rstrip("/") or "/"
        if uri.startswith("s3://"):
            self.fs = s3_filesystem()
            self.root = uri[len("s3://"):].rstrip("/")
            self.local = False
        elif is_remote(uri):
            raise ReadmitInputError(
                f"unsupported storage location {uri!r}",
                fix="use a local folder or an s3://bucket/prefix URI",
            )
        else:
            self.fs = fsspec.filesystem("file")
            self.root = str(Path(uri.removeprefix("file://")).expanduser().absolute())
            self.local = True

    def __repr__(self) -> str:
        return f"Storage({self.uri!r})"

    # -- paths ---------------------------------------------------------------------------
    def path(self, rel: str = "") -> str:
        """The full path of ``rel`` for this filesystem (no ``s3://`` prefix)."""
        rel = rel.strip("/")
        return f"{self.root}/{rel}" if rel else self.root

    def uri_of(self, rel: str = "") -> str:
        """The user-facing location of ``rel`` (with ``s3://`` on S3), for messages."""
        return f"s3://{self.path(rel)}" if not self.local else self.path(rel)

    # -- plain objects -------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        with storage_errors(self.uri_of(rel), "check"):
            return self.fs.exists(self.path(rel))

    def read_bytes(self, rel: str) -> bytes:
        try:
            with storage_errors(self.uri_of(rel), "read"):
                return self.fs.cat_file(self.path(rel))
        except FileNotFoundError as exc:
            raise FileNotFoundError(self.uri_of(rel)) from exc

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write ``data`` at ``rel`` atomically (old or new is visible, never a partial file)."""
        with storage_errors(self.uri_of(rel), "write"):
            self._write_bytes(rel, data)

    def create_bytes(self, rel: str, data: bytes) -> None:
        """Create ``rel`` with ``data`` atomically; raise FileExistsError if it exists (never overwrites).

        Local: a complete temporary file linked to its name (``os.link`` fails on an existing
        name), or ``open("xb")`` where hard links are not supported. S3: a PUT with
        ``If-None-Match: *`` (s3fs turns the 412 into FileExistsError).
        """
        # A taken name is the caller's signal (take the next version), not a location fault.
        with storage_errors(self.uri_of(rel), "create", keep=(FileExistsError,)):
            self._write_bytes(rel, data, exclusive=True)

    def _write_bytes(self, rel: str, data: bytes, *, exclusive: bool = False) -> None:
        target = self.path(rel)
        if not self.local:
            self.fs.pipe_file(target, data, **({"mode": "create"} if exclusive else {}))
            return
        folder = os.path.dirname(target)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}-{os.path.basename(target)}")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if not exclusive:
                os.replace(tmp, target)
            else:
                _link_exclusive(tmp, target, data)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def check_writable(self) -> None:
        """Write and delete a small probe object at the root (created if needed): a location that
        cannot be written fails here, in a second, instead of after the long work that writes it."""
        rel = f".tmp-probe-{uuid.uuid4().hex}"
        created = None
        if self.local:  # the topmost folder the probe creates: removed again if left empty
            created = Path(self.path(""))
            while not created.parent.exists() and created.parent != created:
                created = created.parent
            created = None if created.exists() else created
        self.write_bytes(rel, b"readmit write check\n")
        self.delete(rel)
        if created is not None:  # a command that fails later leaves no empty folders behind
            folder = Path(self.path(""))
            while True:
                try:
                    folder.rmdir()
                except OSError:
                    break
                if folder == created:
                    break
                folder = folder.parent

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel))

    def write_json(self, rel: str, obj: Any) -> None:
        self.write_bytes(rel, dumps(obj).encode())

    def listdir(self, rel: str = "") -> list[str]:
        """Names directly under ``rel`` (files and folders), sorted; [] when it does not exist
        (or is a file)."""
        with storage_errors(self.uri_of(rel), "list"):
            try:
                entries = self.fs.ls(self.path(rel), detail=False, refresh=True) if not self.local \
                    else self.fs.ls(self.path(rel), detail=False)
            except (FileNotFoundError, NotADirectoryError):  # nothing is under a file either
                return []
        names = sorted({e.rstrip("/").rsplit("/", 1)[-1] for e in entries})
        return [n for n in names if not n.startswith(".tmp-")]

    def delete(self, rel: str, recursive: bool = False) -> None:
        try:
            with storage_errors(self.uri_of(rel), "delete"):
                self.fs.rm(self.path(rel), recursive=recursive)
        except FileNotFoundError:
            pass

    # -- partitioned tables --------------------------------------------------------------
    def partition_path(self, table: str, month: str) -> str:
        return f"{table.strip('/')}/snapshot_month={check_month(month)}/{PARTITION_FILE}"

    def write_parquet(self, rel: str, df: pl.DataFrame, *, compression: str = "zstd",
                      statistics: bool = True, metadata: dict[str, str] | None = None) -> None:
        """Write ``df`` as one parquet file at ``rel``, atomically.

        ``metadata`` goes into the file's key-value metadata, in the same write as the rows.
        """
        buf = io.BytesIO()
        df.write_parquet(buf, compression=compression, statistics=statistics, metadata=metadata)
        self.write_bytes(rel, buf.getvalue())

    def write_partition(self, table: str, month: str, df: pl.DataFrame,
                        metadata: dict[str, str] | None = None) -> None:
        """Replace the ``month`` partition of ``table`` with ``df`` (and ``metadata``), atomically."""
        self.write_parquet(self.partition_path(table, month), df, metadata=metadata)

    def partition_metadata(self, table: str, month: str) -> dict[str, str]:
        """The key-value metadata of a stored partition (read from its footer only)."""
        rel = self.partition_path(table, month)
        with storage_errors(self.uri_of(rel), "read"), self.fs.open(self.path(rel), "rb") as fh:
            raw = pq.ParquetFile(fh).metadata.metadata or {}
        return {k.decode(): v.decode() for k, v in raw.items()}

    def partition_columns(self, table: str, month: str) -> list[str]:
        """The column names of a stored partition (read from its footer only)."""
        with self.fs.open(self.path(self.partition_path(table, month)), "rb") as fh:
            return list(pq.ParquetFile(fh).schema_arrow.names)

    def list_partitions(self, table: str) -> list[str]:
        """The months that have a committed partition, sorted."""
        pattern = self.path(f"{table.strip('/')}/snapshot_month=*/{PARTITION_FILE}")
        if not self.local:
            self.fs.invalidate_cache()
        with storage_errors(self.uri_of(table), "list"):
            found_paths = self.fs.glob(pattern)
        months = []
        for found in found_paths:
            match = _PARTITION_DIR.match(found.rstrip("/").split("/")[-2])
            if match:
                months.append(match.group(1))
        return sorted(months)

    def read_partition(self, table: str, month: str, columns: list[str] | None = None) -> pl.DataFrame:
        rel = self.partition_path(table, month)
        try:
            data = self.read_bytes(rel)
        except FileNotFoundError as exc:
            raise ReadmitInputError(
                f"partition {month} of {table} does not exist",
                source=self.uri_of(rel),
                fix=f"build it first (`readmit medallion --start {month} --end {month}`)",
            ) from exc
        try:
            return pl.read_parquet(io.BytesIO(data), columns=columns)
        except Exception as exc:  # pyarrow/polars raise many types for a corrupt file
            raise ReadmitInputError(
                f"cannot read parquet partition ({type(exc).__name__}: {exc})",
                source=self.uri_of(rel),
                fix=f"rebuild the partition (`readmit medallion --start {month} --end {month}`)",
            ) from exc

    def read_table(
        self, table: str, months: Iterable[str] | None = None, columns: list[str] | None = None
    ) -> pl.DataFrame:
        """Concatenate the given (default: all) partitions of ``table`` in month order."""
        chosen = self.list_partitions(table) if months is None else sorted(months)
        frames = [self.read_partition(table, m, columns) for m in chosen]
        if not frames:
            return pl.DataFrame()
        return pl.concat(frames, how="vertical_relaxed")

    def partition_fingerprint(self, table: str, month: str) -> str:
        """A cheap fingerprint of a stored partition: its parquet footer's row count and size."""
        rel = self.partition_path(table, month)
        with storage_errors(self.uri_of(rel), "read"):
            info = self.fs.info(self.path(rel))
            with self.fs.open(self.path(rel), "rb") as fh:
                meta = pq.ParquetFile(fh).metadata
        return f"rows={meta.num_rows};bytes={info.get('size')}"
