"""The extracts a datamart is built from: their ledger, and how a newer one merges into bronze.

A hospital sends an extract a month (or re-sends one with corrections, or with the outcomes of
encounters it sent blank before). Each ``readmit medallion --raw FILE`` is one *extract*. Bronze
keeps one row per ``encounter_id``: an extract's rows replace the rows of the same encounters
that earlier extracts brought (the newer file wins, wherever the encounter was dated before),
and every other row stays. With ``no_replace`` an encounter already brought by another file is a
conflict: the run is refused before anything is written, naming the file's rows.

The ledger ``bronze/_extracts.json`` lists the extracts in the order they were applied: each one's
checksum, file, rows, the months its file holds (``months_in_file``), the months it was applied
to (``months_written``: all of them, unless ``--start/--end`` chose fewer) and the earlier extracts
it overlapped. Rerunning an extract (same checksum) moves it to the end and widens its months:
a rerun is safe, and its rows are the newest again. The single-source gate reads the ledger to tell
consecutive extracts of one source (fine) from a window mixing two versions of the same months.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from readmit.data.layers import BRONZE_TABLE
from readmit.storage import Storage

LEDGER = "bronze/_extracts.json"
SOURCE = "_source_sha256"


def read_ledger(storage: Storage) -> list[dict]:
    """The extracts applied to this datamart, oldest first ([] for a datamart older than the ledger)."""
    if not storage.exists(LEDGER):
        return []
    return list(storage.read_json(LEDGER).get("extracts", []))


def record_extract(storage: Storage, entry: dict) -> None:
    """Add ``entry`` to the ledger as the newest extract (a rerun of the same file replaces its
    entry, keeping the union of the months it was applied to), written in one atomic write."""
    extracts = read_ledger(storage)
    earlier = next((e for e in extracts if e["sha256"] == entry["sha256"]), None)
    if earlier is not None:
        entry = {**entry, "months_written": sorted(set(earlier["months_written"]) | set(entry["months_written"]))}
    extracts = [e for e in extracts if e["sha256"] != entry["sha256"]] + [entry]
    storage.write_json(LEDGER, {"extracts": extracts})


def ledger_entry(*, sha256: str, source: str, ingested_at: datetime, rows: int,
                 months_in_file: dict[str, int], months_written: list[str], overlaps: list[dict]) -> dict:
    """One ledger record (see the module docstring)."""
    return {
        "sha256": sha256, "source": source, "ingested_at": ingested_at.isoformat(), "rows": rows,
        "months_in_file": dict(sorted(months_in_file.items())), "months_written": sorted(months_written),
        "overlaps": overlaps,
    }


def bronze_matches(storage: Storage, ids: pl.Series) -> pl.DataFrame:
    """The bronze rows whose encounter_id is in ``ids``: ``month``, ``encounter_id`` and their source
    (null for bronze written before sources were recorded). Reads two columns of every month."""
    frames = []
    wanted = ids.unique().implode()
    for month in storage.list_partitions(BRONZE_TABLE):
        columns = ["encounter_id"] + ([SOURCE] if SOURCE in storage.partition_columns(BRONZE_TABLE, month) else [])
        part = storage.read_partition(BRONZE_TABLE, month, columns=columns)
        hit = part.filter(pl.col("encounter_id").is_in(wanted))
        if hit.height:
            if SOURCE not in hit.columns:
                hit = hit.with_columns(pl.lit(None, dtype=pl.String).alias(SOURCE))
            frames.append(hit.select(pl.lit(month).alias("month"), "encounter_id", SOURCE))
    if not frames:
        return pl.DataFrame(schema={"month": pl.String, "encounter_id": pl.Int64, SOURCE: pl.String})
    return pl.concat(frames)


def merged_partition(existing: pl.DataFrame | None, new: pl.DataFrame | None, replaced: pl.Series) -> pl.DataFrame:
    """A bronze month after an extract: the existing rows whose encounter is not in the extract
    (``replaced``: every encounter_id the extract brings), then the extract's rows of this month."""
    parts = []
    if existing is not None:
        kept = existing.filter(~pl.col("encounter_id").is_in(replaced.implode()))
        parts.append(kept)
    if new is not None:
        parts.append(new)
    schema = (new if new is not None else parts[0]).schema
    aligned = [p.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in schema.items() if c not in p.columns)
               .select(list(schema)).cast(schema, strict=False) for p in parts]
    return pl.concat(aligned)


def overlap_notes(matches: pl.DataFrame, sha256: str, ledger: list[dict]) -> tuple[list[dict], list[str]]:
    """The earlier extracts an extract overlaps (encounters it replaces, by month), for the ledger
    and the run's notes. Rows of the same file (a rerun) are not an overlap."""
    others = matches.filter(pl.col(SOURCE).is_null() | (pl.col(SOURCE) != sha256))
    names = {e["sha256"]: e["source"] for e in ledger}
    overlaps, notes = [], []
    for (sha,), rows in others.group_by(SOURCE, maintain_order=True):
        months = sorted(rows["month"].unique().to_list())
        name = names.get(sha, "an extract not in the ledger") if sha else "bronze without a recorded source"
        overlaps.append({"sha256": sha, "source": name, "encounters": rows.height, "months": months})
        notes.append(f"overlaps {name} ({(sha or '?')[:12]}): {rows.height} encounter(s) in "
                     f"{months[0]}..{months[-1]} replaced by this newer extract")
    return overlaps, notes
