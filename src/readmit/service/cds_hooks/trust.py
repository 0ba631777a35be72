"""Who may call the CDS Hooks service: the EHR's signed JWT, checked as CDS Hooks 2.0 asks.

Every call, discovery included, carries ``Authorization: Bearer <JWT>``. A JWT is accepted only
when all of these hold (:meth:`ClientTrust.verify`):

- ``alg`` is ES384 or RS384 (``none``, HMAC and everything else refused before any key is used);
- ``iss`` is an allowlisted issuer (``serve_config.cds_hooks.issuers``) and ``kid`` names a key
  of its JWK Set (fetched from ``jwks_url`` or read from ``jwks_file``, cached
  ``jwks_cache_s``; a ``kid`` not in the cached set makes one refetch, at most every
  ``jwks_min_refetch_s``, so
  a key rotation is picked up and a stream of made-up kids cannot hammer the issuer);
- the signature verifies with that key, ``aud`` is this service's URL + the path called, ``exp``
  and ``iat`` hold (with ``leeway_s``), ``exp - iat`` is at most ``max_token_lifetime_s``;
- ``tenant`` equals ``cds_hooks.tenant`` when one is configured;
- ``jti`` was never accepted before within the token's lifetime (:class:`SeenTokens`, in memory;
  in Redis when the service's history lives in Redis, so replicas share it).

A refusal is :class:`Refused`: the app answers a bare 401 (nothing echoed). The log names the
check that failed, never the token.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from readmit.config import CdsHooksSection, CdsIssuer

log = logging.getLogger("readmit.service.cds_hooks")

ALGORITHMS = ("ES384", "RS384")
MAX_JWKS_BYTES = 1_000_000
_REQUIRED = ["iss", "aud", "exp", "iat", "jti"]


class Refused(Exception):
    """A call the service does not trust: answered with a bare 401. ``why`` is for the log only."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


@dataclass
class IssuerKeys:
    """The JWK Set of one issuer, cached, refetched on expiry or (rate-limited) on an unknown kid."""

    issuer: CdsIssuer
    cache_s: float
    refetch_s: float
    timeout_s: float
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _load(self) -> dict[str, jwt.PyJWK]:
        if self.issuer.jwks_file is not None:
            text = Path(self.issuer.jwks_file).read_bytes()
        else:
            with urllib.request.urlopen(self.issuer.jwks_url, timeout=self.timeout_s) as answer:  # noqa: S310
                text = answer.read(MAX_JWKS_BYTES + 1)
            if len(text) > MAX_JWKS_BYTES:
                raise ValueError("the JWK Set is larger than 1 MB")
        keys = {}
        for entry in json.loads(text).get("keys", []):
            if entry.get("kid") and entry.get("kty") in ("EC", "RSA"):
                try:
                    keys[entry["kid"]] = jwt.PyJWK(entry)
                except jwt.PyJWTError:
                    continue  # an unusable key is left out; the others still serve
        return keys

    def key(self, kid: str) -> jwt.PyJWK:
        with self.lock:
            now = time.monotonic()
            stale = now - self.fetched > self.cache_s
            if stale or (kid not in self.keys and now - self.fetched >= self.refetch_s):
                try:
                    self.keys, self.fetched = self._load(), now
                except Exception as exc:  # unreachable, not JSON: keep the last set (if any)
                    log.warning("the JWK Set of a trusted issuer could not be read (%s)", type(exc).__name__)
                    self.fetched = now if self.keys else self.fetched
            found = self.keys.get(kid)
        if found is None:
            raise Refused("unknown kid")
        return found


class SeenTokens:
    """The ``jti`` of every accepted token until it expires: a token is accepted once."""

    def __init__(self, redis_url: str | None = None, prefix: str = "readmit:cds-hooks:jti"):
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()
        self.prefix = prefix
        self.redis = None
        if redis_url:
            import redis

            self.redis = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)

    def first_use(self, key: str, expires: float) -> bool:
        """Remember ``key`` until ``expires`` (epoch seconds); False when it was already seen."""
        now = time.time()
        ttl = max(1, int(expires - now) + 1)
        if self.redis is not None:
            return bool(self.redis.set(f"{self.prefix}:{key}", b"1", nx=True, ex=ttl))
        with self.lock:
            if len(self.seen) > 10_000:
                self.seen = {k: t for k, t in self.seen.items() if t > now}
            held = self.seen.get(key)
            if held is not None and held > now:
                return False
            self.seen[key] = now + ttl
            return True


class ClientTrust:
    """The issuers a service trusts and the tokens it has seen."""

    def __init__(self, config: CdsHooksSection, redis_url: str | None = None):
        self.config = config
        self.issuers = {i.iss: IssuerKeys(i, config.jwks_cache_s, config.jwks_min_refetch_s,
                                             config.fhir_timeout_s) for i in config.issuers}
        self.seen = SeenTokens(redis_url)

    def audience(self, path: str) -> str:
        return (self.config.base_url or "").rstrip("/") + path

    def verify(self, header: str, audiences: list[str]) -> dict[str, Any]:
        """The claims of the bearer JWT in ``header`` when it is trusted for one of ``audiences``."""
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 16_384:
            raise Refused("no bearer JWT")
        try:
            head = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Refused("not a JWT") from None
        alg, kid = head.get("alg"), head.get("kid")
        if alg not in ALGORITHMS:
            raise Refused("algorithm not allowed")
        if not isinstance(kid, str) or not kid:
            raise Refused("no kid")
        keys = self.issuers.get(unverified.get("iss")) if isinstance(unverified.get("iss"), str) else None
        if keys is None:
            raise Refused("unknown issuer")
        claims = self._decode(token, keys.key(kid), alg, audiences, keys.issuer.iss)
        if self.config.tenant is not None and claims.get("tenant") != self.config.tenant:
            raise Refused("wrong tenant")
        if not self.seen.first_use(f"{keys.issuer.iss}|{claims['jti']}", float(claims["exp"])):
            raise Refused("replayed jti")
        return claims

    def _decode(self, token: str, key: jwt.PyJWK, alg: str, audiences: list[str], iss: str) -> dict[str, Any]:
        if key.key_type not in _KEY_TYPE[alg]:
            raise Refused("key does not fit the algorithm")
        try:
            claims = jwt.decode(token, key.key, algorithms=[alg], audience=audiences, issuer=iss,
                                leeway=self.config.leeway_s, options={"require": _REQUIRED})
        except jwt.ExpiredSignatureError:
            raise Refused("expired") from None
        except jwt.InvalidAudienceError:
            raise Refused("wrong aud") from None
        except jwt.ImmatureSignatureError:
            raise Refused("issued in the future") from None
        except jwt.InvalidSignatureError:
            raise Refused("bad signature") from None
        except jwt.PyJWTError:
            raise Refused("invalid claims") from None
        if not isinstance(claims.get("jti"), str) or not claims["jti"] or len(claims["jti"]) > 256:
            raise Refused("invalid jti")
        if float(claims["exp"]) - float(claims["iat"]) > self.config.max_token_lifetime_s:
            raise Refused("lifetime too long")
        return claims


_KEY_TYPE = {"ES384": ("EC",), "RS384": ("RSA",)}
