"""A provider of its own on loopback that relays every grant to the real one (tests/support/oidc)
and signs the ID tokens itself, so that a test can make it misbehave the way providers do (drop
the ID token from a refresh answer, fail with 503, rotate or mistype its signing key) while the
refresh tokens stay the real provider's: rotated on every use, and the whole family revoked
when a spent one comes back.

    with RelayProvider(real) as relay:
        relay.intercept = lambda form: (503, {"error": "temporarily_unavailable"})
        run cred-helper with --oidc-issuer-url=relay.issuer --oidc-client-id=public

`intercept(form)` may answer a token request instead of the real provider (None: relay it);
`alter(form, doc)` may change the real provider's answer; `token_path` and `jwks_path` move
the token endpoint and the keys (the old path then answers 404). `seen` lists "METHOD /path"
(and the grant type of token requests).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from .oidc_provider import OIDCProvider


def public_jwk(key, kid: str) -> dict:
    algorithm = jwt.algorithms.ECAlgorithm if isinstance(key, ec.EllipticCurvePrivateKey) \
        else jwt.algorithms.RSAAlgorithm
    return algorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": kid}


class RelayProvider(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, real: OIDCProvider, issuer_suffix: str = "") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.base = f"http://127.0.0.1:{self.server_address[1]}"
        self.issuer = self.base + issuer_suffix
        self.real = requests.get(f"{real.issuer}/.well-known/openid-configuration",
                                 timeout=10).json()
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid, self.alg = "k1", "ES256"
        self.jwks = {"keys": [public_jwk(self.key, self.kid)]}
        self.intercept: Callable[[dict], tuple[int, dict] | None] = lambda form: None
        self.alter: Callable[[dict, dict], dict] = lambda form, doc: doc
        self.seen: list[str] = []
        self.token_path = "/token"  # where the token endpoint is (a test may move it)
        self.jwks_path = "/jwks"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def sign_with(self, key, kid: str, alg: str) -> None:
        """Sign ID tokens from now on with `key` under `kid` (the JWKS is the test's to set)."""
        self.key, self.kid, self.alg = key, kid, alg

    def discovery(self) -> dict:
        return {"issuer": self.issuer, "token_endpoint": f"{self.base}{self.token_path}",
                "jwks_uri": f"{self.base}{self.jwks_path}",
                "device_authorization_endpoint": f"{self.base}/device"}

    def token(self, form: dict) -> tuple[int, dict]:
        answer = self.intercept(form)
        if answer is not None:
            return answer
        got = requests.post(self.real["token_endpoint"], data=form, timeout=10)
        doc = got.json()
        if "id_token" in doc:
            claims = jwt.decode(doc["id_token"], options={"verify_signature": False})
            doc["id_token"] = jwt.encode(claims | {"iss": self.issuer}, self.key,
                                         algorithm=self.alg, headers={"kid": self.kid})
        return got.status_code, self.alter(form, doc)

    def __enter__(self) -> RelayProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: RelayProvider

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        self.server.seen.append(f"GET {path}")
        if path == "/.well-known/openid-configuration":
            self._json(200, self.server.discovery())
        elif path == self.server.jwks_path:
            self._json(200, self.server.jwks)
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        self.server.seen.append(f"POST {self.path} {form.get('grant_type', '')}".rstrip())
        if self.path == self.server.token_path:
            self._json(*self.server.token(form))
        elif self.path == "/device":
            got = requests.post(self.server.real["device_authorization_endpoint"], data=form,
                                timeout=10)
            self._json(got.status_code, got.json())
        else:
            self._json(404, {"error": "not_found"})

    def _json(self, status: int, doc: dict) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass
