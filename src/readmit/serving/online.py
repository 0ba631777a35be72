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
    state = store.patients(silver["patient_nbr"].to_list())
    return feature_frame(silver, state)


def score_records(
    records: list[dict[str, Any]], store: HistoryStore, scorers: list[ScoringModel], settings: Settings,
    scored_at: datetime | None = None,
) -> list[dict[str, Any]]:
    """One answer per record, in the request's order: batch's prediction, or why none."""
    scored_at = scored_at or datetime.now(UTC)
    silver = silver_rows(records)
    gold = gold_rows(silver, store)
    exclude = settings.config.training_config.exclude_death_hospice
    scorable = keep_scorable(gold, exclude)
    unseen: dict[str, int] = {}
    by_id = {}
    if scorable.height:  # a request of death-or-hospice encounters only has nothing to score
        predictions = score_batch(scorable, scorers, settings.config.inference_config, scored_at, unseen)
        by_id = {row["encounter_id"]: row for row in predictions.iter_rows(named=True)}
    vocab = {s.arm: s.vocabulary() for s in scorers}
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
