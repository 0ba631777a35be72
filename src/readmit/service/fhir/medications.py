"""MedicationRequests -> the 23 UCI drug columns, ``change``, ``diabetesMed`` and ``num_medications``.

A request's drug is the set of its RxNorm ingredient (IN) codings (valuesets.INGREDIENTS,
INSULINS, COMBINATIONS). The dose history is the requests' own ``priorPrescription`` chain (the
order a request replaces, FHIR's way of changing a dose or a drug):

- a request some other request replaces is not final; the final requests are what the patient
  takes at the end of the stay; a drug column is ``No`` when no final request is of it;
- a final request replacing an order the prefetch does not hold leaves its column missing;
- a final request whose chain goes back to a request of the same drug compares its first
  ``doseQuantity`` with the chain's first request of that drug: ``Up``, ``Down`` or ``Steady``
  (doses in different units, or absent, leave the column missing); no such prior: ``Steady``;
- ``change`` is ``Ch`` when a column is Up or Down or a final request replaced a request of
  another drug (a change of generic name), else ``No``; ``diabetesMed`` is ``Yes`` when a
  diabetes drug column is not ``No``;
- ``num_medications`` counts the distinct drugs of the final requests (every drug, diabetic or not).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from readmit.data.schema import DRUG_COLUMNS
from readmit.service.fhir import valuesets as vs
from readmit.service.fhir.contract import FhirRefused
from readmit.service.fhir.parse import bundle_entries, check_reference, codings, reference_id

_ORDER_INTENTS = frozenset({"order", "original-order", "reflex-order", "filler-order", "instance-order"})


@dataclass(frozen=True)
class Request:
    """One MedicationRequest as the mapping needs it."""

    path: str
    id: str | None
    drug: str | tuple[str, ...]  # a UCI drug column, or the sorted RxNorm codes of another drug
    dose: tuple[Decimal, str] | None
    prior: str | None


def medication_columns(data: Any, context: tuple[str, str], record: dict[str, Any], missing: Any) -> None:
    """The drug columns, change, diabetesMed and num_medications of the encounter's requests."""
    if data is None:
        for column in (*DRUG_COLUMNS, "change", "diabetesMed", "num_medications"):
            missing.add(column, "the encounter's MedicationRequests were not had")
        return
    requests = _requests(data, context)
    replaced = {r.prior for r in requests if r.prior is not None}
    final = [r for r in requests if r.id is None or r.id not in replaced]
    by_id = {r.id: r for r in requests if r.id is not None}
    switched = False
    for column in DRUG_COLUMNS:
        mine = [r for r in final if r.drug == column]
        steps = [_step(r, by_id) for r in mine]
        switched = switched or any(s == "switch" for s in steps)
        record[column] = _combine([s for s in steps if s != "switch"] or (["Steady"] if mine else ["No"]))
        if record[column] is None:
            missing.add(column, "its dose change cannot be told (doses absent, in other units, or both Up and Down)")
    states = [record[c] for c in DRUG_COLUMNS]
    record["diabetesMed"] = "Yes" if any(s != "No" for s in states) else "No"
    if switched or any(s in ("Up", "Down") for s in states):
        record["change"] = "Ch"
    elif None in states:
        missing.add("change", "a drug's dose change cannot be told")
    else:
        record["change"] = "No"
    record["num_medications"] = len({r.drug for r in final})


def _requests(data: Any, context: tuple[str, str]) -> list[Request]:
    patient_id, encounter_id = context
    out = []
    for entry in bundle_entries(data, "MedicationRequest", "prefetch.medications"):
        request, path = entry.resource, entry.path
        check_reference(request.subject, "Patient", patient_id, f"{path}.subject", "patient")
        check_reference(request.encounter, "Encounter", encounter_id, f"{path}.encounter", "encounter",
                        required=False)
        if request.status in vs.IGNORED_REQUEST_STATUSES or request.intent not in _ORDER_INTENTS:
            continue
        prior = None
        if request.priorPrescription is not None:
            prior = reference_id(request.priorPrescription, "MedicationRequest")
            if prior is None:
                raise FhirRefused(f"{path}.priorPrescription.reference",
                                  "not a reference to a MedicationRequest (MedicationRequest/id)")
        out.append(Request(path, request.id, _drug(request, path), _dose(request), prior))
    return out


def _drug(request: Any, path: str) -> str | tuple[str, ...]:
    """The UCI drug column of a request, or its RxNorm codes when it is another drug."""
    if request.medicationCodeableConcept is None:
        raise FhirRefused(f"{path}.medicationReference",
                          "not read: send the drug as medicationCodeableConcept with RxNorm codings")
    rxnorm = sorted({c.code for c in codings(request.medicationCodeableConcept) if c.system == vs.RXNORM and c.code})
    if not rxnorm:
        raise FhirRefused(f"{path}.medicationCodeableConcept.coding", f"no RxNorm coding ({vs.RXNORM})")
    names = {vs.INGREDIENTS.get(code) or ("insulin" if code in vs.INSULINS else None) for code in rxnorm}
    names.discard(None)
    if len(names) == 1:
        return names.pop()
    return vs.COMBINATIONS.get(frozenset(names)) or tuple(rxnorm)


def _dose(request: Any) -> tuple[Decimal, str] | None:
    """The first dosage's doseQuantity (value, unit code), None when the request has none."""
    for dosage in request.dosageInstruction or []:
        for rate in dosage.doseAndRate or []:
            quantity = rate.doseQuantity
            if quantity is not None and quantity.value is not None:
                return Decimal(quantity.value), quantity.code or quantity.unit or ""
    return None


def _step(request: Request, by_id: dict[str, Request]) -> str | None:
    """Up / Down / Steady against the first request of the same drug in its chain; ``switch``
    when the chain replaced another drug; None when the doses cannot be compared."""
    first, seen, current = request, set(), request
    switched = False
    while current.prior is not None and current.prior not in seen:
        if current.prior not in by_id:
            return None  # replaces an order the prefetch does not hold: the change cannot be told
        seen.add(current.prior)
        current = by_id[current.prior]
        if current.drug == request.drug:
            first = current
        else:
            switched = True
    if first is request:
        return "switch" if switched else "Steady"
    if request.dose is None or first.dose is None or request.dose[1] != first.dose[1]:
        return None
    if request.dose[0] == first.dose[0]:
        return "switch" if switched else "Steady"
    return "Up" if request.dose[0] > first.dose[0] else "Down"


def _combine(steps: list[str | None]) -> str | None:
    """One column's value from its final requests' steps: one direction, or None when they disagree."""
    if None in steps or ("Up" in steps and "Down" in steps):
        return None
    for value in ("Up", "Down", "No"):
        if value in steps:
            return value
    return "Steady"
