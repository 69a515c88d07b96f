"""The SSH server (asyncssh): who gets in, and what each connection may open. Every "may I"
is asked of access.py (the connection) and grant.py (each channel); the classes here only
carry out the answers.

Authentication is by OpenSSH user certificate alone: no passwords, no keyboard-interactive, no
host-based, no plain keys. The login name is an access request's name. The first key
presented for it must be a certificate of the configured CA for that name alone, valid now
(access.presented_problem): only then is the request read (as the gateway's ServiceAccount,
once per login name) and admitted (access.admit), so a stranger costs no API call. The one
certificate accepted is then the request's `status.certificate`, byte for byte, and asyncssh
checks it as a certificate of the configured CA: a user certificate, the login name among its
principals, valid now, no critical option it does not know, and the client's signature with
its key (validate_ca_key says yes only inside that check). Refusals before authentication say
nothing to the client (the trail's JSON line says why).

After login, a watch on the access requests ends sessions within moments of a denial or a
deletion; a timer ends them at their end and after an idle time (connections.py says when).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..accessrequest import AccessRequest, AccessRequestError
from ..errors import CredHelperError
from . import grant
from .access import Refused, admit, ended, presented_problem
from .connections import Session
from .handlers import CommandChannel, Context, forward
from .kubeapi import Cluster, RequestWatch
from .sshlib import asyncssh
from .trail import new_session_id

_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
TICK = 0.25  # how often ends (certificate, idle) are looked for
MAX_LOGINS = 3  # login names one connection may try
STARTUP_PATIENCE = 60.0  # how long a first list may fail with 429, 5xx or no answer
NO_CERTIFICATE = "no certificate was presented"
# How long the access requests' list may keep failing once the gateway serves: past it the
# gateway is blind to denials and deletions, so it ends every session and lets no one in
# until a list works again (a session must end within seconds of its request's revocation).
BLIND_LIMIT = 30.0


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    host_keys: tuple[Any, ...]  # asyncssh private keys
    ca_keys: tuple[bytes, ...]  # the SSH user CA's keys, OpenSSH lines (access.ca_keys)
    max_sessions_per_person: int = 4
    max_channels: int = 4
    max_connections: int = 200
    max_logging_in_per_address: int = 10
    idle_timeout: float = 900.0
    login_timeout: float = 30.0


class Gateway:
    def __init__(self, config: Config, cluster: Cluster, context: Context,
                 clock: Callable[[], float]) -> None:
        self.config = config
        self.cluster = cluster
        self.ctx = context
        self.clock = clock
        self.connections = context.connections
        self.unauthenticated = 0
        # Connections not logged in yet, by the client's address: one address holding many
        # open (a stranger needs no key for that) must not use up --max-connections.
        self.logging_in: Counter[str] = Counter()
        self._closers: dict[Session, Callable[[], None]] = {}
        self.failing_since: float | None = None  # the list's first failure since it last worked
        self.blind = ""  # why the gateway cannot see revocations now ("" while it can)

    # ---- running ---------------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event, ready: Callable[[int], None]) -> None:
        """Serve until `stop` is set. The access requests are listed before the first
        connection is taken: a gateway that cannot see revocations does not serve."""
        loop = asyncio.get_running_loop()
        stopping = threading.Event()
        first = loop.create_future()

        def synced(found: dict[str, AccessRequest | None]) -> None:
            loop.call_soon_threadsafe(self._synced, found, first)

        started = self.clock()

        def failed(error: CredHelperError) -> None:
            loop.call_soon_threadsafe(self._watch_failed, error, first, started)

        watch = RequestWatch(self.cluster, lambda name, request: loop.call_soon_threadsafe(
            self._changed, name, request), synced, failed, stopping)
        watch.start()
        try:
            await first
            server = await asyncssh.create_server(
                lambda: _Server(self), self.config.host, self.config.port,
                server_host_keys=list(self.config.host_keys), encoding=None,
                line_editor=False, x11_forwarding=False, agent_forwarding=False,
                allow_scp=False, password_auth=False, kbdint_auth=False,
                host_based_auth=False, public_key_auth=True, gss_host=None,
                login_timeout=self.config.login_timeout, keepalive_interval=30,
                keepalive_count_max=3, server_version="cred-helper-gateway")
            ready(server.sockets[0].getsockname()[1])
            ticker = asyncio.create_task(self._tick(stop))
            await stop.wait()
            server.close()
            for session in self.connections:
                self.end(session, "the gateway is shutting down")
            await asyncio.sleep(0.2)  # the notices go out before the connections close
            ticker.cancel()
            await server.wait_closed()
        finally:
            stopping.set()

    async def _tick(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            now = self.clock()
            for session, reason in self.connections.due(now):
                self.end(session, reason)
            blind = self.blind_now(now)
            if blind:
                for session in list(self.connections):
                    self.end(session, blind)
            await asyncio.sleep(TICK)

    def blind_now(self, now: float) -> str:
        """Why the gateway must not serve now: its list of access requests has failed for
        longer than BLIND_LIMIT, so a denial or deletion would go unseen ("" otherwise)."""
        if self.failing_since is not None and now - self.failing_since > BLIND_LIMIT:
            return self.blind
        return ""

    def _changed(self, name: str, request: AccessRequest | None) -> None:
        for session, reason in self.connections.changed(name, request, self.clock()):
            self.end(session, reason)

    def _synced(self, found: dict[str, AccessRequest | None], first: asyncio.Future) -> None:
        if not first.done():
            first.set_result(None)
        if self.failing_since is not None:
            self.ctx.trail.write("gateway", event="watch-restored")
        self.failing_since, self.blind = None, ""
        for session, reason in self.connections.synced(found, self.clock()):
            self.end(session, reason)

    def _watch_failed(self, error: CredHelperError, first: asyncio.Future,
                      started: float) -> None:
        """A failed list: at start, an error (after STARTUP_PATIENCE for a server that is
        restarting or still loading the CRD); later, a trail line while the watch retries."""
        if not first.done():
            if error.transient and self.clock() - started < STARTUP_PATIENCE:
                return
            hint = error.hint if getattr(error, "status", None) != 403 else (
                "the gateway's ServiceAccount needs get, list and watch on accessrequests "
                "(packaging/kubernetes/gateway/rbac.yaml)")
            first.set_exception(CredHelperError(
                f"cannot list access requests: {error.message}", hint))
            return
        self.ctx.trail.write("gateway", event="watch-failed", reason=error.message)
        if self.failing_since is None:
            self.failing_since = self.clock()
        self.blind = ("the gateway cannot follow access requests, so it would not see a "
                      f"denial: {error.message}")

    # ---- sessions ---------------------------------------------------------------------------

    def opened(self, session: Session, close: Callable[[], None]) -> str:
        refusal = self.connections.add(session)
        if not refusal:
            self._closers[session] = close
        return refusal

    async def recheck(self, session: Session) -> None:
        """Read the request once more just after login: a denial between the read at login
        and the session's registration would otherwise wait for the request's next change."""
        try:
            request = await asyncio.to_thread(self.cluster.get_request, session.access.request)
        except (CredHelperError, AccessRequestError):
            return  # the watch still follows it
        reason = ended(session.access, request, self.clock())
        if reason:
            self.end(session, reason)

    def closed(self, session: Session) -> None:
        self.connections.remove(session)
        self._closers.pop(session, None)

    def end(self, session: Session, reason: str) -> None:
        """End a session: each running command writes the reason on its stderr and exits, and
        the connection closes once that went out."""
        if session.ending:
            return
        session.ending = reason
        for stop in list(session.stoppers):
            stop(reason)
        close = self._closers.get(session)
        if close is not None:
            asyncio.get_running_loop().call_later(0.1, close)


class _Server(asyncssh.SSHServer):
    """One connection: authentication by the request's certificate, then its channels."""

    def __init__(self, gateway: Gateway) -> None:
        self.g = gateway
        self.conn: Any = None
        self.client = ""
        self.address = ""
        self.writable = asyncio.Event()  # set while the connection's socket takes more
        self.login = ""
        self.access: Any = None
        self.refusal = NO_CERTIFICATE
        self.presented = False
        self.session: Session | None = None
        self.started = gateway.clock()
        self.logins = 0  # login names tried on this connection
        self.looked_up = False  # the login name's request was read
        self.counted = False  # among the gateway's unauthenticated connections
        self._unused_watchers: set[asyncio.Task] = set()  # kept: the loop holds tasks weakly

    # ---- the connection --------------------------------------------------------------------

    def connection_made(self, conn: Any) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername") or ("?", 0)
        self.client = f"{peer[0]}:{peer[1]}"
        self.address = str(peer[0])
        limit = self.g.config.max_logging_in_per_address
        if self.g.logging_in[self.address] >= limit:
            self.refusal = (f"{self.address} already has {limit} connections not logged in yet "
                            "(the gateway's --max-logging-in-per-address)")
            conn.close()
            return
        self.g.unauthenticated += 1
        self.g.logging_in[self.address] += 1
        self.counted = True
        if self.g.unauthenticated + len(self.g.connections) > self.g.config.max_connections:
            self.refusal = "the gateway is at --max-connections"
            conn.close()
            return
        # The presented key is checked before asyncssh judges it as a certificate: only
        # the request's own certificate, byte for byte, goes on (validate_ca_key below
        # refuses anything this check did not see).
        original = conn.validate_public_key

        async def validate(username: str, key_data: bytes, msg: bytes,
                           signature: bytes) -> bool:
            self.presented = False
            if username != self.login or not await self._admitted(key_data):
                return False
            if key_data != self.access.certificate:
                self.refusal = "the presented key is not the access request's certificate"
                return False
            self.presented = True
            try:
                return bool(await original(username, key_data, msg, signature))
            finally:
                self.presented = False

        conn.validate_public_key = validate
        # asyncssh sends a channel's data as far as the client's window allows, and takes no
        # notice of its socket being full (its pause_writing does nothing): a client granting
        # a huge window and reading nothing would have the gateway hold what the pod prints.
        # The transport's own signal is followed here, and every sender waits on it.
        self.writable = asyncio.Event()
        self.writable.set()
        pause, resume = conn.pause_writing, conn.resume_writing

        def paused() -> None:
            pause()
            self.writable.clear()

        def resumed() -> None:
            resume()
            self.writable.set()

        conn.pause_writing, conn.resume_writing = paused, resumed

    def connection_lost(self, exc: Exception | None) -> None:
        now = self.g.clock()
        self._uncount()
        self.writable.set()  # a closed socket never says it takes more: nobody waits on it
        if self.session is None:
            self.g.ctx.trail.write("session", decision="refused", request=self.login or None,
                                   client=self.client, reason=self.refusal,
                                   start=self.started, end=now)
            return
        session = self.session
        for stop in list(session.stoppers):
            stop(session.ending or "the connection closed")
        self.g.closed(session)
        access = session.access
        self.g.ctx.trail.write(
            "session", session=session.id, decision="accepted", who=access.spec.username,
            groups=list(access.spec.groups), request=access.request, client=self.client,
            reason=session.ending or "the client disconnected", commands=session.commands,
            bytes_in=session.bytes_in, bytes_out=session.bytes_out, start=session.started,
            end=now)

    def _uncount(self) -> None:
        if self.counted:
            self.counted = False
            self.g.unauthenticated -= 1
            self.g.logging_in[self.address] -= 1
            if not self.g.logging_in[self.address]:
                del self.g.logging_in[self.address]

    # ---- authentication --------------------------------------------------------------------

    def begin_auth(self, username: str) -> bool:
        self.login, self.access, self.looked_up = username, None, False
        self.logins += 1
        if self.logins > MAX_LOGINS:
            # Each login name may cost a read of the API server: a client trying name after
            # name on one connection gets no more of them.
            self.refusal = f"more than {MAX_LOGINS} login names on one connection"
        elif not _NAME.fullmatch(username):
            self.refusal = "the login name is not an access request's name"
        else:
            self.refusal = NO_CERTIFICATE
        return True

    async def _admitted(self, key_data: bytes) -> bool:
        """Whether the login name's request lets this connection in (self.access). The request
        is read once per login name, and only for a certificate of the CA for that name,
        valid now: a stranger's key costs no API call."""
        if self.access is not None:
            return True
        username = self.login
        if self.looked_up or self.logins > MAX_LOGINS or not _NAME.fullmatch(username):
            return False
        problem = presented_problem(key_data, username, self.g.config.ca_keys, self.g.clock())
        if problem:
            # ssh offers the certificate, then the plain key beside it: the trail keeps
            # what was wrong with the certificate.
            if problem.startswith("presented certificate") or \
                    self.refusal == NO_CERTIFICATE:
                self.refusal = f"the {problem}"
            return False
        blind = self.g.blind_now(self.g.clock())
        if blind:
            self.refusal = blind
            return False
        self.looked_up = True
        try:
            request = await asyncio.to_thread(self.g.cluster.get_request, username)
        except AccessRequestError as exc:
            self.refusal = f"access request {username} cannot be read: {exc}"
            return False
        except CredHelperError as exc:
            self.refusal = f"cannot read access request {username}: {exc.message}"
            return False
        if request is None:
            self.refusal = f"there is no access request {username}"
            return False
        try:
            access = admit(request, self.g.config.ca_keys, self.g.clock())
        except Refused as exc:
            self.refusal = str(exc)
            return False
        if self.g.connections.of_person(access.spec.username) >= \
                self.g.connections.max_per_person:
            self.refusal = (f"{access.spec.username} already has "
                            f"{self.g.connections.max_per_person} open sessions")
            return False
        if username != self.login:  # another name was begun while this one was read
            return False
        self.access = access
        self.refusal = "no valid signature with the request's certificate"
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False

    def validate_public_key(self, username: str, key: Any) -> bool:
        return False  # plain keys never

    def validate_ca_key(self, username: str, key: Any) -> bool:
        return self.presented and _openssh(key) in self.g.config.ca_keys

    def auth_completed(self) -> None:
        now = self.g.clock()
        session = Session(id=new_session_id(), access=self.access, client=self.client,
                          started=now, last_activity=now, writable=self.writable.wait)
        refusal = self.g.opened(session, self.conn.close)
        self._uncount()
        if refusal:
            self.refusal = refusal
            self.conn.close()
            return
        self.session = session
        self._recheck = asyncio.get_running_loop().create_task(self.g.recheck(session))

    # ---- channels --------------------------------------------------------------------------

    def session_requested(self) -> Any:
        session = self.session
        if session is None:
            return False
        refusal = self.g.connections.open_channel(session)
        if refusal:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                                            refusal)

        started = False

        async def handler(stdin: Any, stdout: Any, stderr: Any) -> None:
            nonlocal started
            started = True
            await CommandChannel(self.g.ctx, session, stdin, stdout, stderr).run()

        # A channel closed before its command was asked for never runs the handler, which
        # gives the channel back when it ends: give it back here then.
        chan = self.conn.create_server_channel()

        async def given_back_when_closed_unused() -> None:
            await chan.wait_closed()
            if not started:
                self.g.connections.close_channel(session)

        self._unused_watchers.add(task := asyncio.get_running_loop().create_task(
            given_back_when_closed_unused()))
        task.add_done_callback(self._unused_watchers.discard)
        return chan, handler

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                             orig_port: int) -> Any:
        session = self.session
        if session is None:
            return False
        verdict = grant.decide_forward(session.access.grant, dest_host, dest_port)
        if not verdict.allowed:
            access = session.access
            self.g.ctx.trail.write(
                "command", session=session.id, who=access.spec.username,
                request=access.request, verb="forward", namespace=access.grant.namespace,
                pod=dest_host[:253], port=dest_port, decision="refused",
                reason=verdict.reason, start=self.g.clock(), end=self.g.clock())
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                                            verdict.reason)
        refusal = self.g.connections.open_channel(session)
        if refusal:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                                            refusal)

        async def handler(reader: Any, writer: Any) -> None:
            task = asyncio.current_task()

            def stop(reason: str) -> None:
                if task is not None:
                    task.cancel()

            session.stoppers.add(stop)
            try:
                await forward(self.g.ctx, session, dest_host, dest_port, reader, writer)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    writer.close()
            finally:
                session.stoppers.discard(stop)

        return handler


def load_host_keys(paths: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(asyncssh.read_private_key(Path(p)) for p in paths)


def _openssh(key: Any) -> bytes:
    return key.algorithm + b" " + base64.b64encode(key.public_data)
