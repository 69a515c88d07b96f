"""The approver's probes: the verdicts against a test clock, and the endpoint over a real
socket on 127.0.0.1 (answers, refusals, a client that connects and says nothing)."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

import pytest

from cred_helper.broker.health import MAX_CLIENTS, Health, parse_address, serve
from cred_helper.errors import UsageError
from tests.support.controlplane import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_live_while_every_part_keeps_its_promise():
    clock = Clock()
    health = Health(clock)
    assert health.live() == ""
    health.beat("lease", 90)
    health.beat("approver loop", 420)
    clock.now += 89
    assert health.live() == ""
    clock.now += 2  # the lease thread died or hangs: its next beat is overdue
    assert health.live() == "lease: no sign of life for 91s (promised within 90s)"
    health.beat("lease", 90)
    assert health.live() == ""


def test_ready_needs_the_api_server_and_life():
    clock = Clock()
    health = Health(clock)
    health.beat("lease", 90)
    assert health.ready() == "the API server has not answered yet"
    health.answered()
    assert health.ready() == ""
    health.failed("cannot reach the API server at https://10.0.0.1:443: connection refused")
    assert health.ready().startswith("cannot reach the API server")
    assert health.live() == ""  # a restart would not bring the API server back
    health.answered()
    clock.now += 100
    assert health.ready().startswith("lease: no sign of life")


@pytest.mark.parametrize(("text", "address"), [
    (":8081", ("", 8081)), ("127.0.0.1:8081", ("127.0.0.1", 8081)),
    ("[::1]:9000", ("::1", 9000)), ("localhost:1", ("localhost", 1)),
])
def test_parse_address(text, address):
    assert parse_address(text) == address


@pytest.mark.parametrize("text", ["8081", ":0", ":65536", "host:port", "a:1/x", "u@h:1",
                                  "[::1:1", ""])
def test_parse_address_refuses(text):
    with pytest.raises(UsageError, match="is not HOST:PORT"):
        parse_address(text)


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_endpoint_answers_the_probes():
    clock = Clock()
    health = Health(clock)
    health.beat("lease", 90)
    port = free_port()
    server = serve(f"127.0.0.1:{port}", health)
    try:
        assert _get(port, "/livez") == (200, "ok\n")
        assert _get(port, "/readyz") == (503, "the API server has not answered yet\n")
        health.answered()
        assert _get(port, "/readyz") == (200, "ok\n")
        assert _get(port, "/metrics")[0] == 404
        clock.now += 200
        status, text = _get(port, "/livez")
        assert status == 503 and text.startswith("lease: no sign of life")
        with pytest.raises(UsageError, match="cannot listen on"):
            serve(f"127.0.0.1:{port}", health)  # the port is taken
    finally:
        server.shutdown()
        server.server_close()


def test_silent_clients_are_cut_off():
    """Clients that connect and send nothing hold a slot for CLIENT_TIMEOUT at most; once they
    are gone, probes are answered again."""
    health = Health(time.monotonic)
    health.answered()
    port = free_port()
    server = serve(f"127.0.0.1:{port}", health)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(MAX_CLIENTS + 4)]
    try:
        time.sleep(0.3)
        # beyond the slots, connections are closed unanswered rather than piling up threads
        closed = 0
        for sock in idle:
            sock.settimeout(0.2)
            try:
                closed += sock.recv(1) == b""
            except TimeoutError:
                pass
        assert closed >= 4
        time.sleep(2.5)  # CLIENT_TIMEOUT passes: the silent ones are dropped
        assert _get(port, "/readyz") == (200, "ok\n")
    finally:
        for sock in idle:
            sock.close()
        server.shutdown()
        server.server_close()


def test_a_lease_thread_that_dies_fails_liveness():
    """A surprise (not an API error) ends the Lease thread: the replica would stand by for
    ever, alive to the kubelet, unless its missing beats fail /livez."""
    from cred_helper.broker.leader import Elector, Timing

    class Surprising:
        name, identity, timing = "cred-helper-approver", "replica-0", Timing()

        def try_acquire_or_renew(self) -> bool:
            raise KeyError("spec")

        def leading(self) -> bool:
            return False

        def release(self) -> None:
            pass

    clock = Clock()
    health = Health(clock)
    health.beat("lease", 90)
    said: list[str] = []
    elector = Elector(Surprising(), said.append,
                      beat=lambda: health.beat("lease", 90),
                      observe=lambda why: health.failed(why) if why else health.answered())
    elector.start()
    elector._thread.join(timeout=5)
    assert not elector._thread.is_alive()
    assert said == ["lease cred-helper-approver: unexpected KeyError; the Lease is no longer "
                    "renewed here, and the liveness probe fails"]
    assert health.live() == ""
    clock.now += 91
    assert health.live().startswith("lease: no sign of life")
