"""A loopback stand-in for an OpenID provider that answers whatever a test scripts: the real
provider (tests/support/oidc) cannot be made to misbehave."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

KEY = ec.generate_private_key(ec.SECP256R1())
CLIENT_ID = "svc"


class StubProvider(ThreadingHTTPServer):
    daemon_threads = True
    issuer: str
    # path -> (status code, content type, body)
    answers: dict[str, tuple[int, str, str | bytes]]
    seen: list[tuple[str, str, str]]  # (path, Authorization header, form body)

    def good_answers(self) -> None:
        """A provider that works: discovery, JWKS and a client-credentials token."""
        self.answers = {
            "/.well-known/openid-configuration": (200, "application/json", json.dumps(
                {"issuer": self.issuer, "token_endpoint": self.issuer + "/token",
                 "jwks_uri": self.issuer + "/jwks"})),
            "/jwks": (200, "application/json", json.dumps({"keys": [
                jwt.algorithms.ECAlgorithm.to_jwk(KEY.public_key(), as_dict=True)
                | {"kid": "k1"}]})),
            "/token": (200, "application/json", json.dumps(
                {"access_token": "a", "id_token": id_token(self.issuer), "expires_in": 1800})),
        }


class _Handler(BaseHTTPRequestHandler):
    server: StubProvider

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.seen.append((self.path, self.headers.get("Authorization", ""),
                                 self.rfile.read(length).decode("utf-8", "replace")))
        code, kind, body = self.server.answers.get(self.path.split("?")[0],
                                                   (404, "text/plain", "no"))
        data = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


def id_token(issuer: str, **claims) -> str:
    now = int(time.time())
    base = {"iss": issuer, "aud": CLIENT_ID, "sub": "robot", "iat": now, "exp": now + 1800}
    return jwt.encode(base | claims, KEY, algorithm="ES256", headers={"kid": "k1"})


@contextmanager
def stub_provider() -> Iterator[StubProvider]:
    server = StubProvider(("127.0.0.1", 0), _Handler)
    server.seen = []
    server.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    server.answers = {}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
