"""Fetching the prefetch keys an EHR left out, from an allowlisted FHIR server only.

CDS Hooks 2.0: a prefetch key the EHR could not fill is absent or null, and the service may
query ``fhirServer`` itself with ``fhirAuthorization``. readmit does so only for a server on
its allowlist (``service_config.cds_hooks``), never for any URL a request names: anything else
is refused before a connection is opened. Every fetch shares one deadline (``timeout_s``), bodies
are read in chunks against it and capped in size, redirects are not followed (a redirect could
leave the allowlist), and search Bundles are paged through their ``next`` links on the same
server. The access token goes in the Authorization header only: it is never logged, and
neither is any URL (they hold patient ids).
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qsl

from readmit.service.fhir.contract import PREFETCH_TEMPLATES, REQUIRED_KEYS, FhirRefused, FhirUnavailable

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024  # one FHIR answer; a search Bundle page is far below
MAX_PAGES = 20  # next links followed per search
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # FHIR R4 id datatype
_TOKENS = {"{{context.patientId}}": "patientId", "{{context.encounterId}}": "encounterId"}


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
    if prefetch is not None and not isinstance(prefetch, dict):
        raise FhirRefused("prefetch", "expected a JSON object of prefetch keys")
    out = {key: (prefetch or {}).get(key) for key in PREFETCH_TEMPLATES}
    needed = [key for key in (*REQUIRED_KEYS, *PREFETCH_TEMPLATES) if out[key] is None]
    needed = list(dict.fromkeys(needed))
    if not needed:
        return out
    if fhir_server is None:
        _unavailable_if_required(needed, "absent from the prefetch, and the request names no fhirServer")
        return out
    base = _allowed_base(fhir_server, allowed_servers)
    queries = {key: _render(PREFETCH_TEMPLATES[key], context, key) for key in needed}
    token = (authorization or {}).get("access_token") if isinstance(authorization, dict) else None
    with _Fetcher(base, token, timeout_s) as fetcher:
        for key in needed:
            try:
                out[key] = fetcher.get(queries[key], search="?" in PREFETCH_TEMPLATES[key])
            except FhirUnavailable as exc:
                log.warning("FHIR prefetch %s not had: %s", key, exc)
                _unavailable_if_required([key], str(exc))
    return out


def _unavailable_if_required(keys: list[str], why: str) -> None:
    for key in keys:
        if key in REQUIRED_KEYS:
            raise FhirUnavailable(f"prefetch.{key}: {why}")


def _allowed_base(fhir_server: Any, allowed_servers: list[str]) -> str:
    """The server's base URL when it is on the allowlist; FhirRefused otherwise (no connection)."""
    if not isinstance(fhir_server, str) or not fhir_server.startswith(("https://", "http://")):
        raise FhirRefused("fhirServer", "not an http(s) URL")
    base = fhir_server.rstrip("/")
    if base not in {str(a).rstrip("/") for a in allowed_servers}:
        raise FhirRefused("fhirServer", "not on this service's allowed FHIR servers "
                          "(service_config.cds_hooks): readmit fetches from no other server")
    return base


def _render(template: str, context: dict[str, str], key: str) -> str:
    """The template with the context's ids; a missing or non-FHIR id is refused (it goes in a URL)."""
    rendered = template
    for token, name in _TOKENS.items():
        if token in rendered:
            value = (context or {}).get(name)
            if not isinstance(value, str) or not _FHIR_ID.match(value):
                raise FhirRefused(f"context.{name}", f"needed to fetch prefetch.{key}: absent or not a FHIR id")
            rendered = rendered.replace(token, value)
    return rendered


class _NoUrls(logging.Filter):
    """Drops httpx's request lines: their URLs hold patient and encounter ids."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("HTTP Request:")


_NO_URLS = _NoUrls()


def _quiet_httpx() -> None:
    """Keep the fetch's URLs out of the logs (httpx logs each request with its URL at INFO)."""
    logger = logging.getLogger("httpx")
    if _NO_URLS not in logger.filters:
        logger.addFilter(_NO_URLS)


class _Fetcher:
    """One HTTP client for one prefetch: shared deadline, size cap, no redirects."""

    def __init__(self, base: str, token: str | None, timeout_s: float):
        import httpx

        _quiet_httpx()
        self._httpx = httpx
        self.base = base
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        headers = {"Accept": "application/fhir+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False, headers=headers,
                                   trust_env=False)

    def __enter__(self) -> _Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def get(self, query: str, *, search: bool) -> dict[str, Any]:
        """One resource, or a search Bundle with every page's entries."""
        path, _, qs = query.partition("?")
        body = self._json(f"{self.base}/{path}", parse_qsl(qs))
        if not search:
            return body
        entries = list(body.get("entry") or [])
        first = body
        for _ in range(MAX_PAGES):
            following = next((link.get("url") for link in body.get("link") or []
                              if isinstance(link, dict) and link.get("relation") == "next"), None)
            if not following:
                break
            if not str(following).startswith(self.base + "/"):
                raise FhirUnavailable("a next page on another server than fhirServer")
            body = self._json(str(following), None)
            entries.extend(body.get("entry") or [])
        if body is first:
            return first
        return {**{k: v for k, v in first.items() if k != "link"}, "entry": entries}

    def _json(self, url: str, params: list[tuple[str, str]] | None) -> dict[str, Any]:
        httpx = self._httpx
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise FhirUnavailable(f"the FHIR server took longer than {self.timeout_s} s")
        try:
            with self.client.stream("GET", url, params=params, timeout=httpx.Timeout(left)) as response:
                if response.status_code != 200:
                    raise FhirUnavailable(f"the FHIR server answered {response.status_code}")
                data = self._read(response)
        except httpx.TimeoutException:
            raise FhirUnavailable(f"the FHIR server took longer than {self.timeout_s} s") from None
        except httpx.HTTPError as exc:
            raise FhirUnavailable(f"the FHIR server could not be reached ({type(exc).__name__})") from None
        try:
            body = json.loads(data)
        except ValueError:
            raise FhirUnavailable("the FHIR server answered something that is not JSON") from None
        if not isinstance(body, dict):
            raise FhirUnavailable("the FHIR server answered JSON that is not a resource")
        return body

    def _read(self, response: Any) -> bytes:
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise FhirUnavailable(f"the FHIR server's answer is over {MAX_BODY_BYTES} bytes")
            if time.monotonic() > self.deadline:
                raise FhirUnavailable(f"the FHIR server took longer than {self.timeout_s} s")
            chunks.append(chunk)
        return b"".join(chunks)
