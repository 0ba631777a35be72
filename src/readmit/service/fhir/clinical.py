"""Conditions -> ``diag_1..3`` and ``number_diagnoses``; Observations -> ``A1Cresult`` and ``max_glu_serum``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from readmit.service.fhir import valuesets as vs
from readmit.service.fhir.contract import FhirRefused
from readmit.service.fhir.parse import bundle_entries, check_reference, codings, day, reference_id

ICD_SYSTEMS: dict[str, str] = {vs.ICD10CM: "icd10", vs.ICD9CM: "icd9"}
DIAGNOSIS_COLUMNS = ("diag_1", "diag_2", "diag_3")
_SKIPPED_VERIFICATION = frozenset({"entered-in-error", "refuted"})


def diagnosis_columns(data: Any, encounter: Any, context: tuple[str, str], record: dict[str, Any],
                      missing: Any) -> None:
    """diag_1..3 (the ICD codes of the first three diagnoses by Encounter.diagnosis rank),
    number_diagnoses (all of them) and diag_code_system."""
    if data is None:
        for column in (*DIAGNOSIS_COLUMNS, "number_diagnoses"):
            missing.add(column, "the encounter's Conditions were not had")
        return
    conditions = _conditions(data, context)
    ranked = _ranked(encounter)
    named = {cid for cid, _ in ranked}
    order = [*ranked, *((cid, None) for cid in conditions if cid not in named)]
    record["number_diagnoses"] = len(order)
    first = [(cid, conditions.get(cid)) for cid, _ in order[:3]]
    system = _system(first)
    for k, column in enumerate(DIAGNOSIS_COLUMNS):
        if k >= len(first):
            missing.add(column, f"the encounter has {len(first)} diagnoses")
        elif first[k][1] is None:
            missing.add(column, f"the diagnosis of rank {k + 1} is not in prefetch.conditions")
        else:
            record[column] = first[k][1][1][system]
    record["diag_code_system"] = ICD_SYSTEMS.get(system)


def _conditions(data: Any, context: tuple[str, str]) -> dict[str, tuple[str, dict[str, str]]]:
    """Condition id -> (path, {ICD system: code}) of the bundle's Conditions, in bundle order."""
    patient_id, encounter_id = context
    out = {}
    for entry in bundle_entries(data, "Condition", "prefetch.conditions"):
        condition = entry.resource
        check_reference(condition.subject, "Patient", patient_id, f"{entry.path}.subject", "patient")
        check_reference(condition.encounter, "Encounter", encounter_id, f"{entry.path}.encounter", "encounter",
                        required=False)
        status = codings(condition.verificationStatus)
        if any(c.code in _SKIPPED_VERIFICATION for c in status):
            continue
        icd = {c.system: c.code for c in codings(condition.code) if c.system in ICD_SYSTEMS and c.code}
        if not icd:
            raise FhirRefused(f"{entry.path}.code.coding", "no ICD-10-CM or ICD-9-CM coding "
                              f"({vs.ICD10CM} or {vs.ICD9CM})")
        if condition.id is None:
            raise FhirRefused(f"{entry.path}.id", "absent: a Condition needs its id")
        out[condition.id] = (entry.path, icd)
    return out


def _ranked(encounter: Any) -> list[tuple[str, Any]]:
    """The Conditions Encounter.diagnosis names, by rank (unranked last, in their order)."""
    named = []
    for i, diagnosis in enumerate(encounter.diagnosis or []):
        cid = reference_id(diagnosis.condition, "Condition")
        if cid is None:
            raise FhirRefused(f"prefetch.encounter.diagnosis[{i}].condition.reference",
                              "not a reference to a Condition (Condition/id)")
        named.append((diagnosis.rank if diagnosis.rank is not None else float("inf"), i, cid))
    return [(cid, rank) for rank, _, cid in sorted(named)]


def _system(first: list[tuple[str, Any]]) -> str | None:
    """The one ICD system every one of the first three diagnoses has (ICD-10-CM first)."""
    present = [found for _, found in first if found is not None]  # (path, {system: code})
    if not present:
        return None
    for system in ICD_SYSTEMS:
        if all(system in icd for _, icd in present):
            return system
    path = next((p for p, icd in present if not set(icd) & set(present[0][1])), present[-1][0])
    raise FhirRefused(f"{path}.code.coding", "the encounter's first diagnoses mix ICD-10-CM and ICD-9-CM "
                      "codes: one row holds one system (diag_code_system)")


# -- Observations ----------------------------------------------------------------------------
# band thresholds, highest first: value > threshold -> band (UCI: ">8" above 8 %, ">7" above 7 %)
A1C_BANDS: tuple[tuple[Decimal, str], ...] = ((Decimal(8), ">8"), (Decimal(7), ">7"))
GLUCOSE_BANDS: tuple[tuple[Decimal, str], ...] = ((Decimal(300), ">300"), (Decimal(200), ">200"))
BAND_ORDER: dict[str, int] = {"Norm": 1, ">7": 2, ">8": 3, ">200": 2, ">300": 3}
_SKIPPED_STATUS = frozenset({"cancelled", "entered-in-error"})


def observation_columns(data: Any, context: tuple[str, str], stay: tuple[Any, Any], record: dict[str, Any],
                        missing: Any) -> None:
    """A1Cresult and max_glu_serum: the highest band of the encounter's results, None if none."""
    if data is None:
        for column in ("A1Cresult", "max_glu_serum"):
            missing.add(column, "the HbA1c and glucose Observations were not had")
        return
    found: dict[str, list[str | None]] = {"A1Cresult": [], "max_glu_serum": []}
    for entry in bundle_entries(data, "Observation", "prefetch.observations"):
        reading = _reading(entry, context, stay)
        if reading is not None:
            found[reading[0]].append(reading[1])
    for column, bands in found.items():
        if None in bands:
            missing.add(column, "a result's comparator (< or >) leaves its band open")
        elif bands:
            record[column] = max(bands, key=BAND_ORDER.__getitem__)
        else:
            record[column] = "None"  # not measured during the stay: UCI's own category


def _reading(entry: Any, context: tuple[str, str], stay: tuple[Any, Any]) -> tuple[str, str | None] | None:
    """(column, band) of one Observation of this stay; None when it is not one readmit reads."""
    patient_id, encounter_id = context
    obs, path = entry.resource, entry.path
    check_reference(obs.subject, "Patient", patient_id, f"{path}.subject", "patient")
    if obs.status in _SKIPPED_STATUS:
        return None
    loinc = [c.code for c in codings(obs.code) if c.system == vs.LOINC]
    if not loinc:
        raise FhirRefused(f"{path}.code.coding", f"no LOINC coding ({vs.LOINC})")
    column = "A1Cresult" if vs.LOINC_HBA1C in loinc else "max_glu_serum" if vs.LOINC_GLUCOSE in loinc else None
    if column is None or not _during(obs, path, encounter_id, stay) or obs.valueQuantity is None:
        return None
    value = _value(obs.valueQuantity, column, f"{path}.valueQuantity")
    bands = A1C_BANDS if column == "A1Cresult" else GLUCOSE_BANDS
    return column, _band(value, obs.valueQuantity.comparator, bands)


def _during(obs: Any, path: str, encounter_id: str, stay: tuple[Any, Any]) -> bool:
    """Whether the result belongs to this stay: its encounter, else its time within the period."""
    if obs.encounter is not None:
        return reference_id(obs.encounter, "Encounter") == encounter_id
    when = obs.effectiveDateTime or (obs.effectivePeriod.start if obs.effectivePeriod else None) or obs.issued
    if when is None:
        raise FhirRefused(f"{path}.effectiveDateTime", "absent, with no encounter: the result cannot be placed")
    taken = day(when, f"{path}.effectiveDateTime")
    admitted, discharged = stay
    return day(admitted, "") <= taken and (discharged is None or taken <= day(discharged, ""))


def _value(quantity: Any, column: str, path: str) -> Decimal:
    unit = quantity.code or quantity.unit
    if quantity.value is None:
        raise FhirRefused(f"{path}.value", "absent")
    value = Decimal(quantity.value)
    if column == "A1Cresult" and unit == "%":
        return value
    if column == "max_glu_serum" and unit == "mg/dL":
        return value
    if column == "max_glu_serum" and unit == "mmol/L":
        return value * Decimal(str(vs.GLUCOSE_MG_DL_PER_MMOL_L))
    wanted = "%" if column == "A1Cresult" else "mg/dL or mmol/L"
    raise FhirRefused(f"{path}.code", f"unit must be {wanted} (UCUM)")


def _band(value: Decimal, comparator: str | None, bands: tuple[tuple[Decimal, str], ...]) -> str | None:
    """The UCI band of a value; with a comparator only when every value it allows is in one band."""
    band = next((name for threshold, name in bands if value > threshold), "Norm")
    if comparator in (None, ""):
        return band
    top, lowest = bands[0][1], "Norm"
    if comparator in (">", ">=") and (band == top or (comparator == ">" and value >= bands[0][0])):
        return top
    if comparator in ("<", "<=") and band == lowest:
        return lowest
    return None
