"""Reading prefetch JSON into ``fhir.resources`` models, and the small questions every mapper asks.

The models are R4B's (``fhir.resources.R4B``): R4B changed no element of the resources read
here (Patient, Encounter, Condition, MedicationRequest, Observation, Bundle), so R4 JSON
validates as is. They are imported on first use (``fhir.resources`` builds hundreds of pydantic
classes), never when ``readmit.service`` is imported.

Every refusal names the field path from ``prefetch`` down (``prefetch.conditions.entry[2]
.resource.subject``) and never echoes a value of the resource (patient data).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from readmit.service.fhir.contract import FhirRefused

# resource type -> fhir.resources.R4B module holding its model
_MODULES = {
    "Bundle": "bundle", "Patient": "patient", "Encounter": "encounter", "Condition": "condition",
    "MedicationRequest": "medicationrequest", "Observation": "observation",
}
# Ids that are not numeric become integers from this offset up (see :func:`integer_id`).
HASHED_ID_BASE = 2**62


@functools.cache
def model(resource_type: str) -> Any:
    """The fhir.resources R4B model class of a resource type (imported on first use)."""
    module = importlib.import_module(f"fhir.resources.R4B.{_MODULES[resource_type]}")
    return getattr(module, resource_type)


def _loc_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if part in ("root", "__root__"):  # pydantic's name for the object itself
            continue
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


# The elements the mapping reads, per resource type: only these are validated and parsed (an
# EHR's resources also carry narrative, identifiers, notes ... that readmit never reads, and
# validating them would cost more than the rest of the call).
READ_ELEMENTS: dict[str, frozenset[str]] = {
    "Patient": frozenset({"id", "gender", "birthDate", "extension"}),
    "Encounter": frozenset({"id", "status", "class", "subject", "period", "priority", "hospitalization",
                            "diagnosis", "extension"}),
    "Condition": frozenset({"id", "subject", "encounter", "verificationStatus", "code"}),
    "MedicationRequest": frozenset({"id", "status", "intent", "subject", "encounter", "medicationCodeableConcept",
                                    "medicationReference", "dosageInstruction", "priorPrescription"}),
    "Observation": frozenset({"id", "status", "code", "subject", "encounter", "effectiveDateTime",
                              "effectivePeriod", "effectiveInstant", "issued", "valueQuantity"}),
}


# The patient's other Encounters: only what the history rows read.
HISTORY_ELEMENTS = frozenset({"id", "status", "class", "subject", "period", "priority"})


def _read_part(data: dict[str, Any], elements: frozenset[str] | None = None) -> dict[str, Any]:
    """A resource's JSON cut to the elements the mapping reads (others pass unvalidated, unread)."""
    keep = elements or READ_ELEMENTS.get(data.get("resourceType"))  # type: ignore[arg-type]
    if keep is None:
        return data
    return {k: v for k, v in data.items() if k in keep or k == "resourceType"}


def _bundle_read_part(data: dict[str, Any], elements: frozenset[str] | None) -> dict[str, Any]:
    entries = data.get("entry")
    if not isinstance(entries, list):
        return data
    cut = [{**e, "resource": _read_part(e["resource"], elements)}
           if isinstance(e, dict) and isinstance(e.get("resource"), dict) else e for e in entries]
    return {**data, "entry": cut}


def parse(data: Any, resource_type: str, path: str, elements: frozenset[str] | None = None) -> Any:
    """``data`` validated as a FHIR ``resource_type`` (the elements readmit reads, READ_ELEMENTS);
    FhirRefused naming the first bad field."""
    from pydantic import ValidationError

    if not isinstance(data, dict):
        raise FhirRefused(path, f"expected a FHIR {resource_type} resource (a JSON object)")
    found = data.get("resourceType")
    if found != resource_type:
        raise FhirRefused(f"{path}.resourceType", f"expected {resource_type}, got {_kind(found)}")
    data = _bundle_read_part(data, elements) if resource_type == "Bundle" else _read_part(data, elements)
    try:
        return model(resource_type).model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        message = first["msg"].split("\n")[0].strip()
        raise FhirRefused(path + _loc_path(first["loc"]), f"not valid FHIR R4: {message}") from None


def _kind(value: Any) -> str:
    return repr(value) if isinstance(value, str) and len(value) <= 40 else "another type"


@dataclass(frozen=True)
class Entry:
    """One resource of a search Bundle, with its path for messages."""

    path: str
    resource: Any


def bundle_entries(data: Any, resource_type: str, path: str, elements: frozenset[str] | None = None) -> list[Entry]:
    """The ``resource_type`` resources of a search Bundle (its OperationOutcome notes left out);
    ``elements``: the ones read of each resource, when not READ_ELEMENTS of its type."""
    bundle = parse(data, "Bundle", path, elements)
    out = []
    for i, entry in enumerate(bundle.entry or []):
        where = f"{path}.entry[{i}].resource"
        resource = entry.resource
        if resource is None:
            raise FhirRefused(where, "a Bundle entry without a resource")
        found = resource.get_resource_type()
        if found == "OperationOutcome" and entry.search is not None and entry.search.mode == "outcome":
            continue
        if found != resource_type:
            raise FhirRefused(f"{where}.resourceType", f"expected {resource_type}, got {found!r}")
        out.append(Entry(where, resource))
    return out


def reference_id(reference: Any, resource_type: str) -> str | None:
    """The id a Reference names for ``resource_type`` (relative, absolute or versioned), else None."""
    text = getattr(reference, "reference", None)
    if not text:
        return None
    parts = text.split("?")[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2] == resource_type:
        return parts[-1]
    return None


def check_reference(reference: Any, resource_type: str, expected_id: str, path: str, who: str,
                    required: bool = True) -> None:
    """Refuse a reference that is absent (when ``required``) or names another ``who``."""
    if reference is None:
        if required:
            raise FhirRefused(path, f"absent: the resource must name its {who}")
        return
    found = reference_id(reference, resource_type)
    if found is None:
        raise FhirRefused(f"{path}.reference", f"not a reference to a {resource_type} (Type/id)")
    if found != expected_id:
        raise FhirRefused(f"{path}.reference", f"refers to another {who} than the hook's context")


def integer_id(resource_type: str, fhir_id: str) -> int:
    """readmit's integer id for a FHIR id: the number itself when the id is digits (below 2**62),
    else 2**62 plus the first 60 bits of sha256("<Type>/<id>"), stable across calls and processes."""
    if fhir_id.isdigit() and int(fhir_id) < HASHED_ID_BASE:
        return int(fhir_id)
    digest = hashlib.sha256(f"{resource_type}/{fhir_id}".encode()).digest()
    return HASHED_ID_BASE + (int.from_bytes(digest[:8], "big") >> 4)


def codings(concept: Any) -> list[Any]:
    """The codings of a CodeableConcept (none for an absent concept)."""
    return list(getattr(concept, "coding", None) or [])


def day(value: Any, path: str) -> date:
    """The calendar day of a FHIR date/dateTime (in its own offset); refuse a partial date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raise FhirRefused(path, "needs a full date (YYYY-MM-DD), not a year or a month")


def comes_before(end: Any, start: Any) -> bool:
    """Whether a stay that ended at ``end`` ended before one that began at ``start``: by instant
    when both carry a time, else by day (an end on the day of the start counts as before)."""
    if isinstance(end, datetime) and isinstance(start, datetime):
        return end <= start
    return day(end, "") <= day(start, "")
