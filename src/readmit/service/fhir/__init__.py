"""FHIR R4 to readmit's raw input contract, for the CDS Hooks service (docs/fhir_mapping.md).

:func:`map_prefetch` reads a CDS Hooks prefetch (Patient, Encounter, Conditions,
MedicationRequests, Observations, the patient's Encounters) into one raw contract row and its
point-in-time history; :func:`complete_prefetch` fetches the keys the EHR left out, from an
allowlisted FHIR server only. The resources are parsed with ``fhir.resources`` (its R4B models,
which read R4 JSON for every resource used here), imported when a prefetch is mapped, never at
import time.
"""

from __future__ import annotations

from readmit.service.fhir.contract import (
    PREFETCH_TEMPLATES,
    REQUIRED_KEYS,
    FhirRefused,
    FhirUnavailable,
    MappedEncounter,
    NotInpatient,
)
from readmit.service.fhir.fetch import complete_prefetch
from readmit.service.fhir.mapping import map_prefetch

__all__ = ["PREFETCH_TEMPLATES", "REQUIRED_KEYS", "FhirRefused", "FhirUnavailable", "MappedEncounter", "NotInpatient",
           "complete_prefetch", "map_prefetch"]
