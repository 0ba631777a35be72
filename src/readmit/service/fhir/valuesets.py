"""Every code table of the FHIR R4 mapping, with its source (docs/fhir_mapping.md shows them).

Two kinds of codes reach a UCI id column:

- a standard code (HL7 terminology, US Core, LOINC, RxNorm) mapped through the tables below,
  where the standard concept means one UCI code;
- readmit's own code systems of the UCI ids (``urn:readmit:uci:<column>``, the codes and words
  of ``IDs_mapping.csv`` in the UCI zip): an EHR that keeps the UCI codes (or a ConceptMap to
  them) sends them beside the standard coding, and they win. The UCI codes no standard concept
  names (``Trauma Center``, ``Not Mapped``, a transfer from a hospice, ...) travel only that way.

A standard code absent from its table is not guessed: the column is missing and says why.
The UCI columns no standard element of the prefetch holds (counts, payer, specialty, weight)
travel as readmit's Encounter extensions (:func:`uci_extension`), or are missing.
"""

from __future__ import annotations

# -- code systems ----------------------------------------------------------------------------
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD9CM = "http://hl7.org/fhir/sid/icd-9-cm"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_PRIORITY = "http://terminology.hl7.org/CodeSystem/v3-ActPriority"
ADMIT_SOURCE = "http://terminology.hl7.org/CodeSystem/admit-source"
DISCHARGE_DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
OMB_RACE = "urn:oid:2.16.840.1.113883.6.238"  # CDC Race & Ethnicity, as US Core binds it
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"


def uci_system(column: str) -> str:
    """readmit's code system of a UCI id column: its codes are the UCI integers, as text."""
    return f"urn:readmit:uci:{column}"


def uci_extension(column: str) -> str:
    """readmit's Encounter extension carrying a UCI column no standard FHIR element holds."""
    return f"urn:readmit:uci:extension:{column}"


# The UCI columns without a standard element in the prefetched resources: an EHR (or an
# integration engine) that has them sends them as readmit's Encounter extensions, integers as
# valueInteger, the others as valueString; without them they are missing.
EXTENSION_INTEGERS: tuple[str, ...] = ("num_lab_procedures", "num_procedures", "number_outpatient",
                                       "number_emergency", "number_inpatient")
EXTENSION_STRINGS: tuple[str, ...] = ("weight", "payer_code", "medical_specialty")

UCI_ADMISSION_TYPE = uci_system("admission_type_id")
UCI_ADMISSION_SOURCE = uci_system("admission_source_id")
UCI_DISCHARGE_DISPOSITION = uci_system("discharge_disposition_id")

# -- Encounter -------------------------------------------------------------------------------
# Encounter.class (v3 ActCode): readmit scores inpatient stays, as the UCI extraction kept.
INPATIENT_CLASSES: frozenset[str] = frozenset({"IMP", "ACUTE", "NONAC"})

# Encounter.priority (v3 ActPriority) -> admission_type_id (UCI: 1 Emergency, 2 Urgent, 3 Elective).
ADMISSION_TYPE: dict[str, int] = {"EM": 1, "UR": 2, "EL": 3}

# Encounter.hospitalization.admitSource (HL7 admit-source) -> admission_source_id. The UCI code
# whose words match the concept: mp/gp 1 Physician Referral, outp 2 Clinic Referral, hosp-trans
# 4 Transfer from a hospital, nursing 5 Transfer from a SNF, psych/rehab 6 Transfer from another
# health care facility, emd 7 Emergency Room, born 23 Born inside this hospital. ``other`` names
# no UCI code.
ADMISSION_SOURCE: dict[str, int] = {
    "mp": 1, "gp": 1, "outp": 2, "hosp-trans": 4, "nursing": 5, "psych": 6, "rehab": 6, "emd": 7,
    "born": 23,
}

# Encounter.hospitalization.dischargeDisposition (HL7 discharge-disposition) -> discharge_disposition_id.
# home 1 Discharged to home, snf 3 to SNF, aadvice 7 Left AMA, exp 11 Expired, hosp (Hospice) 13
# Hospice / home (the UCI file splits hospice by place, 13 home and 14 medical facility; both are
# death-or-hospice, excluded alike; an EHR that knows the place sends the UCI code beside it),
# rehab 22 rehab facility, long 23 long term care hospital, psy 28 psychiatric hospital, other-hcf
# 30 another type of health care institution. alt-home and oth name no UCI code.
DISCHARGE_DISPOSITIONS: dict[str, int] = {
    "home": 1, "snf": 3, "aadvice": 7, "exp": 11, "hosp": 13, "rehab": 22, "long": 23, "psy": 28,
    "other-hcf": 30,
}

# The UCI ids (IDs_mapping.csv): the codes readmit's own systems accept.
UCI_ADMISSION_TYPES: frozenset[int] = frozenset(range(1, 9))
UCI_ADMISSION_SOURCES: frozenset[int] = frozenset({*range(1, 16), *range(17, 27)})
UCI_DISCHARGE_DISPOSITIONS: frozenset[int] = frozenset(range(1, 31))

# -- Patient ---------------------------------------------------------------------------------
# Patient.gender (HL7 administrative-gender) -> gender; other / unknown are missing (the UCI
# file's Unknown/Invalid is read as missing too).
GENDER: dict[str, str] = {"female": "Female", "male": "Male"}

# US Core race ombCategory (CDC Race & Ethnicity codes) -> race. UCI has five values; the two OMB
# categories it lacks are its Other, as is the detailed code 2131-1 Other Race; two or more
# distinct categories are Other too. Hispanic is an ethnicity in US Core (us-core-ethnicity
# ombCategory 2135-2 Hispanic or Latino): it gives UCI's Hispanic, whatever the race.
RACE: dict[str, str] = {
    "2106-3": "Caucasian",        # White
    "2054-5": "AfricanAmerican",  # Black or African American
    "2028-9": "Asian",            # Asian
    "1002-5": "Other",            # American Indian or Alaska Native
    "2076-8": "Other",            # Native Hawaiian or Other Pacific Islander
    "2131-1": "Other",            # Other Race (detailed)
}
HISPANIC = "2135-2"
RACE_UNKNOWN: frozenset[str] = frozenset({"UNK", "ASKU"})

# -- Observations ----------------------------------------------------------------------------
LOINC_HBA1C = "4548-4"    # Hemoglobin A1c/Hemoglobin.total in Blood, %
LOINC_GLUCOSE = "2345-7"  # Glucose [Mass/volume] in Serum or Plasma, mg/dL
# mmol/L of glucose -> mg/dL (molar mass of glucose 180.16 g/mol).
GLUCOSE_MG_DL_PER_MMOL_L = 18.016

# -- MedicationRequests ----------------------------------------------------------------------
# RxNorm ingredient (TTY IN) codes of the UCI drug columns. Each was looked up (2026-12-03,
# no network but a library of stored public files) for a code-name pair; RXCUI_CHECKS says what
# was found, docs/fhir_mapping.md shows it beside each code.
INGREDIENTS: dict[str, str] = {
    "6809": "metformin",
    "73044": "repaglinide",
    "274332": "nateglinide",
    "2404": "chlorpropamide",
    "25789": "glimepiride",
    "173": "acetohexamide",
    "4821": "glipizide",
    "4815": "glyburide",
    "10635": "tolbutamide",
    "33738": "pioglitazone",
    "84108": "rosiglitazone",
    "16681": "acarbose",
    "30009": "miglitol",
    "72610": "troglitazone",
    "10633": "tolazamide",
}
_CPIC = "named in cpicpgx/cpic-schema drug.sql (CPIC's RxNorm drug table)"
_DOMEO = ("named in domeo/DomeoClient src/org/mindinformatics/gwt/domeo/plugins/annotation/ddi/model/"
          "Mddi.java (its RxCUI table)")
_LISTED = ("not name-checked: found only in unnamed lists of antidiabetic RxNorm codes (an OHDSI "
           "type 2 diabetes cohort script, an OMOP study config)")
# How each code was checked: "verified" (a stored source pairs this code with this name) or
# "unverified" (not found with its name; kept as written, to be checked against RxNav).
RXCUI_CHECKS: dict[str, tuple[str, str]] = {
    "6809": ("verified", f"{_CPIC}; {_DOMEO}"),
    "4815": ("verified", f"{_CPIC} (as glibenclamide); {_DOMEO}"),
    "25789": ("verified", f"{_CPIC}; {_DOMEO}"),
    "4821": ("verified", f"{_CPIC}; {_DOMEO}"),
    "84108": ("verified", f"{_CPIC}; {_DOMEO}"),
    "2404": ("verified", _CPIC),
    "16681": ("verified", _DOMEO),
    "73044": ("verified", _DOMEO),
    "10635": ("verified", _DOMEO),
    "5856": ("verified", _DOMEO),
    "33738": ("verified", "named in one stored research script's RxCUI-to-name table (its repository unnamed "
                          "by the library); also in the antidiabetic lists"),
    "274332": ("unverified", _LISTED),
    "30009": ("unverified", _LISTED),
    "72610": ("unverified", _LISTED),
    "10633": ("unverified", _LISTED),
    "173": ("unverified", _LISTED),
    "253182": ("unverified", _LISTED),
    "274783": ("unverified", _LISTED),
    "86009": ("unverified", _LISTED),
    "51428": ("unverified", _LISTED),
    "139825": ("unverified", _LISTED),
    "400008": ("unverified", _LISTED),
    "1670007": ("unverified", _LISTED),
    "253181": ("unverified", "not found in the library"),
}
# Insulin ingredients: any of them (alone or mixed, e.g. 70/30) is the UCI insulin column.
INSULINS: dict[str, str] = {
    "5856": "insulin",
    "253182": "insulin regular, human",
    "253181": "insulin isophane, human (NPH)",
    "274783": "insulin glargine",
    "86009": "insulin lispro",
    "51428": "insulin aspart",
    "139825": "insulin detemir",
    "400008": "insulin glulisine",
    "1670007": "insulin degludec",
}
# The UCI combination columns: a request whose ingredients are exactly these two.
COMBINATIONS: dict[frozenset[str], str] = {
    frozenset({"glyburide", "metformin"}): "glyburide-metformin",
    frozenset({"glipizide", "metformin"}): "glipizide-metformin",
    frozenset({"glimepiride", "pioglitazone"}): "glimepiride-pioglitazone",
    frozenset({"metformin", "rosiglitazone"}): "metformin-rosiglitazone",
    frozenset({"metformin", "pioglitazone"}): "metformin-pioglitazone",
}
# UCI columns that are not drug names (``examide``, ``citoglipton``: artefacts of the UCI extract,
# "citoglipton" reads like a garbled "sitagliptin"; No in all 101,766 UCI rows): no RxNorm code
# maps to them, so from FHIR they are always No (a request of sitagliptin is another drug, as it
# is in the UCI data), and a model trained on UCI learns nothing from them.
NO_RXNORM_DRUGS: tuple[str, ...] = ("examide", "citoglipton")

# MedicationRequest.status values that are not a prescription (never given).
IGNORED_REQUEST_STATUSES: frozenset[str] = frozenset({"entered-in-error", "cancelled", "draft"})
# Encounter.status values of a stay that did not happen (left out of the history).
IGNORED_ENCOUNTER_STATUSES: frozenset[str] = frozenset({"entered-in-error", "cancelled", "planned"})
