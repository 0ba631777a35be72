"""The engines that execute the medallion's narwhals definitions: Polars, DuckDB or Spark.

``data_config.engine`` chooses one. Every cleaning rule, feature and the patient history are
written once, as narwhals expressions (:mod:`readmit.data.features`); this module only opens
the engine, reads parquet into one of its lazy frames and writes a lazy frame out:

- ``polars``: in this process (the default; :mod:`readmit.data.silver` and
  :mod:`readmit.data.gold` keep their month-by-month paths for it, see there).
- ``duckdb``: an in-process DuckDB database, which spills to disk past its memory limit, so one
  machine handles data larger than its memory. Settings: ``data_config.duckdb.config``
  (DuckDB configuration options, e.g. ``{"memory_limit": "4GB", "threads": "2"}``).
- ``spark``: a Spark session from the standard settings: ``SPARK_REMOTE`` (Spark Connect) when
  set, else ``data_config.spark.master`` and ``data_config.spark.config``; so the same code runs
  on ``local[*]``, a self-run cluster, EMR, Dataproc or Databricks. A session already active in
  the process (one made by a test fixture, a notebook, ``spark-submit``) is used as it is.

Silver and gold run on the engine; bronze (reading the raw CSV, splitting it by month) stays on
Polars: it is one sequential pass over one file, which an engine would not speed up on one
machine, and on a cluster the raw extract usually arrives already partitioned.

Results come back through a scratch folder inside the datamart (which the engine's workers
can reach, as they read bronze and silver there): the engine writes its result there partitioned by month
(``_ym=YYYYMM``), the caller reads it back a month at a time and writes each partition through
:class:`readmit.storage.Storage` (atomic), then the scratch folder is removed. Neither DuckDB
nor PySpark is imported until an engine is opened.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import narwhals as nw
import polars as pl

from readmit.config import DataSection
from readmit.errors import ReadmitError
from readmit.months import month_number
from readmit.storage import PARTITION_FILE, Storage

ENGINES: tuple[str, ...] = ("polars", "duckdb", "spark")
MONTH_KEY = "_ym"  # year * 100 + month of snapshot_date: the scratch partition column
ROW = "_row"  # a row's position in its parquet file (0, 1, ...): the file order, on every engine
FILE = "_file"  # the path of the parquet file a row was read from
SCRATCH = "_scratch"  # datamart folder of engines' intermediate results

# readmit never relies on DuckDB's row order (each result is sorted when read back; "first" is an
# explicit ROW), so DuckDB may reorder rows: its advice for writes larger than memory.
DUCKDB_DEFAULTS = {"preserve_insertion_order": "false"}
# DuckDB buffers rows for every month file a partitioned write has open (~0.9 GB more than a plain
# write for 120 months of 1M rows; at 30M rows gold ran out of memory), so silver and gold go to
# DuckDB a year of months per query (gold's history pool: every month up to the query's last).
# Spark takes every month at once: a job per year would cost it more than buffering does.
DUCKDB_MONTHS_PER_QUERY = 12

INSTALL = {
    "duckdb": "pip install 'readmit[duckdb]' (or: pip install 'duckdb>=1.1')",
    "spark": "pip install 'readmit[spark]' (or: pip install 'pyspark>=4'; Spark also needs Java 17+)",
}


def month_key(date: nw.Expr) -> nw.Expr:
    """``YYYYMM`` of a date as an integer: the month partition, computed the same on every engine."""
    return (date.dt.year().cast(nw.Int64) * 100 + date.dt.month().cast(nw.Int64)).alias(MONTH_KEY)


def partition_key(path: nw.Expr) -> nw.Expr:
    """MONTH_KEY of the partition a file path ``.../snapshot_month=YYYY-MM/data.parquet`` belongs to."""
    end = len(PARTITION_FILE) + 1
    year, month = path.str.slice(-(end + 7), 4), path.str.slice(-(end + 2), 2)
    return (year.cast(nw.Int64) * 100 + month.cast(nw.Int64)).alias(MONTH_KEY)


_SPARK_TYPES: dict[pl.DataType, str] = {
    pl.Int64(): "BIGINT", pl.String(): "STRING", pl.Date(): "DATE", pl.Boolean(): "BOOLEAN", pl.Int8(): "TINYINT",
    pl.Datetime("us", "UTC"): "TIMESTAMP",
}


def _missing(engine: str, exc: ImportError) -> ReadmitError:
    return ReadmitError(
        f"data_config.engine is {engine!r} but {engine} is not installed ({exc}); "
        f"install it: {INSTALL[engine]}, or set data_config.engine to polars"
    )


def spark_session(data_cfg: DataSection) -> Any:
    """The Spark session: the active one, else Spark Connect (``SPARK_REMOTE``), else master/config."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise _missing("spark", exc) from exc
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    remote = os.environ.get("SPARK_REMOTE")
    if remote:
        return SparkSession.builder.remote(remote).appName("readmit").getOrCreate()
    builder = SparkSession.builder.master(data_cfg.spark.master).appName("readmit")
    for key, value in data_cfg.spark.config.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


class Engine:
    """One open engine: reads parquet into narwhals lazy frames and writes them partitioned by month."""

    def __init__(self, name: str, native: Any):
        self.name = name
        self.native = native  # a duckdb connection or a SparkSession

    @property
    def months_per_query(self) -> int | None:
        """How many months to give the engine per query (None: all at once)."""
        return DUCKDB_MONTHS_PER_QUERY if self.name == "duckdb" else None

    def read_parquet(self, uris: Sequence[str], schema: dict[str, pl.DataType]) -> nw.LazyFrame:
        """The ``schema`` columns of the parquet files ``uris`` as one lazy frame."""
        if self.name == "duckdb":
            frame = self.native.read_parquet(list(uris), hive_partitioning=False)
        else:  # a given schema spares Spark a job that reads every footer to infer one
            frame = self.native.read.schema(self._ddl(schema)).parquet(*uris)
        return nw.from_native(frame).select(*schema)

    def read_rows(self, uris: Sequence[str], schema: dict[str, pl.DataType]) -> nw.LazyFrame:
        """The ``schema`` columns of the parquet files ``uris`` (null where a file lacks one), with
        FILE (the file's path) and ROW (the row's position in its file: DuckDB's
        ``file_row_number``, Spark's ``_metadata.row_index``, whatever tasks the file is split into).
        """
        if self.name == "duckdb":
            native = self.native.read_parquet(list(uris), file_row_number=True, filename=True, union_by_name=True,
                                              hive_partitioning=False)
            return nw.from_native(native).select(
                *schema, nw.col("file_row_number").cast(nw.Int64).alias(ROW), nw.col("filename").alias(FILE))
        frame = self.native.read.schema(self._ddl(schema)).parquet(*uris)
        native = frame.select(*[frame[f"`{c}`"] for c in schema], frame["_metadata.row_index"].alias(ROW),
                              frame["_metadata.file_path"].alias(FILE))
        return nw.from_native(native).with_columns(nw.col(ROW).cast(nw.Int64))

    @staticmethod
    def _ddl(schema: dict[str, pl.DataType]) -> str:
        return ", ".join(f"`{name}` {_SPARK_TYPES[dtype]}" for name, dtype in schema.items())

    def write_by_month(self, frame: nw.LazyFrame, uri: str) -> None:
        """Write ``frame`` (with a MONTH_KEY column) as parquet under ``uri``, one folder per month."""
        native = frame.to_native()
        if self.name == "duckdb":
            native.write_parquet(uri, partition_by=[MONTH_KEY], overwrite=True)
        else:
            native.write.mode("overwrite").partitionBy(MONTH_KEY).parquet(uri)


@contextlib.contextmanager
def open_engine(name: str, data_cfg: DataSection) -> Iterator[Engine]:
    """Open the DuckDB or Spark engine (imported here, not before)."""
    if name == "duckdb":
        try:
            import duckdb
        except ImportError as exc:
            raise _missing("duckdb", exc) from exc
        con = duckdb.connect(config={**DUCKDB_DEFAULTS, **data_cfg.duckdb.config})
        try:
            yield Engine(name, con)
        finally:
            con.close()
    elif name == "spark":
        yield Engine(name, spark_session(data_cfg))  # left open: sessions are costly to start
    else:
        raise ReadmitError(f"engine {name!r} has no lazy reader; use one of {', '.join(ENGINES[1:])}")


@contextlib.contextmanager
def scratch(storage: Storage) -> Iterator[str]:
    """A fresh scratch folder (relative to the datamart) removed afterwards, whatever happens."""
    rel = f"{SCRATCH}/{uuid.uuid4().hex}"
    if storage.local:  # engines create the partition folders, not always their parents
        storage.fs.makedirs(storage.path(rel), exist_ok=True)
    try:
        yield rel
    finally:
        if storage.exists(rel):
            storage.delete(rel, recursive=True)
        if storage.local:
            with contextlib.suppress(OSError):  # others' scratch folders still in it
                os.rmdir(storage.path(SCRATCH))


def engine_uri(storage: Storage, rel: str) -> str:
    """Where the engine finds ``rel`` of the datamart (local path or ``s3://...``)."""
    return storage.uri_of(rel)


def read_month(storage: Storage, rel: str, month: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """The rows an engine wrote for ``month`` under scratch folder ``rel``; empty (typed) if none."""
    pattern = storage.path(f"{rel}/{MONTH_KEY}={month_number(month)}/*.parquet")
    files = sorted(storage.fs.glob(pattern))
    parts = []
    for found in files:
        with storage.fs.open(found, "rb") as fh:
            part = pl.read_parquet(fh.read())
        if part.height:
            parts.append(part.select(list(schema)).cast(schema))
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.concat(parts, how="vertical")
