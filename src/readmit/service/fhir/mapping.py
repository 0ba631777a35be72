"""FHIR R4 resources of one encounter -> one row of readmit's raw input contract (docs/fhir_mapping.md).

The Patient and the Encounter give the demographics, the UCI id codes, the dates and the stay's
length; the Conditions, MedicationRequests and Observations their columns
(:mod:`readmit.service.fhir.clinical`, :mod:`readmit.service.fhir.medications`); the patient's
other Encounters the point-in-time history. Every value that cannot be read is either a refusal
naming its path (a resource that is wrong) or a missing field saying why (data that is absent
or names nothing readmit knows); none is guessed.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime
from typing import Any, Literal

from readmit.data.schema import AGES, RAW_SCHEMA, SNAPSHOT_COLUMN
from readmit.service.fhir import valuesets as vs
from readmit.service.fhir.clinical import diagnosis_columns, observation_columns
from readmit.service.fhir.contract import FhirRefused, MappedEncounter, NotInpatient
from readmit.service.fhir.medications import medication_columns
from readmit.service.fhir.parse import (
    HISTORY_ELEMENTS,
    bundle_entries,
    check_reference,
    codings,
    comes_before,
    day,
    integer_id,
    parse,
)

# Contract columns no standard element of the prefetched resources carries, and why they are
# missing when readmit's Encounter extension for them (valuesets.uci_extension) is absent.
NOT_IN_FHIR: dict[str, str] = {
    "weight": "no body weight Observation is prefetched",
    "payer_code": "no Coverage is prefetched",
    "medical_specialty": "the admitting physician's specialty is not in the prefetch",
    "num_lab_procedures": "lab tests other than HbA1c and glucose are not prefetched",
    "num_procedures": "no Procedure is prefetched",
    "number_outpatient": "visits of the year before are not counted from FHIR",
    "number_emergency": "visits of the year before are not counted from FHIR",
    "number_inpatient": "visits of the year before are not counted from FHIR",
}
_EXTENSION_WHY = " (nor sent as readmit's Encounter extension)"
RECORD_COLUMNS: tuple[str, ...] = (*(c for c in RAW_SCHEMA if c != "readmitted"), SNAPSHOT_COLUMN,
                                   "diag_code_system")


class Missing:
    """The contract fields left None, each with why, in contract order."""

    def __init__(self) -> None:
        self.why: dict[str, str] = {}

    def add(self, column: str, why: str) -> None:
        self.why.setdefault(column, why)

    def listed(self, record: dict[str, Any]) -> list[str]:
        for column in RECORD_COLUMNS:
            if record.get(column) is None and column != "diag_code_system":
                self.add(column, "not given by the resources")
        order = {c: i for i, c in enumerate(RECORD_COLUMNS)}
        return [f"{c}: {w}" for c, w in sorted(self.why.items(), key=lambda kv: order.get(kv[0], len(order)))]


def map_prefetch(prefetch: dict[str, Any], patient_id: str, encounter_id: str, *,
                 discharged_at: date | datetime | None = None,
                 history_until: Literal["admission", "discharge"] = "admission") -> MappedEncounter:
    """The encounter ``encounter_id`` of patient ``patient_id`` as a raw contract row.

    ``prefetch``: the CDS Hooks prefetch after :func:`complete_prefetch` (keys of
    PREFETCH_TEMPLATES; a key absent or None is data not had: its fields become missing, but
    ``patient`` and ``encounter`` are required). Raises FhirRefused (with the field path, e.g.
    ``prefetch.conditions.entry[2].resource.subject``) for a resource of the wrong type or of
    another patient, a malformed resource, or a code of a system the mapping does not know;
    NotInpatient (a FhirRefused) for an encounter that is not an inpatient stay.
    ``discharged_at``: the discharge time when the Encounter has no ``period.end`` yet (the
    encounter-discharge hook may fire before the EHR writes it); ignored when it has one.
    ``history_until``: ``admission`` (the default) keeps the earlier stays that ended before this
    one began; ``discharge`` those that ended by its discharge day, gold's date rule (a stay that
    ended during this one counts: only synthetic dates make such overlaps).
    """
    if not isinstance(prefetch, dict):
        raise FhirRefused("prefetch", "expected a JSON object of prefetch keys")
    for key in ("patient", "encounter"):
        if prefetch.get(key) is None:
            raise FhirRefused(f"prefetch.{key}", "absent: the Patient and the Encounter are required")
    missing = Missing()
    record: dict[str, Any] = dict.fromkeys(RECORD_COLUMNS)
    encounter = parse(prefetch["encounter"], "Encounter", "prefetch.encounter")
    stay = _encounter_columns(encounter, patient_id, encounter_id, discharged_at, record, missing)
    _extension_columns(encounter, record)
    for column, why in NOT_IN_FHIR.items():
        if record[column] is None:
            missing.add(column, why + _EXTENSION_WHY)
    patient = parse(prefetch["patient"], "Patient", "prefetch.patient")
    _patient_columns(patient, patient_id, stay[0], record, missing)
    context = (patient_id, encounter_id)
    diagnosis_columns(prefetch.get("conditions"), encounter, context, record, missing)
    medication_columns(prefetch.get("medications"), context, record, missing)
    observation_columns(prefetch.get("observations"), context, stay, record, missing)
    if history_until not in ("admission", "discharge"):
        raise ValueError(f"history_until must be admission or discharge, not {history_until!r}")
    until = stay[1] if history_until == "discharge" and stay[1] is not None else stay[0]
    earlier = earlier_stays(prefetch.get("encounters"), patient_id, encounter_id, until)
    return MappedEncounter(record=record, earlier=earlier, missing=missing.listed(record))


# -- Patient ---------------------------------------------------------------------------------


def _patient_columns(patient: Any, patient_id: str, admitted: Any, record: dict[str, Any],
                     missing: Missing) -> None:
    if patient.id != patient_id:
        raise FhirRefused("prefetch.patient.id", "is not the hook context's patientId")
    record["patient_nbr"] = integer_id("Patient", patient.id)
    record["gender"] = vs.GENDER.get(patient.gender or "")
    if record["gender"] is None:
        missing.add("gender", f"Patient.gender is {patient.gender or 'absent'}")
    record["race"] = _race(patient, missing)
    record["age"] = _age_band(patient.birthDate, day(admitted, "prefetch.encounter.period.start"), missing)


def _race(patient: Any, missing: Missing) -> str | None:
    """UCI race from the US Core race and ethnicity extensions (valuesets.RACE)."""
    base = "prefetch.patient.extension"
    races: set[str] = set()
    hispanic = False
    unknown = False
    for i, ext in enumerate(patient.extension or []):
        if ext.url not in (vs.US_CORE_RACE, vs.US_CORE_ETHNICITY):
            continue
        for j, part in enumerate(ext.extension or []):
            if part.url not in ("ombCategory", "detailed") or part.valueCoding is None:
                continue
            coding, where = part.valueCoding, f"{base}[{i}].extension[{j}].valueCoding"
            if coding.system == vs.NULL_FLAVOR and coding.code in vs.RACE_UNKNOWN:
                unknown = True
            elif coding.system != vs.OMB_RACE:
                raise FhirRefused(f"{where}.system", f"not the CDC race and ethnicity system ({vs.OMB_RACE})")
            elif ext.url == vs.US_CORE_ETHNICITY:
                hispanic = hispanic or coding.code == vs.HISPANIC
            elif coding.code in vs.RACE:
                races.add(vs.RACE[coding.code])
            elif part.url == "ombCategory":
                raise FhirRefused(f"{where}.code", "not a US Core ombCategory race code")
    if hispanic:
        return "Hispanic"
    if races:
        return races.pop() if len(races) == 1 else "Other"
    missing.add("race", "unknown (asked, unknown or declined)" if unknown else "no US Core race extension")
    return None


def _age_band(birth: Any, admitted: date, missing: Missing) -> str | None:
    """The UCI age band of the age at admission; a partial birth date only when both ends agree."""
    if birth is None:
        missing.add("age", "Patient.birthDate absent")
        return None
    if isinstance(birth, date):
        earliest = latest = birth
    else:  # "YYYY" or "YYYY-MM": the first and the last day it may be
        year, _, month = str(birth).partition("-")
        first_month, last_month = (int(month), int(month)) if month else (1, 12)
        earliest = date(int(year), first_month, 1)
        latest = date(int(year), last_month, calendar.monthrange(int(year), last_month)[1])
    bands = {_band(_years(b, admitted)) for b in (earliest, latest)}
    if len(bands) != 1 or None in bands:
        missing.add("age", "the birth date gives no single age band at admission (partial, or 100 or over)")
        return None
    return bands.pop()


def _years(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _band(years: int) -> str | None:
    return AGES[years // 10] if 0 <= years < 100 else None


# -- Encounter -------------------------------------------------------------------------------


def _encounter_columns(encounter: Any, patient_id: str, encounter_id: str, discharged_at: Any,
                       record: dict[str, Any], missing: Missing) -> tuple[Any, Any]:
    """The Encounter's columns; returns (admitted, discharged) as FHIR gives them (end may be None)."""
    path = "prefetch.encounter"
    if encounter.id != encounter_id:
        raise FhirRefused(f"{path}.id", "is not the hook context's encounterId")
    check_reference(encounter.subject, "Patient", patient_id, f"{path}.subject", "patient")
    if encounter.status in vs.IGNORED_ENCOUNTER_STATUSES:
        raise FhirRefused(f"{path}.status", f"an encounter that is {encounter.status} has nothing to score")
    check_inpatient(encounter, path)
    record["encounter_id"] = integer_id("Encounter", encounter.id)
    admitted, discharged = _period(encounter, path)
    if discharged is None and discharged_at is not None:
        discharged = discharged_at
    if discharged is None:
        missing.add("time_in_hospital", "Encounter.period.end absent (not discharged yet)")
        missing.add(SNAPSHOT_COLUMN, "Encounter.period.end absent (not discharged yet)")
    else:
        record["time_in_hospital"] = (day(discharged, f"{path}.period.end") - day(admitted, f"{path}.period.start")).days
        record[SNAPSHOT_COLUMN] = day(discharged, f"{path}.period.end").isoformat()
    for column, value in encounter_codes(encounter, path, missing).items():
        record[column] = value
    return admitted, discharged


def _extension_columns(encounter: Any, record: dict[str, Any]) -> None:
    """The UCI columns without a standard element, from readmit's Encounter extensions."""
    wanted = {vs.uci_extension(c): c for c in (*vs.EXTENSION_INTEGERS, *vs.EXTENSION_STRINGS)}
    for i, ext in enumerate(encounter.extension or []):
        column = wanted.get(ext.url)
        if column is None:
            continue
        path = f"prefetch.encounter.extension[{i}]"
        if column in vs.EXTENSION_INTEGERS:
            if ext.valueInteger is None:
                raise FhirRefused(f"{path}.valueInteger", f"readmit's {column} extension needs a valueInteger")
            record[column] = ext.valueInteger
        else:
            if ext.valueString is None:
                raise FhirRefused(f"{path}.valueString", f"readmit's {column} extension needs a valueString")
            record[column] = ext.valueString


def check_inpatient(encounter: Any, path: str) -> None:
    """Refuse an encounter that is not an inpatient stay (the model's intended use)."""
    cls = encounter.class_fhir
    if cls.system is not None and cls.system != vs.ACT_CODE:
        raise FhirRefused(f"{path}.class.system", f"not the v3 ActCode system ({vs.ACT_CODE})")
    if cls.code not in vs.INPATIENT_CLASSES:
        raise NotInpatient(f"{path}.class.code",
                           f"readmit scores inpatient stays (class {', '.join(sorted(vs.INPATIENT_CLASSES))})")


def _period(encounter: Any, path: str) -> tuple[Any, Any]:
    period = encounter.period
    if period is None or period.start is None:
        raise FhirRefused(f"{path}.period.start", "absent: an inpatient stay needs its admission date")
    day(period.start, f"{path}.period.start")
    if period.end is not None:
        day(period.end, f"{path}.period.end")
        if not comes_before(period.start, period.end):
            raise FhirRefused(f"{path}.period.end", "is before period.start")
    return period.start, period.end


def encounter_codes(encounter: Any, path: str, missing: Missing | None) -> dict[str, int | None]:
    """admission_type_id, admission_source_id, discharge_disposition_id from the Encounter's codes."""
    stay = encounter.hospitalization
    return {
        "admission_type_id": uci_code(encounter.priority, f"{path}.priority", "admission_type_id",
                                      vs.ACT_PRIORITY, vs.ADMISSION_TYPE, vs.UCI_ADMISSION_TYPES, missing),
        "admission_source_id": uci_code(stay.admitSource if stay else None, f"{path}.hospitalization.admitSource",
                                        "admission_source_id", vs.ADMIT_SOURCE, vs.ADMISSION_SOURCE,
                                        vs.UCI_ADMISSION_SOURCES, missing),
        "discharge_disposition_id": uci_code(stay.dischargeDisposition if stay else None,
                                             f"{path}.hospitalization.dischargeDisposition",
                                             "discharge_disposition_id", vs.DISCHARGE_DISPOSITION,
                                             vs.DISCHARGE_DISPOSITIONS, vs.UCI_DISCHARGE_DISPOSITIONS, missing),
    }


def uci_code(concept: Any, path: str, column: str, standard: str, table: dict[str, int],
             uci_codes: frozenset[int], missing: Missing | None) -> int | None:
    """A UCI id from a CodeableConcept: readmit's UCI coding when present, else the standard
    code through its table; an unknown system is refused, an unmapped standard code missing."""
    found = codings(concept)
    for i, coding in enumerate(found):
        if coding.system == vs.uci_system(column):
            code = coding.code or ""
            if not code.isdigit() or int(code) not in uci_codes:
                raise FhirRefused(f"{path}.coding[{i}].code", f"not a UCI {column} code (IDs_mapping.csv)")
            return int(code)
    for coding in found:
        if coding.system == standard:
            if coding.code in table:
                return table[coding.code]
            _note(missing, column, f"{standard} code {coding.code!r} names no UCI code")
            return None
    if found:
        raise FhirRefused(f"{path}.coding", f"no coding of {standard} or {vs.uci_system(column)}")
    _note(missing, column, f"{path.removeprefix('prefetch.encounter.')} absent")
    return None


def _note(missing: Missing | None, column: str, why: str) -> None:
    if missing is not None:
        missing.add(column, why)


# -- earlier Encounters ----------------------------------------------------------------------


def earlier_stays(data: Any, patient_id: str, encounter_id: str, until: Any) -> list[dict[str, Any]]:
    """HISTORY_INPUT_COLUMNS rows of the patient's other inpatient stays (finished, with an end)
    that ended by ``until`` (this stay's admission, or its discharge), oldest first."""
    if data is None:  # not had: no earlier stay from FHIR (the service's history store may know them)
        return []
    rows = []
    for entry in bundle_entries(data, "Encounter", "prefetch.encounters", HISTORY_ELEMENTS):
        other = entry.resource
        check_reference(other.subject, "Patient", patient_id, f"{entry.path}.subject", "patient")
        if other.id == encounter_id or other.status in vs.IGNORED_ENCOUNTER_STATUSES:
            continue
        if other.class_fhir.code not in vs.INPATIENT_CLASSES or other.period is None:
            continue
        start, end = other.period.start, other.period.end
        if start is None or end is None:
            continue
        day(start, f"{entry.path}.period.start")
        day(end, f"{entry.path}.period.end")
        if not comes_before(end, until):
            continue
        admission_type = uci_code(other.priority, f"{entry.path}.priority", "admission_type_id", vs.ACT_PRIORITY,
                                  vs.ADMISSION_TYPE, vs.UCI_ADMISSION_TYPES, None)
        rows.append({
            "encounter_id": integer_id("Encounter", other.id),
            "patient_nbr": integer_id("Patient", patient_id),
            SNAPSHOT_COLUMN: day(end, f"{entry.path}.period.end").isoformat(),
            "time_in_hospital": (day(end, f"{entry.path}.period.end") - day(start, f"{entry.path}.period.start")).days,
            "admission_type_id": admission_type,
        })
    return sorted(rows, key=lambda r: (r[SNAPSHOT_COLUMN], r["encounter_id"]))
