"""The raw UCI schema: every column with an explicit type, in file order, and its value rules.

This is the contract between the raw reader and the layers after it. Strings stay strings
(``diag_*`` included: ICD-9 codes such as ``V57`` and ``250.83`` are not numbers); ``?`` means
missing; the string ``None`` in ``max_glu_serum`` / ``A1Cresult`` is a category ("not measured").

The value rules (:data:`DOMAINS`, :data:`INT_RANGES`) are checked row by row when the raw file
is read (:mod:`readmit.data.raw`: a bad row is refused, or set aside with ``--quarantine``) and
again by silver on stored partitions.
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

# Columns an extract may leave out, and what readmit does then: the column is read as missing
# in every row and the absence is reported (docs/input_contract.md, readmit.data.contract).
OPTIONAL_COLUMNS: dict[str, str] = {
    "weight": "every row's weight is missing (written `Missing` from silver on)",
    "payer_code": "every row's payer is missing (payer_group `Missing`)",
    "medical_specialty": "every row's specialty is missing (specialty_group `Missing`)",
    "max_glu_serum": "every row's glucose test is missing (glucose_ordinal 0, as not measured)",
    "A1Cresult": "every row's A1C test is missing (a1c_ordinal 0, as not measured)",
}
# Columns every raw input must have (the optional ``snapshot_date`` is added after reading).
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c for c in RAW_SCHEMA if c not in OPTIONAL_COLUMNS)

SNAPSHOT_COLUMN = "snapshot_date"

# The columns that identify an encounter in every layer after bronze.
KEY_COLUMNS: tuple[str, ...] = ("encounter_id", "patient_nbr", SNAPSHOT_COLUMN)

# A missing categorical value, written as this explicit category from silver on.
MISSING = "Missing"

# discharge_disposition_id values meaning the patient died or went to hospice.
DEATH_OR_HOSPICE_DISPOSITIONS: frozenset[int] = frozenset({11, 13, 14, 19, 20, 21})

READMITTED_VALUES: frozenset[str] = frozenset({"<30", ">30", "NO"})

# -- value rules ---------------------------------------------------------------------------------

AGES: tuple[str, ...] = tuple(f"[{lo}-{lo + 10})" for lo in range(0, 100, 10))
WEIGHTS: tuple[str, ...] = tuple(f"[{lo}-{lo + 25})" for lo in range(0, 200, 25)) + (">200",)
DRUG_VALUES: tuple[str, ...] = ("No", "Steady", "Up", "Down")

# Columns with a closed set of values, in their canonical UCI spelling (matched case-insensitively;
# a missing value, ``?`` or empty, is allowed everywhere but in readmitted).
DOMAINS: dict[str, tuple[str, ...]] = {
    "race": ("Caucasian", "AfricanAmerican", "Hispanic", "Asian", "Other"),
    "gender": ("Female", "Male"),
    "age": AGES,
    "weight": WEIGHTS,
    "max_glu_serum": ("None", "Norm", ">200", ">300"),
    "A1Cresult": ("None", "Norm", ">7", ">8"),
    **{drug: DRUG_VALUES for drug in DRUG_COLUMNS},
    "change": ("No", "Ch"),
    "diabetesMed": ("No", "Yes"),
    "readmitted": ("<30", ">30", "NO"),
}
# Values (lower case) that mean "unknown" in a DOMAINS column: read as missing.
UNKNOWN_ALIASES: dict[str, tuple[str, ...]] = {"gender": ("unknown/invalid", "unknown", "missing")}

# Counts of things: never below zero.
COUNT_COLUMNS: tuple[str, ...] = (
    "num_lab_procedures", "num_procedures", "num_medications", "number_outpatient",
    "number_emergency", "number_inpatient", "number_diagnoses",
)
# Inclusive bounds of integer columns (None: open). The UCI extraction kept only stays of 1 to 14
# days (Strack et al. 2014), so a time_in_hospital outside 1..14 is a wrong value, not a rare one.
INT_RANGES: dict[str, tuple[int | None, int | None]] = {
    "time_in_hospital": (1, 14),
    **{name: (0, None) for name in COUNT_COLUMNS},
}


def allowed_range(name: str) -> str:
    """How the allowed range of an INT_RANGES column reads in messages: ``1..14``, ``>= 0``."""
    low, high = INT_RANGES[name]
    if high is None:
        return f">= {low}"
    return f"<= {high}" if low is None else f"{low}..{high}"
