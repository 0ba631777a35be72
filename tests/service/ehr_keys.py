"""An EHR as a CDS Client: its own signing keys, made in the test, and its JWK Set on loopback HTTP.

``Ehr`` signs JWTs as CDS Hooks 2.0 asks (ES384 with a P-384 key, RS384 with RSA, ``kid`` in
the header, iss/aud/exp/iat/jti in the claims) and serves its public keys from a real HTTP
server (``JwksServer``) that counts its fetches, so key rotation can be watched.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISS = "https://ehr.example.org"


class Ehr:
    """Signing keys by kid; ``jwks()`` is the public JWK Set."""

    def __init__(self, iss: str = ISS):
        self.iss = iss
        self.keys: dict[str, tuple[str, Any]] = {}
        self.add_key("ec-1", "ES384")
        self.add_key("rsa-1", "RS384")

    def add_key(self, kid: str, alg: str) -> None:
        if alg == "ES384":
            key = ec.generate_private_key(ec.SECP384R1())
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys[kid] = (alg, key)

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, (alg, key) in self.keys.items():
            algorithm = ECAlgorithm if alg == "ES384" else RSAAlgorithm
            jwk = json.loads(algorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        return {"keys": keys}

    def token(self, aud: str | list[str], kid: str = "ec-1", *, lifetime: int = 300, iat_offset: int = 0,
              headers: dict[str, Any] | None = None, key: Any = None, alg: str | None = None,
              **claims: Any) -> str:
        """A JWT signed with ``kid``'s key (or ``key`` with ``alg``)."""
        now = int(time.time()) + iat_offset
        payload = {"iss": self.iss, "aud": aud, "iat": now, "exp": now + lifetime, "jti": uuid.uuid4().hex, **claims}
        payload = {k: v for k, v in payload.items() if v is not None}
        signing_alg, signing_key = self.keys[kid] if key is None else (alg, key)
        return jwt.encode(payload, signing_key, algorithm=signing_alg,
                          headers={"kid": kid, "typ": "JWT", **(headers or {})})


class JwksServer:
    """The EHR's JWK Set at ``{url}/jwks.json`` on 127.0.0.1; ``fetches`` counts the GETs."""

    def __init__(self, ehr: Ehr):
        self.ehr = ehr
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                outer.fetches += 1
                body = json.dumps(outer.ehr.jwks()).encode()
                self.send_response(200 if self.path == "/jwks.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
