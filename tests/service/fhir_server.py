"""Test-only: a real FHIR server on loopback, serving prefetch resources at the template queries.

``FhirServer`` is a threaded ``http.server`` on 127.0.0.1 (a free port). ``serve(prefetch,
context)`` publishes every resource of a prefetch (e.g. :func:`fhir_bundles.prefetch_for`) at
the URL its PREFETCH_TEMPLATES query renders to; anything else answers 404 (an OperationOutcome).
It records every request (path, query, Authorization header) and can page search Bundles
(``page_size``) or hang (``hang``: accept the request and answer nothing until stopped).

``AcceptRecorder`` is a bare listening socket that records the connections it accepts: the
proof that a refused server was never connected to.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from readmit.service.fhir import PREFETCH_TEMPLATES


@dataclass(frozen=True)
class Seen:
    """One request the server received."""

    path: str
    query: tuple[tuple[str, str], ...]
    authorization: str | None


def _key(path: str, query: list[tuple[str, str]]) -> tuple[str, frozenset[tuple[str, str]]]:
    return path.strip("/"), frozenset(query)


class FhirServer:
    """A FHIR R4 REST server on loopback for the prefetch queries (see the module docstring)."""

    def __init__(self, *, page_size: int | None = None):
        self.routes: dict[tuple[str, frozenset], Any] = {}
        self.seen: list[Seen] = []
        self.page_size = page_size
        self.hang = False
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> FhirServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def serve(self, prefetch: dict[str, Any], context: dict[str, str]) -> None:
        """Publish each prefetch value at its template's rendered query (None values are not served)."""
        for key, template in PREFETCH_TEMPLATES.items():
            body = prefetch.get(key)
            if body is None:
                continue
            rendered = template.replace("{{context.patientId}}", context["patientId"]).replace(
                "{{context.encounterId}}", context.get("encounterId", ""))
            path, _, qs = rendered.partition("?")
            self._publish(path, parse_qsl(qs), body)

    def _publish(self, path: str, query: list[tuple[str, str]], body: dict[str, Any]) -> None:
        entries = body.get("entry") if body.get("resourceType") == "Bundle" else None
        if not self.page_size or entries is None or len(entries) <= self.page_size:
            self.routes[_key(path, query)] = body
            return
        pages = [entries[i:i + self.page_size] for i in range(0, len(entries), self.page_size)]
        token = f"p{len(self.routes)}"
        for n, page in enumerate(pages):
            links = [{"relation": "next", "url": f"{self.base}/page/{token}/{n + 1}"}] if n + 1 < len(pages) else []
            shown = {**body, "entry": page, "link": links}
            where = _key(path, query) if n == 0 else _key(f"page/{token}/{n}", [])
            self.routes[where] = shown

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlsplit(self.path)
                path = url.path.removeprefix("/fhir")
                query = parse_qsl(url.query)
                with server._lock:
                    server.seen.append(Seen(path, tuple(query), self.headers.get("Authorization")))
                if server.hang:
                    server.release.wait(60)
                    return
                body = server.routes.get(_key(path, query))
                status = 200 if body is not None else 404
                if body is None:
                    body = {"resourceType": "OperationOutcome", "issue": [
                        {"severity": "error", "code": "not-found", "diagnostics": "no such resource"}]}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
                return  # no request lines (they hold patient ids) on stderr

        return Handler


class AcceptRecorder:
    """A listening TCP socket on loopback that records the peers of the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/fhir"
        self.accepted: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(peer)
            conn.close()

    def first_connection_is(self, probe: socket.socket) -> bool:
        """Whether the first connection accepted is ``probe`` (connections are accepted in order,
        so anything that connected before the probe would come first)."""
        local = probe.getsockname()
        for _ in range(100):
            if self.accepted:
                return self.accepted[0] == local
            self._stop.wait(0.05)
        return False

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
