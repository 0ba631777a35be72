"""Reason codes and inputs in words a clinician reads: one table for every place that shows them.

``top_reasons`` (:mod:`readmit.serving.reasons`) names model features (``prior_encounters``,
``diag_1_group``); a CDS Hooks card, a report or a letter shows these phrases instead. A feature
not in the table (a new one) falls back to its name with spaces, so nothing is ever hidden.
"""

from __future__ import annotations

from readmit.data.features import MED_FEATURES

REASON_WORDS: dict[str, str] = {
    "age_midpoint": "Age",
    "time_in_hospital": "Length of this stay",
    "num_lab_procedures": "Number of lab tests during the stay",
    "num_procedures": "Number of procedures during the stay",
    "num_medications": "Number of medications given during the stay",
    "number_outpatient": "Outpatient visits in the year before admission",
    "number_emergency": "Emergency visits in the year before admission",
    "number_inpatient": "Inpatient admissions in the year before admission",
    "number_diagnoses": "Number of diagnoses recorded",
    "total_visits": "Visits of any kind in the year before admission",
    "utilisation": "Overall recent use of care (stay length and prior-year visits)",
    "admission_severity": "How urgent the admission was",
    "discharge_severity": "Care needed after discharge (discharge destination)",
    "admission_source_risk": "How the patient was admitted (e.g. through the emergency room)",
    "glucose_ordinal": "Serum glucose result",
    "a1c_ordinal": "HbA1c result",
    "medication_change": "Diabetes medication changed during the stay",
    "diabetes_med": "Diabetes medication prescribed",
    "num_medications_changed": "Number of diabetes drugs whose dose changed",
    "num_diabetes_drugs": "Number of diabetes drugs prescribed",
    "prior_encounters": "Earlier hospital encounters",
    "prior_inpatient_days": "Days spent in hospital in earlier stays",
    "prior_emergency_encounters": "Earlier emergency admissions",
    "days_since_prior_encounter": "Time since the last hospital encounter",
    "race": "Race",
    "gender": "Sex",
    "admission_type": "Type of admission",
    "discharge_disposition": "Discharge destination",
    "admission_source": "Source of admission",
    "payer_group": "Payer",
    "specialty_group": "Admitting specialty",
    "diag_1_group": "Primary diagnosis group",
    "diag_2_group": "Secondary diagnosis group",
    "diag_3_group": "Additional diagnosis group",
    **{name: f"{drug.replace('-', ' ').capitalize()} (dose and changes)" for name, drug in MED_FEATURES.items()},
}

# The raw input contract's columns as a card names them when they are missing.
INPUT_WORDS: dict[str, str] = {
    "race": "race", "gender": "sex", "age": "age (birth date)", "weight": "weight",
    "admission_type_id": "admission type", "discharge_disposition_id": "discharge disposition",
    "admission_source_id": "admission source", "time_in_hospital": "length of stay (encounter period)",
    "payer_code": "payer", "medical_specialty": "admitting specialty", "num_lab_procedures": "lab tests",
    "num_procedures": "procedures", "num_medications": "medications given", "number_diagnoses": "diagnoses",
    "diag_1": "primary diagnosis", "diag_2": "secondary diagnosis", "diag_3": "additional diagnosis",
    "max_glu_serum": "serum glucose result", "A1Cresult": "HbA1c result",
    "number_outpatient": "prior-year outpatient visits", "number_emergency": "prior-year emergency visits",
    "number_inpatient": "prior-year inpatient admissions",
}


def reason_words(feature: str) -> str:
    """The phrase for a reason code (its name with spaces when the table has none)."""
    return REASON_WORDS.get(feature, feature.replace("_", " "))


def input_words(column: str) -> str:
    """The phrase for a missing raw input (its name when the table has none)."""
    return INPUT_WORDS.get(column, column.replace("_", " "))
