"""The request and answer models, derived from the one raw schema (:data:`readmit.data.schema.RAW_SCHEMA`).

An encounter is a row of the raw input contract: every UCI column by its UCI name, plus its
discharge date (``snapshot_date``). Pydantic checks the JSON shape (a number where the schema
has an integer, text where it has a string, sizes); the values are then checked by the raw
reader itself (:func:`readmit.data.raw.check_rows`), so a value the medallion refuses is
refused with the medallion's words. ``readmitted``, the label, may be left out.
"""

from __future__ import annotations

import functools
from datetime import date
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, create_model

from readmit.data.schema import RAW_SCHEMA, SNAPSHOT_COLUMN

MAX_TEXT = 64  # the longest UCI value is a medical_specialty of 36 characters
MAX_ID = 10**15
_REQUIRED = ("encounter_id", "patient_nbr")


def _field_name(column: str) -> str:
    return column.replace("-", "_")


def _field(column: str, dtype: pl.DataType) -> tuple[Any, Any]:
    name = {"alias": column} if _field_name(column) != column else {}
    if dtype == pl.Int64:
        if column in _REQUIRED:
            return int, Field(..., ge=0, le=MAX_ID, **name)
        return int | None, Field(None, ge=-MAX_ID, le=MAX_ID, **name)
    return str | None, Field(None, max_length=MAX_TEXT, **name)


EXAMPLE: dict[str, Any] = {
    "encounter_id": 443867222, "patient_nbr": 175429310, "race": "Caucasian", "gender": "Male",
    "age": "[70-80)", "weight": None, "admission_type_id": 1, "discharge_disposition_id": 1,
    "admission_source_id": 7, "time_in_hospital": 5, "payer_code": "MC", "medical_specialty": None,
    "num_lab_procedures": 47, "num_procedures": 1, "num_medications": 18, "number_outpatient": 0,
    "number_emergency": 0, "number_inpatient": 1, "diag_1": "428", "diag_2": "250.02", "diag_3": "401",
    "number_diagnoses": 9, "max_glu_serum": "None", "A1Cresult": ">8", "metformin": "Steady",
    "insulin": "Up", "change": "Ch", "diabetesMed": "Yes", "snapshot_date": "2008-11-20",
}


@functools.cache
def encounter_model() -> type[BaseModel]:
    """The pydantic model of one encounter (built once, on first use)."""
    fields = {_field_name(c): _field(c, t) for c, t in RAW_SCHEMA.items()}
    fields[SNAPSHOT_COLUMN] = (date, Field(..., description="The discharge date (ISO YYYY-MM-DD)."))
    return create_model(
        "Encounter", __config__=ConfigDict(extra="ignore", populate_by_name=False,
                                           json_schema_extra={"examples": [EXAMPLE]}), **fields)


def encounter_record(model: BaseModel) -> dict[str, Any]:
    """An encounter as a raw record: the UCI column names, the date as ISO text."""
    record = model.model_dump(by_alias=True)
    record[SNAPSHOT_COLUMN] = record[SNAPSHOT_COLUMN].isoformat()
    return record


class Prediction(BaseModel):
    encounter_id: int
    scored: bool = Field(description="False when batch would not score it either (death or hospice).")
    excluded: str | None = None
    risk: float | None = Field(None, description="The calibrated probability of a readmission within 30 days.")
    risk_band: str | None = None
    flag: bool | None = Field(None, description="risk >= the model's stored threshold.")
    top_reasons: list[str] | None = None
    algorithm: str | None = None
    version: str | None = None
    alias: str | None = None
    arm: str | None = None
    unseen_categories: list[str] = Field(default_factory=list,
                                         description="Categorical features whose value the model never saw in training.")


class ScoreAnswer(BaseModel):
    request_id: str
    predictions: list[Prediction]


class Recorded(BaseModel):
    encounter_id: int
    recorded: bool = Field(description="False when the same discharge was already held (a repeat).")


class RecordAnswer(BaseModel):
    request_id: str
    encounters: list[Recorded]
