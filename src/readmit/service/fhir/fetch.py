"""Fetching the prefetch keys an EHR left out, from an allowlisted FHIR server only."""

from __future__ import annotations

from typing import Any


def complete_prefetch(prefetch: dict[str, Any] | None, context: dict[str, str], fhir_server: str | None,
                      authorization: dict | None, allowed_servers: list[str], timeout_s: float) -> dict[str, Any]:
    """The prefetch with every PREFETCH_TEMPLATES key filled: given ones kept, absent or null ones fetched.

    Fetches only when ``fhir_server`` is on ``allowed_servers`` (exact base URL match, a trailing
    slash ignored); any other server is FhirRefused without opening a connection. ``authorization``
    is the CDS Hooks ``fhirAuthorization`` (its ``access_token`` is sent as a Bearer token and never
    logged). Every request is bounded by ``timeout_s`` (connect and read). A key that cannot be had
    is left None, except ``patient`` and ``encounter``: FhirUnavailable. Nothing to fetch (every
    key given) opens no connection, whatever ``fhir_server`` is.
    """
    raise NotImplementedError("interface published first; the fetch lands next")
