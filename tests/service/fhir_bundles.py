"""Test-only: FHIR R4 resources made from UCI rows, the inverse of readmit's mapping (docs/fhir_mapping.md).

``prefetch_for(row, earlier)`` gives the CDS Hooks prefetch of one encounter in the raw input
contract (RAW_SCHEMA columns typed, None for missing, ``snapshot_date`` the discharge day): the
Patient, the Encounter, its Conditions, MedicationRequests and Observations, and the patient's
Encounters (this one and ``earlier``). Mapping it back gives the row again for every column the
mapping covers.

How each UCI value is written, the way an EHR would:

- ids: ``Patient/<patient_nbr>``, ``Encounter/<encounter_id>``; the stay is
  ``snapshot_date - time_in_hospital`` .. ``snapshot_date`` (days); the birth date is the middle
  of the age band before the admission;
- UCI codes with a standard concept as that standard code only (ActPriority, admit-source,
  discharge-disposition), the others as readmit's UCI coding only, so both paths are exercised;
- ``number_diagnoses`` Encounter.diagnosis entries by rank: diag_1..3 Conditions with their ICD-9-CM
  code (a missing one is a rank whose Condition the bundle lacks), the others filler Conditions;
- a drug ``Steady``: one request; ``Up``/``Down``: a stopped request replaced (priorPrescription) by
  one of a higher/lower dose; ``change`` ``Ch`` with no Up/Down: a present drug's request replaces
  a stopped request of another diabetes drug; ``num_medications`` minus the diabetes drugs: filler
  requests of other drugs (placeholder RxNorm codes 9000000+, not real concepts);
- A1C and glucose bands: one result inside the band, on the encounter's first day;
- the columns without a standard element (counts, payer, specialty, weight): readmit's Encounter
  extensions (valuesets.uci_extension); ``extensions=False`` leaves them out.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from readmit.data.schema import DRUG_COLUMNS
from readmit.service.fhir import valuesets as vs

FILLER_ICD9 = "V49.89"  # "other specified conditions influencing health status"
DOSES = {"Steady": (500, 500), "Up": (500, 1000), "Down": (1000, 500)}
A1C_VALUES = {">8": 9.2, ">7": 7.6, "Norm": 5.8}
GLUCOSE_VALUES = {">300": 340, ">200": 250, "Norm": 120}
RACE_CODES = {"Caucasian": "2106-3", "AfricanAmerican": "2054-5", "Asian": "2028-9"}


def _inverse(table: dict[str, int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for code, uci in table.items():
        out.setdefault(uci, code)
    return out


ADMISSION_TYPE_CODES = _inverse(vs.ADMISSION_TYPE)
ADMISSION_SOURCE_CODES = _inverse(vs.ADMISSION_SOURCE)
DISCHARGE_CODES = _inverse(vs.DISCHARGE_DISPOSITIONS)
DRUG_CODES: dict[str, list[str]] = {name: [code] for code, name in vs.INGREDIENTS.items()}
DRUG_CODES["insulin"] = ["274783"]
for _pair, _column in vs.COMBINATIONS.items():
    DRUG_CODES[_column] = [next(c for c, n in vs.INGREDIENTS.items() if n == part) for part in sorted(_pair)]


def day_of(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def stay(row: dict[str, Any]) -> tuple[dt.date, dt.date]:
    """(admission day, discharge day) of a row."""
    end = day_of(row["snapshot_date"])
    return end - dt.timedelta(days=int(row["time_in_hospital"])), end


def ref(kind: str, rid: Any) -> dict[str, str]:
    return {"reference": f"{kind}/{rid}"}


def concept(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A searchset Bundle of ``resources``."""
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"urn:uuid:{r['resourceType']}-{r['id']}", "resource": r,
                       "search": {"mode": "match"}} for r in resources]}


def coded(value: int | None, column: str, standard: str, inverse: dict[int, str]) -> dict[str, Any] | None:
    if value is None:
        return None
    if value in inverse:
        return concept(standard, inverse[value])
    return concept(vs.uci_system(column), str(value))


def patient(row: dict[str, Any]) -> dict[str, Any]:
    """The Patient: gender, US Core race / ethnicity, a birth date in the age band at admission."""
    out: dict[str, Any] = {"resourceType": "Patient", "id": str(row["patient_nbr"]),
                           "gender": {"Female": "female", "Male": "male"}.get(row["gender"], "unknown")}
    if row["age"] is not None:
        low = int(row["age"].strip("[").split("-")[0])
        admitted = stay(row)[0]
        born = admitted.replace(year=admitted.year - low - 5, day=min(admitted.day, 28))
        out["birthDate"] = born.isoformat()
    race = row["race"]
    if race == "Hispanic":
        out["extension"] = [{"url": vs.US_CORE_ETHNICITY, "extension": [
            {"url": "ombCategory", "valueCoding": {"system": vs.OMB_RACE, "code": vs.HISPANIC}}]}]
    else:
        part = ({"url": "ombCategory", "valueCoding": {"system": vs.OMB_RACE, "code": RACE_CODES[race]}}
                if race in RACE_CODES else
                {"url": "detailed", "valueCoding": {"system": vs.OMB_RACE, "code": "2131-1"}} if race == "Other"
                else {"url": "ombCategory", "valueCoding": {"system": vs.NULL_FLAVOR, "code": "UNK"}})
        out["extension"] = [{"url": vs.US_CORE_RACE, "extension": [part, {"url": "text", "valueString": "x"}]}]
    return out


def encounter(row: dict[str, Any], *, diagnoses: list[dict[str, Any]] | None = None,
              extensions: bool = False) -> dict[str, Any]:
    """The Encounter: inpatient, finished, its period, priority, admit source, disposition."""
    admitted, discharged = stay(row)
    out: dict[str, Any] = {
        "resourceType": "Encounter", "id": str(row["encounter_id"]), "status": "finished",
        "class": {"system": vs.ACT_CODE, "code": "IMP"}, "subject": ref("Patient", row["patient_nbr"]),
        "period": {"start": admitted.isoformat(), "end": discharged.isoformat()},
    }
    priority = coded(row["admission_type_id"], "admission_type_id", vs.ACT_PRIORITY, ADMISSION_TYPE_CODES)
    if priority:
        out["priority"] = priority
    hospitalization = {}
    source = coded(row["admission_source_id"], "admission_source_id", vs.ADMIT_SOURCE, ADMISSION_SOURCE_CODES)
    if source:
        hospitalization["admitSource"] = source
    disposition = coded(row["discharge_disposition_id"], "discharge_disposition_id", vs.DISCHARGE_DISPOSITION,
                        DISCHARGE_CODES)
    if disposition:
        hospitalization["dischargeDisposition"] = disposition
    if hospitalization:
        out["hospitalization"] = hospitalization
    if diagnoses:
        out["diagnosis"] = diagnoses
    carried = [{"url": vs.uci_extension(c), "valueInteger": row[c]} for c in vs.EXTENSION_INTEGERS
               if row.get(c) is not None]
    carried += [{"url": vs.uci_extension(c), "valueString": row[c]} for c in vs.EXTENSION_STRINGS
                   if row.get(c) is not None]
    if extensions and carried:
        out["extension"] = carried
    return out


def conditions(row: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(Encounter.diagnosis entries, Condition resources) of the row's diagnoses."""
    eid, pid = row["encounter_id"], row["patient_nbr"]
    entries, resources = [], []
    for rank in range(1, (row["number_diagnoses"] or 0) + 1):
        cid = f"{eid}-dx{rank}"
        entries.append({"condition": ref("Condition", cid), "rank": rank})
        code = row[f"diag_{rank}"] if rank <= 3 else FILLER_ICD9
        if code is None:
            continue  # named by the Encounter, absent from the bundle: a missing diag_k
        resources.append({"resourceType": "Condition", "id": cid, "subject": ref("Patient", pid),
                          "encounter": ref("Encounter", eid),
                          "category": [concept("http://terminology.hl7.org/CodeSystem/condition-category",
                                               "encounter-diagnosis")],
                          "code": concept(vs.ICD9CM, code)})
    return entries, resources


def _request(row: dict[str, Any], rid: str, codes: list[str], dose: int | None, status: str = "active",
             prior: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
        "subject": ref("Patient", row["patient_nbr"]), "encounter": ref("Encounter", row["encounter_id"]),
        "medicationCodeableConcept": {"coding": [{"system": vs.RXNORM, "code": c} for c in codes]},
    }
    if dose is not None:
        out["dosageInstruction"] = [{"doseAndRate": [{"doseQuantity": {
            "value": dose, "unit": "mg", "system": vs.UCUM, "code": "mg"}}]}]
    if prior:
        out["priorPrescription"] = ref("MedicationRequest", prior)
    return out


def medications(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The MedicationRequests of the row's drug columns, its change flag and num_medications."""
    eid = row["encounter_id"]
    out, finals = [], []
    for drug in DRUG_COLUMNS:
        state = row[drug]
        if state == "No":
            continue
        first, last = DOSES[state]
        rid = f"{eid}-{drug}"
        if state == "Steady":
            finals.append(_request(row, rid, DRUG_CODES[drug], first))
        else:
            out.append(_request(row, f"{rid}-0", DRUG_CODES[drug], first, status="stopped"))
            finals.append(_request(row, rid, DRUG_CODES[drug], last, prior=f"{rid}-0"))
    changed = any(row[d] in ("Up", "Down") for d in DRUG_COLUMNS)
    if row["change"] == "Ch" and not changed:
        other = next(d for d in DRUG_COLUMNS if row[d] == "No" and d in DRUG_CODES)
        out.append(_request(row, f"{eid}-switched", DRUG_CODES[other], 250, status="stopped"))
        finals[0]["priorPrescription"] = ref("MedicationRequest", f"{eid}-switched")
    fillers = (row["num_medications"] or 0) - len(finals)
    finals += [_request(row, f"{eid}-other{i}", [str(9_000_000 + i)], None) for i in range(fillers)]
    return out + finals


def observations(row: dict[str, Any]) -> list[dict[str, Any]]:
    """One HbA1c and one glucose result in the row's bands (none for ``None``, not measured)."""
    out = []
    admitted = stay(row)[0]
    for column, loinc, values, unit in (("A1Cresult", vs.LOINC_HBA1C, A1C_VALUES, "%"),
                                        ("max_glu_serum", vs.LOINC_GLUCOSE, GLUCOSE_VALUES, "mg/dL")):
        if row[column] in values:
            out.append({"resourceType": "Observation", "id": f"{row['encounter_id']}-{loinc}", "status": "final",
                        "code": concept(vs.LOINC, loinc), "subject": ref("Patient", row["patient_nbr"]),
                        "effectiveDateTime": f"{admitted.isoformat()}T09:30:00+00:00",
                        "valueQuantity": {"value": values[row[column]], "unit": unit, "system": vs.UCUM,
                                          "code": unit}})
    return out


def prefetch_for(row: dict[str, Any], earlier: list[dict[str, Any]], *, extensions: bool = True) -> dict[str, Any]:
    """The CDS Hooks prefetch of ``row``'s encounter (PREFETCH_TEMPLATES keys); ``earlier``: the
    patient's earlier rows (at least HISTORY_INPUT_COLUMNS), whose Encounters join this one's.
    ``extensions``: carry the columns without a standard element as readmit's extensions."""
    entries, condition_resources = conditions(row)
    history = [encounter({**r, "admission_source_id": None, "discharge_disposition_id": None}) for r in earlier]
    return {
        "patient": patient(row),
        "encounter": encounter(row, diagnoses=entries, extensions=extensions),
        "conditions": bundle(condition_resources),
        "medications": bundle(medications(row)),
        "observations": bundle(observations(row)),
        "encounters": bundle([encounter(row), *history]),
    }


def context_of(row: dict[str, Any]) -> dict[str, str]:
    """The CDS Hooks context of the row's encounter-discharge hook."""
    return {"patientId": str(row["patient_nbr"]), "encounterId": str(row["encounter_id"]), "userId": "Practitioner/1"}
