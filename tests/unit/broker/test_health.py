"""The approver's probes: the verdicts against a test clock, and the endpoint over a real
socket on 127.0.0.1 (answers, refusals, and hostile clients: a crowd that connects and says
nothing or trickles, oversized and malformed requests)."""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from cred_helper.broker.health import (
    CLIENT_TIMEOUT,
    MAX_CLIENTS,
    MAX_REQUEST,
    Health,
    parse_address,
    serve,
)
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


def _probe(port: int, path: str) -> tuple[int, str] | str:
    """As the kubelet probes: a fresh connection, and a second to answer in."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (OSError, http.client.HTTPException) as exc:
        return f"no answer: {exc!r}"


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


class Crowd:
    """A hostile client on the pod network: `idle` connections that say nothing, reopened as
    soon as the server drops one, and `trickling` ones that send a request one byte at a time
    and never finish it (slow loris)."""

    def __init__(self, port: int, idle: int, trickling: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._idle, daemon=True) for _ in range(idle)]
        self.threads += [threading.Thread(target=self._trickle, daemon=True)
                         for _ in range(trickling)]

    def __enter__(self) -> Crowd:
        for thread in self.threads:
            thread.start()
        time.sleep(0.5)  # every connection is in before the probes start
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=5)

    def _connect(self) -> socket.socket | None:
        try:
            return socket.create_connection(("127.0.0.1", self.port), timeout=0.2)
        except OSError:
            return None

    def _idle(self) -> None:
        while not self.stop.is_set():
            sock = self._connect()
            if sock is None:
                continue
            with sock:
                while not self.stop.is_set():
                    try:
                        if sock.recv(1) == b"":
                            break  # dropped: come back at once
                    except TimeoutError:
                        continue
                    except OSError:
                        break

    def _trickle(self) -> None:
        while not self.stop.is_set():
            sock = self._connect()
            if sock is None:
                continue
            with sock:
                for byte in b"GET /livez HTTP/1.1\r\nX-Pad: " + b"a" * 10_000:
                    if self.stop.wait(0.3):
                        return
                    try:
                        sock.sendall(bytes([byte]))
                    except OSError:
                        break


def test_a_crowd_of_silent_and_slow_clients_cannot_keep_the_probes_out():
    """Before: eight connections that said nothing (or sent a header a byte at a time) took
    every slot, and the kubelet's probe was closed unanswered: /livez failed, and the kubelet
    restarted a healthy broker for as long as the crowd stayed. The probe's own timeout is the
    Deployment's timeoutSeconds."""
    health = Health(time.monotonic)
    health.answered()
    port = free_port()
    server = serve(f"127.0.0.1:{port}", health)
    try:
        with Crowd(port, idle=48, trickling=16):  # eight times what took every slot
            answers = []
            deadline = time.monotonic() + CLIENT_TIMEOUT * 2  # past the first drops
            while time.monotonic() < deadline:
                answers.append(_probe(port, "/livez"))
                time.sleep(0.2)
        failed = [a for a in answers if a != (200, "ok\n")]
        assert answers and not failed, failed
    finally:
        server.shutdown()
        server.server_close()


def test_beyond_max_clients_the_oldest_waiting_connection_goes():
    """Descriptors stay bounded: the connections past MAX_CLIENTS close the oldest, and the
    probe that comes last is answered."""
    health = Health(time.monotonic)
    health.answered()
    port = free_port()
    server = serve(f"127.0.0.1:{port}", health)
    idle = []
    try:
        for _ in range(MAX_CLIENTS + 10):
            idle.append(socket.create_connection(("127.0.0.1", port)))
            time.sleep(0.001)  # accepted in this order
        assert _probe(port, "/readyz") == (200, "ok\n")  # the 11th oldest makes room for it
        time.sleep(0.2)
        readable, _, _ = select.select(idle, [], [], 0)  # closed ones read as end of file
        closed = [sock in readable for sock in idle]
        assert closed[:11] == [True] * 11 and not any(closed[11:]), closed.count(True)
    finally:
        for sock in idle:
            sock.close()
        server.shutdown()
        server.server_close()


def test_a_slow_client_has_client_timeout_in_all():
    """A byte every 0.3 s used to keep a connection for ever (the timeout was per read): the
    server now closes it while the request is still coming."""
    health = Health(time.monotonic)
    port = free_port()
    server = serve(f"127.0.0.1:{port}", health)
    request = b"GET /livez HTTP/1.1\r\nX-Pad: " + b"a" * int(CLIENT_TIMEOUT / 0.3 * 3)
    try:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.settimeout(0.3)
            sent = 0
            for byte in request:
                try:
                    sock.sendall(bytes([byte]))
                    if sock.recv(1) == b"":
                        break  # closed by the server
                except TimeoutError:
                    sent += 1
                except OSError:
                    break
            assert sent < len(request), "the server waited for the whole trickle"
    finally:
        server.shutdown()
        server.server_close()


def test_an_oversized_request_is_refused_before_it_ends():
    """Headers beyond MAX_REQUEST are not read into memory: the answer is 431 and the
    connection closes, without waiting for the request to end."""
    health = Health(time.monotonic)
    port = free_port()
    server = serve(f"127.0.0.1:{port}", health)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            sock.sendall(b"GET /livez HTTP/1.1\r\nX-Pad: " + b"a" * (MAX_REQUEST + 1))
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
        assert _probe(port, "/livez")[0] == 200
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("request_line", [
    b"GET /livez\r\n\r\n", b"GET\r\n\r\n", b"\r\n\r\n", b"POST /livez HTTP/1.1\r\n\r\n",
    b"GET /livez HTTP/1.1 extra\r\n\r\n", b"\xff\xfe /livez HTTP/1.1\r\n\r\n",
])
def test_a_malformed_request_gets_an_error_and_the_probes_go_on(request_line):
    health = Health(time.monotonic)
    health.answered()
    port = free_port()
    server = serve(f"127.0.0.1:{port}", health)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            sock.sendall(request_line)
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
        assert answer.split(b" ")[1] in (b"400", b"405"), answer
        assert _probe(port, "/readyz") == (200, "ok\n")
    finally:
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
