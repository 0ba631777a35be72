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
"""

from __future__ import annotations

import io
import json
import os
import re
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import fsspec
import polars as pl
import pyarrow.parquet as pq

from readmit.errors import ReadmitInputError

PARTITION_FILE = "data.parquet"
_PARTITION_DIR = re.compile(r"^snapshot_month=(\d{4}-\d{2})$")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def is_remote(uri: str) -> bool:
    return "://" in str(uri) and not str(uri).startswith("file://")


def s3_filesystem() -> fsspec.AbstractFileSystem:
    """An s3fs filesystem configured from the standard AWS environment variables."""
    try:
        import s3fs  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ReadmitInputError(
            "s3:// locations need the s3 extra",
            fix="pip install 'readmit[s3]'",
        ) from exc
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    client_kwargs = {"endpoint_url": endpoint} if endpoint else {}
    # skip_instance_cache: credentials or endpoint may change between calls (tests, long workers).
    return fsspec.filesystem("s3", client_kwargs=client_kwargs, skip_instance_cache=True)


def open_uri(uri: str, mode: str = "rb"):
    """Open a single local path or s3:// URI (used for config files and raw inputs)."""
    if str(uri).startswith("s3://"):
        return s3_filesystem().open(str(uri), mode)
    return open(uri, mode)  # noqa: SIM115 - the caller closes it


def check_month(month: str) -> str:
    if not _MONTH.match(month):
        raise ReadmitInputError(
            f"invalid month {month!r}", fix="write months as YYYY-MM, for example 2005-03"
        )
    return month


def check_month_range(start: str | None, end: str | None) -> tuple[str | None, str | None]:
    """Check a month range (``YYYY-MM`` or None = open): each month valid, start not after end."""
    start = check_month(start) if start else None
    end = check_month(end) if end else None
    if start and end and start > end:
        raise ReadmitInputError(
            f"start month {start} is after end month {end}",
            fix="give the start month before the end month",
        )
    return start, end


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
        return self.fs.exists(self.path(rel))

    def read_bytes(self, rel: str) -> bytes:
        try:
            return self.fs.cat_file(self.path(rel))
        except FileNotFoundError as exc:
            raise FileNotFoundError(self.uri_of(rel)) from exc

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write ``data`` at ``rel`` atomically (old or new is visible, never a partial file)."""
        target = self.path(rel)
        if not self.local:
            self.fs.pipe_file(target, data)
            return
        folder = os.path.dirname(target)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}-{os.path.basename(target)}")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel))

    def write_json(self, rel: str, obj: Any) -> None:
        self.write_bytes(rel, json.dumps(obj, indent=2, sort_keys=False, default=str).encode())

    def listdir(self, rel: str = "") -> list[str]:
        """Names directly under ``rel`` (files and folders), sorted; [] when it does not exist."""
        try:
            entries = self.fs.ls(self.path(rel), detail=False, refresh=True) if not self.local \
                else self.fs.ls(self.path(rel), detail=False)
        except FileNotFoundError:
            return []
        names = sorted({e.rstrip("/").rsplit("/", 1)[-1] for e in entries})
        return [n for n in names if not n.startswith(".tmp-")]

    def delete(self, rel: str, recursive: bool = False) -> None:
        try:
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
        with self.fs.open(self.path(self.partition_path(table, month)), "rb") as fh:
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
        months = []
        for found in self.fs.glob(pattern):
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
        info = self.fs.info(self.path(self.partition_path(table, month)))
        with self.fs.open(self.path(self.partition_path(table, month)), "rb") as fh:
            meta = pq.ParquetFile(fh).metadata
        return f"rows={meta.num_rows};bytes={info.get('size')}"
