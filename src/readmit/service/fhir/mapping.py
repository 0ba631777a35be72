"""FHIR R4 resources of one encounter -> one row of readmit's raw input contract."""

from __future__ import annotations

from typing import Any

from readmit.service.fhir.contract import MappedEncounter


def map_prefetch(prefetch: dict[str, Any], patient_id: str, encounter_id: str) -> MappedEncounter:
    """The encounter ``encounter_id`` of patient ``patient_id`` as a raw contract row.

    ``prefetch``: the CDS Hooks prefetch after :func:`complete_prefetch` (keys of
    PREFETCH_TEMPLATES; a key absent or None is data not had: its fields become missing, but
    ``patient`` and ``encounter`` are required). Raises FhirRefused (with the field path, e.g.
    ``prefetch.conditions.entry[2].resource.subject``) for a resource of the wrong type or of
    another patient, a malformed resource, or a code of a system the mapping does not know.
    """
    raise NotImplementedError("interface published first; the mapping lands next")
