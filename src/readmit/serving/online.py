"""Online scoring: encounters in the raw input contract in, batch's predictions out.

The path is the medallion's own, on a few rows: the raw reader's checks and casts
(:func:`readmit.data.raw.check_rows`), silver's cleaning (:func:`readmit.data.silver.clean`),
gold's features (:func:`readmit.data.features.feature_frame`) with the patient's earlier
encounters from the history store as the history state, the death-or-hospice rule of batch
(:func:`readmit.serving.batch.keep_scorable`) and the batch scoring function
(:func:`readmit.serving.batch.score_batch`). No feature is computed here.

``readmitted`` is the label: at discharge it is not known. The raw contract requires it, so a
request without it is read with the placeholder ``NO``; no feature reads it (history counts
only HISTORY_INPUT_COLUMNS), and it is dropped before scoring.

Several encounters in one request are one small batch, as in gold: an earlier encounter of the
same patient in the same list counts in the later one's history.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from readmit.config import Settings
from readmit.data.features import HISTORY_INPUT_COLUMNS, feature_frame
from readmit.data.raw import REASON_COLUMN, ROW_COLUMN, check_rows
from readmit.data.schema import RAW_SCHEMA, SNAPSHOT_COLUMN
from readmit.data.silver import clean
from readmit.serving.batch import ScoringModel, keep_scorable, score_batch
from readmit.serving.history import HistoryStore

PLACEHOLDER_LABEL = "NO"
EXCLUDED = "death_or_hospice"


@dataclass(frozen=True)
class RowProblem:
    """A refused value: the row (0-based, in the request), the field and the raw reader's words."""

    index: int
    field: str
    message: str


class RecordsRefused(ValueError):
    def __init__(self, problems: list[RowProblem]):
        self.problems = problems
        super().__init__("; ".join(f"[{p.index}].{p.field}: {p.message}" for p in problems))


def _text(value: Any) -> str:
    if value is None:
        return "?"
    if isinstance(value, bool):  # JSON true/false is not a UCI value
        return str(value).lower()
    return str(value)


def text_frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    """The records as the raw reader reads a file: every column as text, ``?`` for missing."""
    columns = [*RAW_SCHEMA, SNAPSHOT_COLUMN]
    data = {c: [_text(r.get(c)) for r in records] for c in columns}
    data["readmitted"] = [PLACEHOLDER_LABEL if r.get("readmitted") is None else str(r["readmitted"])
                          for r in records]
    return pl.DataFrame(data, schema=dict.fromkeys(columns, pl.String))


def _problems(bad: pl.DataFrame) -> list[RowProblem]:
    out = []
    for row, reason in bad.select(ROW_COLUMN, REASON_COLUMN).iter_rows():
        for part in reason.split("; "):
            field, _, message = part.partition(": ")
            out.append(RowProblem(int(row) - 1, field, message or part))
    return out


def silver_rows(records: list[dict[str, Any]]) -> pl.DataFrame:
    """The records checked and cleaned as the medallion does it (raises RecordsRefused)."""
    good, bad = check_rows(text_frame(records))
    if bad.height:
        raise RecordsRefused(_problems(bad))
    silver, _ = clean(good, source="request")
    return silver


def gold_rows(silver: pl.DataFrame, store: HistoryStore) -> pl.DataFrame:
    """Gold's feature rows for these silver encounters, their history from the store."""
    return feature_frame(silver, _state(silver, store))


def score_records(
    records: list[dict[str, Any]], store: HistoryStore, scorers: list[ScoringModel], settings: Settings,
    scored_at: datetime | None = None,
) -> list[dict[str, Any]]:
    """One answer per record, in the request's order: batch's prediction, or why none."""
    silver = silver_rows(records)
    return _answers(records, feature_frame(silver, _state(silver, store)), scorers, settings, scored_at)


def _state(silver: pl.DataFrame, store: HistoryStore) -> pl.DataFrame:
    return store.patients(silver["patient_nbr"].to_list())


def _answers(
    records: list[dict[str, Any]], gold: pl.DataFrame, scorers: list[ScoringModel], settings: Settings,
    scored_at: datetime | None,
) -> list[dict[str, Any]]:
    """The answers of ``records`` from their gold rows (batch's scoring function)."""
    scored_at = scored_at or datetime.now(UTC)
    exclude = settings.config.training_config.exclude_death_hospice
    scorable = keep_scorable(gold, exclude)
    unseen: dict[str, int] = {}
    by_id = {}
    if scorable.height:  # a request of death-or-hospice encounters only has nothing to score
        predictions = score_batch(scorable, scorers, settings.config.inference_config, scored_at, unseen)
        by_id = {row["encounter_id"]: row for row in predictions.iter_rows(named=True)}
    vocab = {s.arm: s.vocabulary_sets() for s in scorers}
    gold_by_id = {row["encounter_id"]: row for row in gold.iter_rows(named=True)}
    out = []
    for record in records:
        encounter = int(record["encounter_id"])
        found = by_id.get(encounter)
        if found is None:
            out.append({"encounter_id": encounter, "scored": False, "excluded": EXCLUDED})
            continue
        features = gold_by_id[encounter]
        unseen_here = sorted(c for c, values in vocab.get(found["arm"], {}).items()
                             if c in features and (features[c] if features[c] is not None else "__null__") not in values)
        out.append({
            "encounter_id": encounter, "scored": True, "risk": found["risk"], "risk_band": found["risk_band"],
            "flag": found["flag"], "top_reasons": list(found["top_reasons"]), "algorithm": found["algorithm"],
            "version": found["version"], "alias": found["alias"], "arm": found["arm"],
            "unseen_categories": unseen_here,
        })
    return out


def history_rows(records: list[dict[str, Any]]) -> pl.DataFrame:
    """The history inputs of discharges to record, checked and cleaned as the medallion does it."""
    return silver_rows(records).select(HISTORY_INPUT_COLUMNS)


def score_groups(
    groups: list[list[dict[str, Any]]], store: HistoryStore, scorers: list[ScoringModel], settings: Settings,
    scored_at: datetime | None = None,
) -> list[list[dict[str, Any]] | Exception]:
    """:func:`score_records` of each group (one request's records), scored as one batch.

    The rows of separate requests never see each other: the caller joins only groups with no
    patient and no encounter_id in common (:func:`independent`), and a batch is scored whole only
    when no stored encounter shares an ``encounter_id`` with a row of another patient (gold's pool
    leaves a scored encounter's own id out of everyone's history). Otherwise, or when anything is
    refused, each group is scored alone, so each gets its own answer or its own error.
    """
    if len(groups) > 1:
        try:
            records = [r for group in groups for r in group]
            silver = silver_rows(records)
            state = _state(silver, store)
            if _ids_agree(silver, state):
                answers = _answers(records, feature_frame(silver, state), scorers, settings, scored_at)
                out, start = [], 0
                for group in groups:
                    out.append(answers[start:start + len(group)])
                    start += len(group)
                return out
        except Exception:  # noqa: BLE001 -- scored alone below, each with its own error
            pass
    results: list[list[dict[str, Any]] | Exception] = []
    for group in groups:
        try:
            results.append(score_records(group, store, scorers, settings, scored_at))
        except Exception as exc:  # noqa: BLE001 -- handed to that group's request
            results.append(exc)
    return results


def _ids_agree(silver: pl.DataFrame, state: pl.DataFrame) -> bool:
    """True when no stored encounter has the encounter_id of a row with another patient."""
    mine = dict(zip(silver["encounter_id"].to_list(), silver["patient_nbr"].to_list(), strict=True))
    held = state.filter(pl.col("encounter_id").is_in(list(mine)))
    return all(mine[e] == p for e, p in held.select("encounter_id", "patient_nbr").iter_rows())


def keys_of(records: list[dict[str, Any]]) -> tuple[set[Any], set[Any]]:
    """(patients, encounter ids) of a request's records, as sent."""
    return {r.get("patient_nbr") for r in records}, {r.get("encounter_id") for r in records}


class Coalescer:
    """Requests scored one batch at a time; those that arrive while a batch is scored wait and
    are scored together in the next (at most ``max_rows`` rows), through :func:`score_groups`.

    No request waits on a timer: alone it is scored at once. Under load the batch is whatever
    queued meanwhile, so the fixed cost of a call (the medallion's code on a few rows) is paid
    once per batch, not once per request. One batch at a time: the scoring uses the cores.

    The batches are scored by one thread of the coalescer's own (started when a request comes,
    gone once none waits), in arrival order: the first waiting request leads a batch with its
    ``run``. A waiting request holds no thread of its own when it waits through
    :meth:`score_async` (the service's endpoints), so how many can share a batch is bounded by
    ``max_rows``, not by a thread pool; :meth:`score` waits in the calling thread.
    """

    def __init__(self, max_rows: int = 256):
        self.max_rows = max_rows
        self.pending: list[_Job] = []
        self.busy = False  # a batch is being scored
        self.cv = threading.Condition()
        self._draining = False

    def score(self, records: list[dict[str, Any]], run: Any, kind: str | None = "serving",
              context: Any = None) -> list[dict[str, Any]]:
        """The answers of ``records``; ``run(groups)`` scores a batch (:func:`score_groups` bound
        to the serving store and models). Raises what scoring ``records`` alone raised.

        Only requests of the same ``kind`` share a batch, scored by the first one's ``run``.
        A request that brings something of its own to be scored with (a CDS Hooks call's earlier
        stays) passes it as ``context``: its kind's ``run`` is then called ``run(groups,
        contexts)``, each group beside its own context. ``kind=None``: scored alone."""
        done = threading.Event()
        job = self._submit(_Job(records, *keys_of(records), kind=kind, run=run, notify=done.set, context=context))
        done.wait()
        return job.answer()

    async def score_async(self, records: list[dict[str, Any]], run: Any,
                          kind: str | None = "serving", context: Any = None) -> list[dict[str, Any]]:
        """:meth:`score`, awaited on the event loop instead of blocking a thread. A caller that
        stops waiting (a request timeout) leaves its job to be scored; its answer is dropped."""
        import asyncio

        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def notify() -> None:
            try:
                loop.call_soon_threadsafe(_settle, future)
            except RuntimeError:  # the loop closed meanwhile (shutdown): nobody waits for the answer
                pass

        job = self._submit(_Job(records, *keys_of(records), kind=kind, run=run, notify=notify, context=context))
        await future
        return job.answer()

    def _submit(self, job: _Job) -> _Job:
        with self.cv:
            self.pending.append(job)
            if not self._draining:
                self._draining = True
                threading.Thread(target=self._drain, name="readmit-coalescer", daemon=True).start()
        return job

    def _drain(self) -> None:
        """Score batches while requests wait; the thread ends when none does."""
        while True:
            with self.cv:
                if not self.pending:
                    self._draining = False
                    return
                batch = self._take(self.pending[0])
                self.busy = True
            try:
                groups = [j.records for j in batch]
                leader = batch[0]
                results = (leader.run(groups) if leader.context is None
                           else leader.run(groups, [j.context for j in batch]))
                if len(results) != len(batch):
                    raise RuntimeError(f"a batch of {len(batch)} requests got {len(results)} answers")
            except Exception as exc:  # noqa: BLE001 -- every job of the batch gets it
                results = [exc] * len(batch)
            with self.cv:
                self.busy = False
            for j, result in zip(batch, results, strict=True):
                j.result = result
                j.notify()

    def _take(self, leader: _Job) -> list[_Job]:
        """The leader's job and the queued ones independent of the batch so far, in arrival order."""
        batch, patients, ids, rows = [leader], set(leader.patients), set(leader.ids), len(leader.records)
        for job in self.pending:
            if job is leader or rows + len(job.records) > self.max_rows:
                continue
            if leader.kind is None or job.kind != leader.kind or (job.context is None) != (leader.context is None):
                continue
            if patients.isdisjoint(job.patients) and ids.isdisjoint(job.ids):
                batch.append(job)
                patients |= job.patients
                ids |= job.ids
                rows += len(job.records)
        taken = {id(j) for j in batch}
        self.pending = [j for j in self.pending if id(j) not in taken]
        return batch


def _settle(future: Any) -> None:
    if not future.done():  # a caller that stopped waiting cancelled it
        future.set_result(None)


@dataclass
class _Job:
    records: list[dict[str, Any]]
    patients: set[Any]
    ids: set[Any]
    result: list[dict[str, Any]] | Exception | None = None
    kind: str | None = "serving"
    run: Any = None
    notify: Any = None
    context: Any = None

    def answer(self) -> list[dict[str, Any]]:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result
