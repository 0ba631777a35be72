"""The extracts a datamart is built from: their ledger, and how a newer one merges into bronze.

A hospital sends an extract a month (or re-sends one with corrections, or with the outcomes of
encounters it sent blank before). Each ``readmit medallion --raw FILE`` is one *extract*. Bronze
keeps one row per ``encounter_id``: an extract's rows replace the rows of the same encounters
that earlier extracts brought (the newer file wins, wherever the encounter was dated before),
and every other row stays. With ``no_replace`` an encounter already brought by another file is a
conflict: the run is refused before anything is written, naming the file's rows.

The ledger ``bronze/_extracts.json`` lists the extracts in the order they were applied: each one's
checksum, file, rows, the months its file holds (``months_in_file``), the months it was applied
to (``months_written``: all of them, unless ``--start/--end`` chose fewer), the earlier extracts
it overlapped, its rows quarantined for a diagnosis code of neither ICD system by month
(``invalid_codes``) and, for an extract whose outcomes come from its dates, its ``as_of`` date. Rerunning an extract (same checksum) moves it to the end and widens its months:
a rerun is safe, and its rows are the newest again. The single-source gate reads the ledger to tell
consecutive extracts of one source (fine) from a window mixing two versions of the same months.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

from readmit.data.layers import BRONZE_TABLE
from readmit.data.outcomes import DISCHARGE, STAYS_SCHEMA, latest_date, outcomes_of
from readmit.storage import Storage

LEDGER = "bronze/_extracts.json"
SOURCE = "_source_sha256"
# The dated stays of the extracts whose outcomes come from their dates, by month of discharge:
# STAYS_SCHEMA and the ``readmitted`` bronze holds. Outside bronze/encounters: never a partition.
STAYS_TABLE = "bronze/_stays"
OUTCOME = "readmitted"
FROM_DATES = "outcome_from_dates"  # in STAYS_TABLE: false once an extract with readmitted repeated the stay


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
                 months_in_file: dict[str, int], months_written: list[str], overlaps: list[dict],
                 as_of: date | None = None, invalid_codes: dict[str, int] | None = None) -> dict:
    """One ledger record (see the module docstring); ``as_of`` for an extract whose outcomes come
    from its dates (its latest date); ``invalid_codes``: its rows quarantined for a diagnosis code of
    neither ICD system, by month (``unknown`` when the row's month could not be read)."""
    entry = {
        "sha256": sha256, "source": source, "ingested_at": ingested_at.isoformat(), "rows": rows,
        "months_in_file": dict(sorted(months_in_file.items())), "months_written": sorted(months_written),
        "overlaps": overlaps, "invalid_codes": dict(sorted((invalid_codes or {}).items())),
    }
    if as_of is not None:
        entry["as_of"] = as_of.isoformat()
    return entry


def invalid_codes_by_month(ledger: list[dict]) -> dict[str, int]:
    """Rows quarantined for a diagnosis code of neither ICD-9-CM nor ICD-10-CM, by month, over every
    extract in the ledger (what the report shows; each extract's own counts are in its entry)."""
    counts: dict[str, int] = {}
    for entry in ledger:
        for month, n in entry.get("invalid_codes", {}).items():
            counts[month] = counts.get(month, 0) + n
    return dict(sorted(counts.items()))


def latest_as_of(ledger: list[dict]) -> date | None:
    """The latest as-of date of the dated extracts in the ledger (None when there is none)."""
    dates = [date.fromisoformat(e["as_of"]) for e in ledger if e.get("as_of")]
    return max(dates) if dates else None


def bronze_matches(storage: Storage, ids: pl.Series) -> pl.DataFrame:
    """The bronze rows whose encounter_id is in ``ids``: ``month``, ``encounter_id``, their source
    (null for bronze written before sources were recorded) and their ``readmitted`` (the outcome
    known so far, null if none). Reads three columns of every month."""
    frames = []
    wanted = ids.unique().implode()
    for month in storage.list_partitions(BRONZE_TABLE):
        columns = ["encounter_id", OUTCOME] + (
            [SOURCE] if SOURCE in storage.partition_columns(BRONZE_TABLE, month) else [])
        part = storage.read_partition(BRONZE_TABLE, month, columns=columns)
        hit = part.filter(pl.col("encounter_id").is_in(wanted))
        if hit.height:
            if SOURCE not in hit.columns:
                hit = hit.with_columns(pl.lit(None, dtype=pl.String).alias(SOURCE))
            frames.append(hit.select(pl.lit(month).alias("month"), "encounter_id", SOURCE, OUTCOME))
    if not frames:
        return pl.DataFrame(schema={"month": pl.String, "encounter_id": pl.Int64, SOURCE: pl.String,
                                    OUTCOME: pl.String})
    return pl.concat(frames)


def known_outcomes(matches: pl.DataFrame) -> pl.DataFrame:
    """``encounter_id`` -> the outcome bronze already knows (``readmitted`` not null), one per id."""
    return matches.filter(pl.col(OUTCOME).is_not_null()).select("encounter_id", OUTCOME) \
        .unique("encounter_id", keep="first", maintain_order=True)


def _lookup(table: pl.DataFrame, value: str, default: pl.Expr | None = None) -> pl.Expr:
    """``table[value]`` for each row's encounter_id (``default`` where the id is not in ``table``)."""
    return pl.col("encounter_id").replace_strict(table["encounter_id"], table[value],
                                                 default=default if default is not None else pl.lit(None),
                                                 return_dtype=pl.String)


@dataclass
class OutcomeMerge:
    """What a newer extract did to the outcomes bronze already knew: encounters it repeated with a
    blank outcome (the known one kept), and known outcomes it replaced, by transition and month."""

    kept: dict[str, int] = field(default_factory=dict)  # month -> encounters whose known outcome was kept
    replaced: dict[tuple[str, str], int] = field(default_factory=dict)  # (old, new) -> encounters
    replaced_months: set[str] = field(default_factory=set)

    def notes(self) -> list[str]:
        out = []
        if self.kept:
            months = sorted(self.kept)
            out.append(f"{sum(self.kept.values())} encounter(s) repeated with a blank readmitted keep the "
                       f"outcome already known ({months[0]}..{months[-1]}): an outcome once learned is not lost")
        if self.replaced:
            months = sorted(self.replaced_months)
            how = ", ".join(f"{old} -> {new}: {n}" for (old, new), n in sorted(self.replaced.items()))
            out.append(f"{sum(self.replaced.values())} known outcome(s) replaced by this newer extract "
                       f"({months[0]}..{months[-1]}; {how})")
        return out


def keep_known_outcomes(new: pl.DataFrame, known: pl.DataFrame, month: str, merge: OutcomeMerge) -> pl.DataFrame:
    """An extract's rows of ``month`` with the outcome bronze already knows where theirs is blank
    (newer wins only with an outcome of its own); counts both kinds on ``merge``."""
    if not known.height:
        return new
    prior = _lookup(known, OUTCOME)
    flagged = new.with_columns(prior.alias("_prior"))
    kept = flagged.filter(pl.col(OUTCOME).is_null() & pl.col("_prior").is_not_null()).height
    if kept:
        merge.kept[month] = merge.kept.get(month, 0) + kept
    changed = flagged.filter(pl.col(OUTCOME).is_not_null() & pl.col("_prior").is_not_null()
                             & (pl.col(OUTCOME) != pl.col("_prior")))
    for (old, now), rows in changed.group_by("_prior", OUTCOME).len().rows_by_key(["_prior", OUTCOME]).items():
        merge.replaced[(old, now)] = merge.replaced.get((old, now), 0) + rows[0][0]
    if changed.height:
        merge.replaced_months.add(month)
    return flagged.with_columns(pl.coalesce(OUTCOME, "_prior").alias(OUTCOME)).drop("_prior")


@dataclass
class Rederived:
    """Outcomes derived again over the dated stays of every extract applied (see
    :func:`rederive_outcomes`)."""

    as_of: date | None
    derived: pl.DataFrame  # encounter_id, readmitted: the extract's own stays (null: not known yet)
    updates: dict[str, pl.DataFrame]  # bronze month -> encounter_id, readmitted of earlier stays that changed
    stays: dict[str, pl.DataFrame]  # STAYS_TABLE month -> its partition as it is to be written
    learned: int = 0  # earlier encounters whose outcome is known now
    revised: dict[tuple[str, str], int] = field(default_factory=dict)

    def notes(self) -> list[str]:
        if not self.updates:
            return []
        months = sorted(self.updates)
        how = "".join(f", {old} -> {new}: {n}" for (old, new), n in sorted(self.revised.items()))
        return [f"outcomes derived again over the stays of every extract applied, as of {self.as_of}: "
                f"{self.learned} earlier encounter(s) known now{how} ({months[0]}..{months[-1]})"]


def rederive_outcomes(storage: Storage, new_stays: pl.DataFrame | None, ids: pl.Series, known: pl.DataFrame,
                      as_of: date | None) -> Rederived | None:
    """The outcomes of every dated stay, derived over the stays of every extract applied (a
    patient's next admission may come in a later extract) as of the latest as-of date.

    ``new_stays``: the extract's stays (STAYS_SCHEMA; None for an extract with a ``readmitted``
    column); ``ids``: the encounters it brings; ``known``: the outcomes bronze knows for them
    (:func:`known_outcomes`); ``as_of``: the latest as-of date of the extract and the ledger. An
    outcome once known is never blanked: a stay the derivation leaves blank keeps the outcome bronze
    holds. A stay that an extract with a ``readmitted`` column repeats stays in the pool (its
    admission still counts for the patient's other stays) but its outcome is that extract's from
    then on (``FROM_DATES`` false): never derived again. None when no stay is involved.
    """
    months = storage.list_partitions(STAYS_TABLE)
    if new_stays is None and not months:
        return None
    wanted = ids.unique().implode()
    schema = {**STAYS_SCHEMA, OUTCOME: pl.String(), FROM_DATES: pl.Boolean()}
    old = pl.concat([_read_stays(storage, m, schema) for m in months]) if months else pl.DataFrame(schema=schema)
    month_of = pl.col(DISCHARGE).dt.strftime("%Y-%m")
    repeated = pl.col("encounter_id").is_in(wanted)
    touched = set(old.filter(repeated).select(month_of).to_series().to_list())
    if new_stays is None:  # a labelled extract: its encounters' outcomes are its own from now on
        old = old.with_columns(pl.when(repeated).then(False).otherwise(pl.col(FROM_DATES)).alias(FROM_DATES))
        result = Rederived(as_of=as_of, derived=pl.DataFrame(schema={"encounter_id": pl.Int64, OUTCOME: pl.String}),
                           updates={}, stays={})
        tagged = old.with_columns(month_of.alias("_month"))
        for month in sorted(touched):
            result.stays[month] = tagged.filter(pl.col("_month") == month).drop("_month")
        return result
    old = old.filter(~repeated).with_columns(pl.lit(True).alias("_old"))
    new = new_stays.filter(repeated & pl.col(DISCHARGE).is_not_null()) \
        .unique("encounter_id", keep="first", maintain_order=True) \
        .with_columns(_lookup(known, OUTCOME).alias(OUTCOME), pl.lit(True).alias(FROM_DATES))
    pool = pl.concat([old, new.with_columns(pl.lit(False).alias("_old"))])
    dates = [d for d in (latest_date(pool), as_of) if d is not None]
    as_of = max(dates) if dates else None
    derived = outcomes_of(pool.select(list(STAYS_SCHEMA)), as_of)
    pool = pool.with_columns(derived.replace("", None).alias("_derived"), month_of.alias("_month"))
    pool = pool.with_columns(pl.when(pl.col(FROM_DATES)).then(pl.coalesce("_derived", OUTCOME))
                             .otherwise(pl.col(OUTCOME)).alias("_final"))
    changed = pool.filter(pl.col("_old") & pl.col("_final").ne_missing(pl.col(OUTCOME)))
    result = Rederived(as_of=as_of, derived=pool.filter(~pl.col("_old")).select("encounter_id", pl.col("_derived")
                                                                               .alias(OUTCOME)),
                       updates={}, stays={})
    for (month,), part in changed.partition_by("_month", as_dict=True).items():
        result.updates[month] = part.select("encounter_id", pl.col("_final").alias(OUTCOME))
    result.learned = changed.filter(pl.col(OUTCOME).is_null()).height
    for (old_value, now), rows in changed.filter(pl.col(OUTCOME).is_not_null()).group_by(OUTCOME, "_final") \
            .len().rows_by_key([OUTCOME, "_final"]).items():
        result.revised[(old_value, now)] = rows[0][0]
    touched |= set(result.updates) | set(pool.filter(~pl.col("_old"))["_month"].to_list())
    for month in sorted(touched):
        rows = pool.filter(pl.col("_month") == month).sort(DISCHARGE, "encounter_id")
        result.stays[month] = rows.select(*STAYS_SCHEMA, pl.col("_final").alias(OUTCOME), FROM_DATES)
    return result


def _read_stays(storage: Storage, month: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    part = storage.read_partition(STAYS_TABLE, month)
    if FROM_DATES not in part.columns:
        part = part.with_columns(pl.lit(True).alias(FROM_DATES))
    return part.select(list(schema)).cast(schema)


def with_outcomes(part: pl.DataFrame, outcomes: pl.DataFrame | None) -> pl.DataFrame:
    """``part`` with the ``readmitted`` of ``outcomes`` (encounter_id, readmitted; null = no
    change) for its encounters there; the others as they are."""
    if outcomes is None or not outcomes.height:
        return part
    found = outcomes.filter(pl.col(OUTCOME).is_not_null())
    return part.with_columns(pl.coalesce(_lookup(found, OUTCOME), OUTCOME).alias(OUTCOME)) if found.height else part


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
