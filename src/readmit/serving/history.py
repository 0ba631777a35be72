"""The history store: the few silver columns patient history is counted from, per patient, online.

Batch gold counts a patient's earlier encounters over every silver month
(:func:`readmit.data.features.feature_frame`). An encounter scored at discharge needs the same
rows, fast, for one patient: the store keeps HISTORY_INPUT_COLUMNS of every encounter, indexed
by ``patient_nbr``. It is filled from silver (:func:`build_history_store`, a pipeline step after
gold, and ``readmit serve`` at start when it is missing or stale) and by the discharges the
service records (``POST /v1/encounters``). Nothing here counts anything: the features are
computed by gold's own code from these rows (:mod:`readmit.serving.online`).

The embedded back end is one SQLite file under the datamart (``history/encounters.sqlite``):
nothing to start, safe for several worker processes (WAL). Two tables: ``silver`` (rebuilt
from silver, with the fingerprint of each silver month it holds) and ``recorded`` (discharges
recorded online; kept across rebuilds, dropped once silver has the same encounter_id).
Staleness: the store is stale when a silver month was added, removed or changed since it was
built (the fingerprints of :func:`readmit.data.gold.silver_history`).
"""

from __future__ import annotations

import json
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
_COLUMNS = ", ".join(HISTORY_INPUT_COLUMNS)
_SCHEMA = f"""
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


def build_history_store(settings: Settings, *, end_month: str | None = None, force: bool = False) -> StoreResult:
    """Build the embedded store from the datamart's silver when it is missing or stale (or ``force``)."""
    storage = Storage(settings.datamart_uri)
    store = HistoryStore(store_path(settings.datamart_uri))
    try:
        rows, fingerprints = silver_rows(storage, end_month)
        rebuilt = force or store.fingerprints() != fingerprints
        if rebuilt:
            store.replace_silver(rows, fingerprints)
        silver, recorded = store.counts()
        return StoreResult(str(store.path), silver, recorded, sorted(fingerprints), rebuilt)
    finally:
        store.close()


def history_store_step(settings: Settings, progress: Any = None) -> dict[str, Any]:
    """The history-store step of the training and inference graphs (after the gold gate).

    A datamart without silver (gold copied alone, a remote datamart) has nothing to build the
    store from: the step says so and does nothing, so batch scoring never waits on the service.
    """
    storage = Storage(settings.datamart_uri)
    if not storage.local or not storage.list_partitions(SILVER_TABLE):
        why = "the datamart is not local" if not storage.local else "the datamart has no silver"
        return {"path": None, "built": False, "note": f"no history store: {why} (readmit serve needs one)"}
    return build_history_store(settings).as_dict()
