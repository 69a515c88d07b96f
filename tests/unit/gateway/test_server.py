"""The SSH server's login bookkeeping, without a network: what each login attempt costs, and
that asyncssh's CA check says yes only for the request's own certificate, inside the gateway's
check. `Conn` plays asyncssh's connection: its validate_public_key asks validate_ca_key as
asyncssh's does."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
import json
from pathlib import Path

import pytest

from cred_helper import accessrequest as ar
from cred_helper.errors import CredHelperError
from cred_helper.gateway.access import certificate_blob
from cred_helper.gateway.connections import Connections
from cred_helper.gateway.handlers import Context
from cred_helper.gateway.server import BLIND_LIMIT, MAX_LOGINS, Config, Gateway, _Server
from cred_helper.gateway.trail import Trail
from tests.support.gateway import UserCA
from tests.unit.gateway.test_access import CA, CAS, NAME, NOW, request, signed
from tests.unit.gateway.test_connections import session as session_for_tests


class CountingCluster:
    """Answers every read with `answer` (None: no such request), and counts the reads."""

    def __init__(self, answer: dict | None = None) -> None:
        self.reads = 0
        self.answer = answer

    def get_request(self, name: str):
        self.reads += 1
        return ar.parse(self.answer) if self.answer is not None else None


class Key:
    """A CA key as asyncssh hands it to validate_ca_key."""

    def __init__(self, line: str) -> None:
        kind, data = line.split()[:2]
        self.algorithm, self.public_data = kind.encode(), base64.b64decode(data)


class Conn:
    """asyncssh's connection, as far as the server uses it before login."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.server: _Server | None = None
        self.ca_answers: list[bool] = []
        self.address = address
        self.closed = False

    def get_extra_info(self, name: str):
        return (self.address, 40000)

    def close(self) -> None:
        self.closed = True

    def pause_writing(self) -> None:  # asyncssh's: "Do nothing with this for now"
        pass

    def resume_writing(self) -> None:
        pass

    async def validate_public_key(self, username, key_data, msg, signature) -> bool:
        assert self.server is not None
        answer = self.server.validate_ca_key(username, Key(CA.public_line))
        self.ca_answers.append(answer)
        return answer


def gateway_for(cluster: CountingCluster, **config) -> Gateway:
    ctx = Context(cluster=cluster, connections=Connections(4, 4, 60),  # type: ignore[arg-type]
                  trail=Trail(io.StringIO()), recordings=Path("/nonexistent"),
                  recording_limit=1, max_command_length=10, shell=("sh",), clock=lambda: NOW)
    return Gateway(Config("127.0.0.1", 0, (), CAS, **config), cluster, ctx,  # type: ignore[arg-type]
                   lambda: NOW)


def server_for(cluster: CountingCluster, gateway: Gateway | None = None,
               address: str = "127.0.0.1") -> tuple[_Server, Conn]:
    server, conn = _Server(gateway or gateway_for(cluster)), Conn(address)
    conn.server = server
    server.connection_made(conn)
    return server, conn


def test_one_address_gets_a_few_connections_that_have_not_logged_in():
    gateway = gateway_for(CountingCluster(), max_connections=100, max_logging_in_per_address=3)
    held = [server_for(CountingCluster(), gateway, "192.0.2.7") for _ in range(3)]
    assert not any(conn.closed for _, conn in held)
    server, conn = server_for(CountingCluster(), gateway, "192.0.2.7")
    assert conn.closed and "192.0.2.7 already has 3 connections not logged in" in server.refusal
    server.connection_lost(None)  # a refused one frees nothing it did not take
    # Another address is not counted with it; a closed one frees its place.
    assert not server_for(CountingCluster(), gateway, "198.51.100.1")[1].closed
    held[0][0].connection_lost(None)
    assert not server_for(CountingCluster(), gateway, "192.0.2.7")[1].closed
    assert server_for(CountingCluster(), gateway, "192.0.2.7")[1].closed


def attempt(server: _Server, conn: Conn, login: str, key: bytes) -> bool:
    async def run() -> bool:
        if login != server.login:  # asyncssh begins a new login name
            server.begin_auth(login)
        return await conn.validate_public_key(login, key, b"msg", b"sig")
    return asyncio.run(run())


def blob(line: str) -> bytes:
    return base64.b64decode(line.split()[1])


def test_a_stranger_costs_no_read():
    """No certificate of the CA for the name, valid now: the request is never read."""
    cluster = CountingCluster()
    other_ca = UserCA()
    for key, why in [
        (blob(UserCA().public_line), "not an OpenSSH certificate"),
        (blob(signed(ca=other_ca)), "not signed by the gateway's SSH user CA"),
        (blob(signed(principals=("ar-other",))), f"does not name {NAME} as its one principal"),
        (blob(signed(principals=())), "one principal"),
        (blob(signed(before=NOW - 1)), "is not valid now"),
        (blob(signed(host=True)), "is not a user certificate"),
        (b"", "not an OpenSSH certificate"),
        (b"\xff\xff\xff\xff", "not an OpenSSH certificate"),
    ]:
        server, conn = server_for(cluster)
        assert attempt(server, conn, NAME, key) is False
        assert why in server.refusal
        assert conn.ca_answers == []
    assert cluster.reads == 0


def test_the_trail_keeps_what_was_wrong_with_the_certificate():
    """ssh offers the certificate, then the plain key beside it."""
    server, conn = server_for(CountingCluster())
    attempt(server, conn, NAME, blob(signed(before=NOW - 1)))
    attempt(server, conn, NAME, blob(UserCA().public_line))
    assert server.refusal == "the presented certificate is not valid now"


def test_a_login_name_is_read_once_per_connection():
    cluster = CountingCluster()
    server, conn = server_for(cluster)
    for _ in range(5):
        assert attempt(server, conn, NAME, blob(signed())) is False
    assert cluster.reads == 1 and server.refusal == f"there is no access request {NAME}"


def test_one_connection_gets_a_few_login_names_and_no_more_reads():
    cluster = CountingCluster()
    server, conn = server_for(cluster)
    for i in range(MAX_LOGINS + 5):
        name = f"ar-{i}"
        cert = signed(principals=(name,), key_id=f"{name}:alice@example.com")
        assert attempt(server, conn, name, blob(cert)) is False
    assert cluster.reads == MAX_LOGINS
    assert server.refusal == f"more than {MAX_LOGINS} login names on one connection"
    assert server.access is None


def test_the_ca_check_says_yes_only_inside_the_gateways_check():
    """The request's own certificate goes on to asyncssh's check, and only there does
    validate_ca_key say yes: asyncssh asking it anywhere else (before, after, for another
    certificate) gets no."""
    cluster = CountingCluster(request())
    server, conn = server_for(cluster)
    ca = Key(CA.public_line)
    assert server.validate_ca_key(NAME, ca) is False
    assert attempt(server, conn, NAME, certificate_blob(request()["status"]["certificate"]))
    assert conn.ca_answers == [True]
    assert server.validate_ca_key(NAME, ca) is False
    # Another certificate of the CA for this name (an earlier signing): not the request's.
    assert attempt(server, conn, NAME, blob(signed(after=NOW - 120))) is False
    assert server.refusal == "the presented key is not the access request's certificate"
    assert conn.ca_answers == [True] and server.validate_ca_key(NAME, ca) is False
    assert cluster.reads == 1


def test_senders_wait_while_the_socket_takes_no_more():
    """asyncio tells the connection (asyncssh's protocol object) when its socket's buffer is
    full and when it drained; asyncssh ignores it, the gateway's senders wait on it."""
    server, conn = server_for(CountingCluster())
    assert server.writable.is_set()
    conn.pause_writing()
    assert not server.writable.is_set()
    conn.resume_writing()
    assert server.writable.is_set()
    conn.pause_writing()
    server.connection_lost(None)  # nobody waits for ever on a closed socket
    assert server.writable.is_set()


def test_a_gateway_that_cannot_follow_the_requests_ends_its_sessions_and_lets_no_one_in():
    """Once serving, a list of access requests that keeps failing (its ServiceAccount lost
    list, 5xx, more requests than a list may hold) would leave a denial unseen: past
    BLIND_LIMIT every session ends with the reason and no login is let in, without a read;
    a list that works again restores it."""
    now = [NOW]
    cluster = CountingCluster(request())
    gateway = gateway_for(cluster)
    gateway.clock = lambda: now[0]
    alive = session_for_tests("s1")
    gateway.connections.add(alive)
    ended: list[str] = []
    alive.stoppers.add(ended.append)

    async def tick_once() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(gateway._tick(stop))
        await asyncio.sleep(0)
        stop.set()
        await task

    first = asyncio.run(_done_future())
    failure = CredHelperError("GET accessrequests: 403 forbidden")
    gateway._watch_failed(failure, first, NOW)
    now[0] = NOW + BLIND_LIMIT  # a short outage: nothing happens
    asyncio.run(tick_once())
    assert ended == [] and gateway.blind_now(now[0]) == ""
    now[0] = NOW + BLIND_LIMIT + 1
    asyncio.run(tick_once())
    assert len(ended) == 1 and "cannot follow access requests" in ended[0] \
        and "403 forbidden" in ended[0]
    server, conn = server_for(cluster, gateway)
    assert attempt(server, conn, NAME, certificate_blob(request()["status"]["certificate"])) \
        is False
    assert "cannot follow access requests" in server.refusal and cluster.reads == 0
    gateway._synced({}, first)  # the list works again
    assert gateway.blind_now(now[0]) == ""
    server, conn = server_for(cluster, gateway)
    assert attempt(server, conn, NAME, certificate_blob(request()["status"]["certificate"]))


async def _done_future() -> asyncio.Future:
    first = asyncio.get_running_loop().create_future()
    first.set_result(None)
    return first


def test_a_forward_ended_during_its_upgrade_still_gets_its_trail_line(monkeypatch):
    """The session ends (a denial) while a forward's WebSocket upgrade is under way, which
    may already have reached the API server as the person: the forward's trail line is
    written all the same, with the reason, and its channel freed."""
    from cred_helper.gateway import handlers, streams

    async def upgrading(*args, **kwargs):
        await asyncio.sleep(3600)

    monkeypatch.setattr(streams, "open_stream", upgrading)
    out = io.StringIO()
    gateway = gateway_for(CountingCluster())
    ctx = dataclasses.replace(gateway.ctx, trail=Trail(out),
                              cluster=type("Cluster", (), {"endpoint": None, "auth": None})())
    session = session_for_tests("s1")
    gateway.connections.add(session)
    assert gateway.connections.open_channel(session) == ""

    class Writer:
        closed = False

        def close(self) -> None:
            self.closed = True

    writer = Writer()

    async def run() -> None:
        task = asyncio.create_task(handlers.forward(ctx, session, "api-1", 8080, None,
                                                    writer))
        await asyncio.sleep(0)
        session.ending = "access request ar-x was denied"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    line = json.loads(out.getvalue().splitlines()[-1])
    assert (line["verb"], line["pod"], line["port"], line["reason"]) == (
        "forward", "api-1", 8080, "access request ar-x was denied")
    assert writer.closed and session.channels == 0
