"""What the FHIR side hands the CDS Hooks service: the prefetch templates, the mapped encounter, the refusals.

Nothing here parses FHIR (that is :mod:`readmit.service.fhir.mapping`, with ``fhir.resources``):
this module is the interface, light to import, shared by the mapping, the fetch and the service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# CDS Hooks prefetch keys -> FHIR R4 search / read templates (CDS Hooks 2.0 prefetch tokens).
# The discovery document advertises these; :func:`readmit.service.fhir.fetch.complete_prefetch`
# runs the same queries against an allowlisted FHIR server for the keys the EHR left out.
PREFETCH_TEMPLATES: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "encounter": "Encounter/{{context.encounterId}}",
    "conditions": "Condition?patient={{context.patientId}}&encounter={{context.encounterId}}",
    "medications": "MedicationRequest?patient={{context.patientId}}&encounter={{context.encounterId}}",
    "observations": "Observation?patient={{context.patientId}}&code=http://loinc.org|4548-4,http://loinc.org|2345-7",
    "encounters": "Encounter?patient={{context.patientId}}",
}
# The keys without which there is nothing to score: a 412 when they cannot be had.
REQUIRED_KEYS: tuple[str, ...] = ("patient", "encounter")


@dataclass(frozen=True)
class MappedEncounter:
    """One encounter read from FHIR, in readmit's raw input contract.

    ``record``: one row of the raw input contract (every RAW_SCHEMA column but ``readmitted``,
    plus ``snapshot_date`` as an ISO date and ``diag_code_system``); None where FHIR could not
    give the value. It is what :func:`readmit.serving.online.score_records` takes.
    ``earlier``: HISTORY_INPUT_COLUMNS rows of the patient's other stays that ended before this
    one began (point-in-time), oldest first.
    ``missing``: the contract fields left None, each with why (``"payer_code: no Coverage in the
    prefetch"``), for the card to list.
    """

    record: dict[str, Any]
    earlier: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def missing_fields(self) -> list[str]:
        """The names of the missing contract fields, without the reasons."""
        return [m.partition(":")[0] for m in self.missing]


class FhirRefused(ValueError):
    """A prefetch readmit will not read: malformed, a resource of the wrong type or of another
    patient, a code of a system it does not know. The service answers 400 naming ``path``."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


class NotInpatient(FhirRefused):
    """An Encounter that is not an inpatient stay (its class is not IMP, ACUTE or NONAC): outside
    the model's intended use. A FhirRefused, so a 400 by default; the service may answer it with
    an info card saying why instead."""


class FhirUnavailable(RuntimeError):
    """Data the mapping needs cannot be had (not in the prefetch, and the FHIR server did not
    answer, answered an error, or timed out). The service answers 412."""
