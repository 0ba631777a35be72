"""Who may ask: bearer tokens with scopes, as a FastAPI dependency.

Tokens come from ``READMIT_API_TOKENS`` (comma-separated ``name=token``, every scope, for a
run) and from ``serve_config.tokens`` (the sha256 of the token, a name and its scopes: the
config never holds a token). A request without a valid token gets 401; a valid token without
the endpoint's scope gets 403. Tokens are compared by their sha256 in constant time and are
never logged. With no token configured the service refuses to start on a non-loopback address
(:func:`check_exposure`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import threading
import time
from dataclasses import dataclass

from fastapi import HTTPException, Request

from readmit.config import Settings
from readmit.errors import ReadmitInputError

ENV_TOKENS = "READMIT_API_TOKENS"
SCOPES = ("score", "record", "admin")


@dataclass(frozen=True)
class Caller:
    name: str
    scopes: frozenset[str]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_tokens(settings: Settings, environ: dict[str, str] | None = None) -> list[tuple[str, Caller]]:
    """(sha256 of the token, caller) for every configured token."""
    environ = os.environ if environ is None else environ
    tokens = [(t.sha256, Caller(t.name, frozenset(t.scopes))) for t in settings.config.serve_config.tokens]
    text = environ.get(ENV_TOKENS, "").strip()
    for i, item in enumerate(p.strip() for p in text.split(",") if p.strip()):
        name, sep, token = item.partition("=")
        if not sep or not name.strip() or len(token.strip()) < 16:
            raise ReadmitInputError(
                f"{ENV_TOKENS}: item {i + 1} is not name=token with a token of at least 16 characters",
                fix=f"set {ENV_TOKENS} to comma-separated name=token pairs (e.g. `ward7=$(openssl rand -hex 24)`)",
            )
        tokens.append((_digest(token.strip()), Caller(name.strip(), frozenset(SCOPES))))
    return tokens


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, tokens: list[tuple[str, Caller]]) -> None:
    """Refuse to serve a non-loopback address without any token configured."""
    if not tokens and not is_loopback(host):
        raise ReadmitInputError(
            f"no API token is configured, so the service will not listen on {host} (only on a loopback address)",
            fix=f"set {ENV_TOKENS}=name=token, or add serve_config.tokens (name, sha256, scopes) to the config; "
                "or bind to 127.0.0.1",
        )


def authenticate(request: Request) -> Caller:
    """The caller of a request from its ``Authorization: Bearer`` header (401 when there is none that fits)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "a bearer token is required (Authorization: Bearer TOKEN)",
                            headers={"WWW-Authenticate": "Bearer"})
    presented = _digest(token.strip())
    found = None
    for digest, caller in request.app.state.service.tokens:
        if hmac.compare_digest(digest, presented):
            found = caller
    if found is None:
        raise HTTPException(401, "the bearer token is not valid", headers={"WWW-Authenticate": "Bearer"})
    request.state.caller = found
    return found


class RateLimit:
    """A token bucket per caller: ``rate`` requests a second, bursts of as many (one process)."""

    def __init__(self, rate: float):
        self.rate = rate
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def allow(self, name: str) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        with self.lock:
            level, then = self.buckets.get(name, (self.rate, now))
            level = min(self.rate, level + (now - then) * self.rate)
            allowed = level >= 1
            self.buckets[name] = (level - 1 if allowed else level, now)
            return allowed


def require(scope: str):
    """A dependency: the caller, who must hold ``scope`` (403 otherwise) and be within its rate (429).

    ``async`` because it only hashes a header: FastAPI runs a plain ``def`` dependency in its
    thread pool, a thread hop per request for a few microseconds of work."""

    async def dependency(request: Request) -> Caller:
        caller = authenticate(request)
        if scope not in caller.scopes:
            raise HTTPException(403, f"the token {caller.name!r} has no {scope!r} scope")
        if not request.app.state.service.rate.allow(caller.name):
            raise HTTPException(429, f"the token {caller.name!r} is over serve_config.rate_per_token requests a second",
                                headers={"Retry-After": "1"})
        return caller

    dependency.__name__ = f"require_{scope}"
    return dependency
