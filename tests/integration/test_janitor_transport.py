"""The eviction's transport failures, over real TLS sockets: an answer lost after the request
was sent is `unknown` (the pod may be gone), a connection never made stops the pass."""

from __future__ import annotations

import socket
import ssl
import tempfile
from pathlib import Path

import pytest

from cred_helper.errors import ServerError
from cred_helper.janitor.api import evict
from cred_helper.janitor.decide import outcome
from cred_helper.janitor.pods import PodFacts
from cred_helper.kube import BearerAuth, Endpoint, KubeClient
from tests.support.pki import CA
from tests.support.tcp import serve

POD = PodFacts("shop", "web-1", "uid-1", None, 0, "", False, True, {}, (),
               resource_version="4711")


@pytest.fixture
def ca() -> CA:
    return CA()


def client(ca: CA, port: int) -> KubeClient:
    return KubeClient(Endpoint(f"https://127.0.0.1:{port}", ca_pem=ca.cert_pem),
                      BearerAuth("t", source="test"), timeout=5)


def test_a_connection_cut_after_the_request_is_unknown(ca):
    cert, key = ca.server_cert()
    tmp = Path(tempfile.mkdtemp())
    (tmp / "c.pem").write_bytes(cert)
    (tmp / "k.pem").write_bytes(key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "c.pem", tmp / "k.pem")
    seen: list[bytes] = []

    def swallow(handler) -> None:
        conn = ctx.wrap_socket(handler.connection, server_side=True)
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        seen.append(data)
        conn.close()  # the request arrived; no answer ever leaves

    server = serve(swallow)
    try:
        answer = evict(client(ca, server.server_address[1]), POD, False)
    finally:
        server.shutdown()
    assert seen and seen[0].startswith(b"POST /api/v1/namespaces/shop/pods/web-1/eviction")
    assert answer.status is None and not answer.unsent
    assert outcome(answer, False) == "unknown"


def test_a_refused_connection_is_never_sent_and_stops_the_pass(ca):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    with pytest.raises(ServerError) as caught:
        evict(client(ca, port), POD, False)
    assert caught.value.unsent and caught.value.status is None
    assert "connection refused" in caught.value.message
