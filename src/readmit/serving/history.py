"""The history store: the few silver columns patient history is counted from, per patient, online.

Batch gold counts a patient's earlier encounters over every silver month
(:func:`readmit.data.features.feature_frame`). An encounter scored at discharge needs the same
rows, fast, for one patient: the store keeps HISTORY_INPUT_COLUMNS of every encounter, indexed
by ``patient_nbr``. It is filled from silver (:func:`build_history_store`, a pipeline step after
gold, and ``readmit serve`` at start when it is missing or stale) and by the discharges the
service records (``POST /v1/encounters``). Nothing here counts anything: the features are
computed by gold's own code from these rows (:mod:`readmit.serving.online`).

Two back ends (``serve_config.history_backend``): ``embedded`` (the default) and ``redis``
(:class:`RedisHistoryStore`, ``serve_config.redis_url`` or ``READMIT_REDIS_URL``), shared by
several replicas. The embedded back end is one SQLite file under the datamart (``history/encounters.sqlite``):
nothing to start, safe for several worker processes (WAL). Two tables: ``silver`` (rebuilt
from silver, with the fingerprint of each silver month it holds) and ``recorded`` (discharges
recorded online; kept across rebuilds, dropped once silver has the same encounter_id).
Staleness: the store is stale when a silver month was added, removed or changed since it was
built (the fingerprints of :func:`readmit.data.gold.silver_history`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from readmit.config import Settings
from readmit.data.features import HISTORY_INPUT_COLUMNS, HISTORY_STATE_SCHEMA
from readmit.data.gold import silver_history
from readmit.data.layers import SILVER_TABLE
from readmit.errors import ReadmitInputError
from readmit.storage import Storage

STORE_FILE = "history/encounters.sqlite"
ENV_REDIS = "READMIT_REDIS_URL"
_COLUMNS = ", ".join(HISTORY_INPUT_COLUMNS)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS silver (encounter_id INTEGER PRIMARY KEY, patient_nbr INTEGER NOT NULL,
    snapshot_date INTEGER NOT NULL, time_in_hospital INTEGER, admission_type_id INTEGER);
CREATE INDEX IF NOT EXISTS silver_patient ON silver (patient_nbr);
CREATE TABLE IF NOT EXISTS recorded (encounter_id INTEGER PRIMARY KEY, patient_nbr INTEGER NOT NULL,
    snapshot_date INTEGER NOT NULL, time_in_hospital INTEGER, admission_type_id INTEGER);
CREATE INDEX IF NOT EXISTS recorded_patient ON recorded (patient_nbr);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_EPOCH = date(1970, 1, 1).toordinal()


def store_path(datamart_uri: str) -> Path:
    """Where the embedded store of a datamart lives (a local datamart only)."""
    storage = Storage(datamart_uri)
    if not storage.local:
        raise ReadmitInputError(
            "the embedded history store needs a local datamart (SQLite cannot live on S3)",
            source=storage.uri_of(STORE_FILE),
            fix="run the service with a local copy of the datamart (--datamart ./datamart)",
        )
    return Path(storage.path(STORE_FILE))


@dataclass(frozen=True)
class StoreResult:
    path: str
    silver_rows: int
    recorded_rows: int
    months: list[str]
    rebuilt: bool

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class HistoryStore:
    """The embedded store: one SQLite file, one connection per thread."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.where = str(self.path)
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            self._local.conn = conn
        return conn

    def ping(self) -> None:
        self._conn().execute("SELECT 1").fetchone()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- what it was built from ------------------------------------------------------------
    def fingerprints(self) -> dict[str, str] | None:
        """The silver months (and their history fingerprints) the store holds; None: never built."""
        row = self._conn().execute("SELECT value FROM meta WHERE key = 'silver'").fetchone()
        return None if row is None else json.loads(row[0])

    def counts(self) -> tuple[int, int]:
        conn = self._conn()
        return (conn.execute("SELECT count(*) FROM silver").fetchone()[0],
                conn.execute("SELECT count(*) FROM recorded").fetchone()[0])

    # -- writing ---------------------------------------------------------------------------
    def replace_silver(self, rows: pl.DataFrame, fingerprints: dict[str, str]) -> None:
        """Replace the silver table with ``rows`` (HISTORY_INPUT_COLUMNS) in one transaction."""
        conn = self._conn()
        values = _tuples(rows)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM silver")
            conn.executemany(f"INSERT INTO silver ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)", values)
            conn.execute("DELETE FROM recorded WHERE encounter_id IN (SELECT encounter_id FROM silver)")
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('silver', ?)", (json.dumps(fingerprints),))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def record(self, rows: pl.DataFrame) -> list[dict[str, Any]]:
        """Record discharges (HISTORY_INPUT_COLUMNS); return, per row, whether it was new.

        An encounter_id already held with the same values is a repeat (not new); with other
        values it is a conflict and nothing of the call is written.
        """
        conn = self._conn()
        values = _tuples(rows)
        conn.execute("BEGIN IMMEDIATE")
        try:
            out = []
            for value in values:
                held = self._held(conn, value[0])
                if held is None:
                    conn.execute(f"INSERT INTO recorded ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)", value)
                    out.append({"encounter_id": value[0], "recorded": True})
                elif held == value:
                    out.append({"encounter_id": value[0], "recorded": False})
                else:
                    raise ReadmitInputError(
                        f"encounter_id {value[0]} is already recorded with other values",
                        fix="an encounter is recorded once, at its discharge; send a new encounter_id",
                    )
            conn.execute("COMMIT")
            return out
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _held(conn: sqlite3.Connection, encounter_id: int) -> tuple | None:
        for table in ("silver", "recorded"):
            row = conn.execute(f"SELECT {_COLUMNS} FROM {table} WHERE encounter_id = ?", (encounter_id,)).fetchone()
            if row is not None:
                return tuple(row)
        return None

    # -- reading ---------------------------------------------------------------------------
    def patients(self, patient_nbrs: list[int]) -> pl.DataFrame:
        """Every held encounter of these patients (HISTORY_STATE_SCHEMA), silver and recorded."""
        wanted = sorted({int(p) for p in patient_nbrs})
        if not wanted:
            return pl.DataFrame(schema=HISTORY_STATE_SCHEMA)
        marks = ", ".join("?" * len(wanted))
        rows = self._conn().execute(
            f"SELECT {_COLUMNS} FROM silver WHERE patient_nbr IN ({marks}) "
            f"UNION ALL SELECT {_COLUMNS} FROM recorded WHERE patient_nbr IN ({marks})", wanted + wanted,
        ).fetchall()
        frame = pl.DataFrame(rows, schema=[(c, pl.Int64) for c in HISTORY_INPUT_COLUMNS], orient="row")
        return frame.with_columns(pl.col("snapshot_date").cast(pl.Int32).cast(pl.Date)).cast(HISTORY_STATE_SCHEMA)


def _tuples(rows: pl.DataFrame) -> list[tuple]:
    frame = rows.select(HISTORY_INPUT_COLUMNS).cast(HISTORY_STATE_SCHEMA)
    frame = frame.with_columns(pl.col("snapshot_date").cast(pl.Int32).cast(pl.Int64))
    return frame.rows()


# -- building it from silver ---------------------------------------------------------------
def silver_rows(storage: Storage, end_month: str | None = None) -> tuple[pl.DataFrame, dict[str, str]]:
    """The history inputs of every silver month up to ``end_month`` (all by default) and their fingerprints."""
    history, fingerprints = silver_history(storage)
    months = [m for m in sorted(history) if end_month is None or m <= end_month]
    if not months:
        raise ReadmitInputError(
            "there is no silver to build the history store from" + (f" up to {end_month}" if end_month else ""),
            source=storage.uri_of(SILVER_TABLE),
            fix="build it first (`readmit medallion`), or check --datamart",
        )
    frame = pl.concat([history[m].cast(HISTORY_STATE_SCHEMA) for m in months], how="vertical")
    return frame, {m: fingerprints[m] for m in months}


def open_store(settings: Settings) -> HistoryStore | RedisHistoryStore:
    """The history store the settings name (``serve_config.history_backend``)."""
    serve = settings.config.serve_config
    if serve.history_backend == "redis":
        url = os.environ.get(ENV_REDIS) or serve.redis_url
        if not url:
            raise ReadmitInputError(
                "serve_config.history_backend is redis but no Redis URL is given",
                fix=f"set {ENV_REDIS}=redis://HOST:6379/0 or serve_config.redis_url",
            )
        return RedisHistoryStore(url, prefix=f"readmit:{settings.config.model.model_name}:history")
    return HistoryStore(store_path(settings.datamart_uri))


def build_history_store(settings: Settings, *, end_month: str | None = None, force: bool = False) -> StoreResult:
    """Build the store from the datamart's silver when it is missing or stale (or ``force``)."""
    storage = Storage(settings.datamart_uri)
    store = open_store(settings)
    try:
        rows, fingerprints = silver_rows(storage, end_month)
        rebuilt = force or store.fingerprints() != fingerprints
        if rebuilt:
            store.replace_silver(rows, fingerprints)
        silver, recorded = store.counts()
        return StoreResult(store.where, silver, recorded, sorted(fingerprints), rebuilt)
    finally:
        store.close()


def history_store_step(settings: Settings, progress: Any = None) -> dict[str, Any]:
    """The history-store step of the training and inference graphs (after the gold gate).

    A datamart without silver (gold copied alone, a remote datamart) has nothing to build the
    store from: the step says so and does nothing, so batch scoring never waits on the service.
    """
    storage = Storage(settings.datamart_uri)
    redis = settings.config.serve_config.history_backend == "redis"
    if (not storage.local and not redis) or not storage.list_partitions(SILVER_TABLE):
        why = "the datamart is not local" if not storage.local else "the datamart has no silver"
        return {"path": None, "built": False, "note": f"no history store: {why} (readmit serve needs one)"}
    return build_history_store(settings).as_dict()


class HistoryUnavailable(RuntimeError):
    """The shared store cannot give a whole history now (the service answers 503)."""


# -- the Redis back end --------------------------------------------------------------------
def _pack(value: tuple) -> str:
    return ",".join("" if v is None else str(v) for v in value[2:])


def _unpack(encounter_id: bytes, patient: int, text: bytes) -> tuple:
    date_, days, kind = (None if v == "" else int(v) for v in text.decode().split(","))
    return (int(encounter_id), patient, date_, days, kind)


class RedisHistoryStore:
    """The store in Redis, for several replicas: one hash per patient (encounter_id -> values).

    Keys under ``prefix``: ``meta`` (the silver fingerprints and the current generation),
    ``silver:{generation}:{patient}`` and ``recorded:{patient}``. A rebuild writes a new
    generation and then switches ``meta`` to it in one command, so a reader never sees half
    of a rebuild; the old generation is deleted after.
    """

    def __init__(self, url: str, *, prefix: str = "readmit:history"):
        import redis

        self.url, self.prefix = url, prefix
        self.where = f"{redis.connection.parse_url(url).get('host', 'redis')}/{prefix}"
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def ping(self) -> None:
        self._generation()

    def close(self) -> None:
        self.client.close()

    def _meta(self) -> dict[bytes, bytes]:
        return self.client.hgetall(f"{self.prefix}:meta")

    def fingerprints(self) -> dict[str, str] | None:
        meta = self._meta()
        return json.loads(meta[b"silver"]) if b"silver" in meta else None

    def counts(self) -> tuple[int, int]:
        meta = self._meta()
        return int(meta.get(b"silver_rows", 0)), int(meta.get(b"recorded_rows", 0))

    def replace_silver(self, rows: pl.DataFrame, fingerprints: dict[str, str]) -> None:
        old = self._meta().get(b"generation", b"").decode()
        generation = f"{int(old or 0) + 1}"
        by_patient: dict[int, dict[int, str]] = {}
        for value in _tuples(rows):
            by_patient.setdefault(value[1], {})[value[0]] = _pack(value)
        pipe = self.client.pipeline(transaction=False)
        for i, (patient, mapping) in enumerate(by_patient.items()):
            pipe.hset(f"{self.prefix}:silver:{generation}:{patient}", mapping=mapping)
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()
        self.client.hset(f"{self.prefix}:meta", mapping={
            "generation": generation, "silver": json.dumps(fingerprints), "silver_rows": rows.height})
        if old:
            for keys in _batched(self.client.scan_iter(f"{self.prefix}:silver:{old}:*", count=5000), 5000):
                self.client.delete(*keys)

    def _generation(self) -> str:
        """The generation readers use; a Redis without one (emptied, restarted without its data)
        raises rather than answer from an empty history."""
        generation = self._meta().get(b"generation")
        if generation is None:
            raise HistoryUnavailable(f"the history store {self.where} holds no history (emptied or never built)")
        return generation.decode()

    def record(self, rows: pl.DataFrame) -> list[dict[str, Any]]:
        generation = self._generation()
        values = _tuples(rows)
        pipe = self.client.pipeline(transaction=False)
        for value in values:
            pipe.hget(f"{self.prefix}:silver:{generation}:{value[1]}", value[0])
            pipe.hget(f"{self.prefix}:recorded:{value[1]}", value[0])
        held = pipe.execute()
        out, new = [], {}
        for i, value in enumerate(values):
            found = held[2 * i] or held[2 * i + 1]
            if found is None:
                new.setdefault(value[1], {})[value[0]] = _pack(value)
                out.append({"encounter_id": value[0], "recorded": True})
            elif found.decode() == _pack(value):
                out.append({"encounter_id": value[0], "recorded": False})
            else:
                raise ReadmitInputError(
                    f"encounter_id {value[0]} is already recorded with other values",
                    fix="an encounter is recorded once, at its discharge; send a new encounter_id",
                )
        if new:
            pipe = self.client.pipeline(transaction=True)
            for patient, mapping in new.items():
                pipe.hset(f"{self.prefix}:recorded:{patient}", mapping=mapping)
            pipe.hincrby(f"{self.prefix}:meta", "recorded_rows", sum(len(m) for m in new.values()))
            pipe.execute()
        return out

    def patients(self, patient_nbrs: list[int]) -> pl.DataFrame:
        """The stored rows of ``patient_nbrs``, read whole or not at all.

        The hashes are read in one MULTI/EXEC with the generation itself: a Redis that was
        restarted empty, emptied or rebuilt between the generation's read and the rows' (a
        flapping Redis) shows as a changed generation and raises, never as a shorter history.
        """
        wanted = sorted({int(p) for p in patient_nbrs})
        generation = self._generation()
        pipe = self.client.pipeline(transaction=True)
        pipe.hget(f"{self.prefix}:meta", "generation")
        for patient in wanted:
            pipe.hgetall(f"{self.prefix}:silver:{generation}:{patient}")
            pipe.hgetall(f"{self.prefix}:recorded:{patient}")
        now, *found = pipe.execute()
        if now is None or now.decode() != generation:
            raise HistoryUnavailable(f"the history store {self.where} changed while it was read "
                                     "(emptied, restarted or rebuilt); retry")
        rows = {}
        for i, patient in enumerate(wanted):
            for held in (found[2 * i + 1], found[2 * i]):  # silver wins over a recorded copy
                rows.update({int(k): _unpack(k, patient, v) for k, v in held.items()})
        frame = pl.DataFrame(list(rows.values()), schema=[(c, pl.Int64) for c in HISTORY_INPUT_COLUMNS], orient="row")
        return frame.with_columns(pl.col("snapshot_date").cast(pl.Int32).cast(pl.Date)).cast(HISTORY_STATE_SCHEMA)


def _batched(items: Any, size: int) -> Any:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
