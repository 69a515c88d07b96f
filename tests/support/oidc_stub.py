"""A loopback stand-in for an OpenID provider that answers whatever a test scripts: the real
provider (tests/support/oidc) cannot be made to misbehave."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

KEY = ec.generate_private_key(ec.SECP256R1())
CLIENT_ID = "svc"


# (status code, content type, body) or the same with extra headers (a redirect's Location)
Reply = tuple[int, str, str | bytes] | tuple[int, str, str | bytes, dict[str, str]]


@dataclass
class Asked:
    """One request, for answers that depend on it."""

    path: str
    query: dict[str, str]
    form: dict[str, str]


class StubProvider(ThreadingHTTPServer):
    daemon_threads = True
    issuer: str
    # path -> a reply, or a function of the request that returns one
    answers: dict[str, Reply | Callable[[Asked], Reply]]
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
        form = self.rfile.read(length).decode("utf-8", "replace")
        self.server.seen.append((self.path, self.headers.get("Authorization", ""), form))
        path, _, query = self.path.partition("?")
        answer = self.server.answers.get(path, (404, "text/plain", "no"))
        if callable(answer):
            answer = answer(Asked(path, dict(parse_qsl(query)), dict(parse_qsl(form))))
        code, kind, body, *more = answer
        data = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (more[0] if more else {}).items():
            self.send_header(name, value)
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
def stub_provider(issuer_host: str = "127.0.0.1") -> Iterator[StubProvider]:
    """Listens on 127.0.0.1; its issuer names `issuer_host` (a name that should resolve
    there)."""
    server = StubProvider(("127.0.0.1", 0), _Handler)
    server.seen = []
    server.issuer = f"http://{issuer_host}:{server.server_address[1]}"
    server.answers = {}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
