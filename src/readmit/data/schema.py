"""The raw UCI schema: every column with an explicit type, in file order.

This is the contract between the raw reader and the layers after it. Strings stay strings
(``diag_*`` included: ICD-9 codes such as ``V57`` and ``250.83`` are not numbers); ``?`` means
missing; the string ``None`` in ``max_glu_serum`` / ``A1Cresult`` is a category ("not measured").
"""

from __future__ import annotations

import polars as pl

# The 23 medication columns, in file order.
DRUG_COLUMNS: tuple[str, ...] = (
    "metformin", "repaglinide", "nateglinide", "chlorpropamide", "glimepiride",
    "acetohexamide", "glipizide", "glyburide", "tolbutamide", "pioglitazone",
    "rosiglitazone", "acarbose", "miglitol", "troglitazone", "tolazamide", "examide",
    "citoglipton", "insulin", "glyburide-metformin", "glipizide-metformin",
    "glimepiride-pioglitazone", "metformin-rosiglitazone", "metformin-pioglitazone",
)

INT_COLUMNS: tuple[str, ...] = (
    "encounter_id", "patient_nbr", "admission_type_id", "discharge_disposition_id",
    "admission_source_id", "time_in_hospital", "num_lab_procedures", "num_procedures",
    "num_medications", "number_outpatient", "number_emergency", "number_inpatient",
    "number_diagnoses",
)

# Full raw schema in the order of the UCI file.
RAW_SCHEMA: dict[str, pl.DataType] = {
    "encounter_id": pl.Int64(),
    "patient_nbr": pl.Int64(),
    "race": pl.String(),
    "gender": pl.String(),
    "age": pl.String(),
    "weight": pl.String(),
    "admission_type_id": pl.Int64(),
    "discharge_disposition_id": pl.Int64(),
    "admission_source_id": pl.Int64(),
    "time_in_hospital": pl.Int64(),
    "payer_code": pl.String(),
    "medical_specialty": pl.String(),
    "num_lab_procedures": pl.Int64(),
    "num_procedures": pl.Int64(),
    "num_medications": pl.Int64(),
    "number_outpatient": pl.Int64(),
    "number_emergency": pl.Int64(),
    "number_inpatient": pl.Int64(),
    "diag_1": pl.String(),
    "diag_2": pl.String(),
    "diag_3": pl.String(),
    "number_diagnoses": pl.Int64(),
    "max_glu_serum": pl.String(),
    "A1Cresult": pl.String(),
    **{drug: pl.String() for drug in DRUG_COLUMNS},
    "change": pl.String(),
    "diabetesMed": pl.String(),
    "readmitted": pl.String(),
}

# Columns every raw input must have (the optional ``snapshot_date`` is added after reading).
REQUIRED_COLUMNS: tuple[str, ...] = tuple(RAW_SCHEMA)

SNAPSHOT_COLUMN = "snapshot_date"

# The columns that identify an encounter in every layer after bronze.
KEY_COLUMNS: tuple[str, ...] = ("encounter_id", "patient_nbr", SNAPSHOT_COLUMN)

# A missing categorical value, written as this explicit category from silver on.
MISSING = "Missing"

# discharge_disposition_id values meaning the patient died or went to hospice.
DEATH_OR_HOSPICE_DISPOSITIONS: frozenset[int] = frozenset({11, 13, 14, 19, 20, 21})

READMITTED_VALUES: frozenset[str] = frozenset({"<30", ">30", "NO"})
