"""One channel of a session: a command (`help`, `whoami`, `pods`, `logs`, `exec`, `shell`) or
a forwarded TCP connection (`ssh -L`). Each is parsed, judged by grant.py before any API call,
run as the person, recorded (asciicast) and written to the trail (one JSON line).

Exit codes (ssh's own exit code): the command's in the pod; 2 for a line that is not a gateway
command; 126 for a refusal (outside the grant, or the API server's RBAC refused the person);
1 for any other failure (the pod is gone, the API server cannot be reached, the session
ended).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..accessrequest import format_time
from ..errors import CredHelperError, ServerError, os_reason, server_text
from . import commands, grant, streams
from .access import Access
from .connections import Connections, Session
from .impersonate import headers as impersonation
from .kubeapi import Cluster, list_pods
from .sshlib import asyncssh
from .trail import Recording, RecordingStopped, Trail, recording_path

USAGE_ERROR, REFUSED, FAILED = 2, 126, 1
READ_SIZE = 32 * 1024


@dataclass(frozen=True)
class Context:
    """What every channel of the gateway shares."""

    cluster: Cluster
    connections: Connections
    trail: Trail
    recordings: Path
    recording_limit: int
    max_command_length: int
    shell: tuple[str, ...]
    clock: Callable[[], float]


def target(ctx: Context, access: Access) -> streams.Target:
    return streams.Target(ctx.cluster.endpoint, ctx.cluster.auth, impersonation(access.spec))


class CommandChannel:
    """One session channel: the command line read, judged, run, recorded."""

    def __init__(self, ctx: Context, session: Session, stdin: Any, stdout: Any,
                 stderr: Any) -> None:
        self.ctx = ctx
        self.session = session
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.chan = stdout.channel
        self.recording: Recording | None = None
        self.sent = self.received = 0
        self.started = ctx.clock()

    async def run(self) -> None:
        task = asyncio.current_task()
        stopped: list[str] = []

        def stop(reason: str) -> None:
            stopped.append(reason)
            if task is not None:
                task.cancel()

        async def stop_when_closed() -> None:
            # A client that closes its channel must not leave the command running (and
            # counted against its channels) in the pod.
            await self.chan.wait_closed()
            stop("the client closed the channel")

        self.session.stoppers.add(stop)
        self.session.commands += 1
        watcher = asyncio.create_task(stop_when_closed())
        line = self.chan.get_command() or ""
        fields: dict[str, Any] = {"line": line[:4096]}
        code = FAILED
        try:
            try:
                self._start_recording(line)
            except OSError as exc:
                # What cannot be recorded does not run.
                fields.update(decision="refused", reason=f"cannot record: {os_reason(exc)}")
                self._error(f"the gateway cannot record this command ({os_reason(exc)}), so "
                            "it does not run it", "tell the gateway's admin: its recordings "
                            "volume")
            else:
                code, fields = await self._command(line, fields)
        except asyncio.CancelledError:
            reason = stopped[0] if stopped else "the connection closed"
            fields.setdefault("decision", "allowed")
            fields["reason"] = f"ended: {reason}"
            with contextlib.suppress(Exception):
                self._error(f"session ended: {reason}")
            code = FAILED
        except RecordingStopped as exc:
            fields["reason"] = f"ended: {exc}"
            if self.recording is not None:
                self.recording.close()
            self.recording = None
            self._error(f"command ended: {exc}", "the gateway ends what it cannot record")
        except (OSError, asyncssh.Error):  # the client went away while we wrote to it
            fields["reason"] = "ended: the client went away"
        finally:
            watcher.cancel()
            self.session.stoppers.discard(stop)
            self.ctx.connections.close_channel(self.session)
            if self.recording is not None:
                self.recording.close()
            self._trail(code, fields)
            with contextlib.suppress(Exception):
                self.chan.exit(code)

    async def _command(self, line: str, fields: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.chan.get_subsystem():
            fields.update(decision="refused", reason="subsystems are not served")
            self._error("the gateway serves no subsystems (no sftp, no scp)")
            return USAGE_ERROR, fields
        try:
            command = commands.parse(line, self.ctx.max_command_length)
        except commands.CommandError as exc:
            fields.update(decision="refused", reason=exc.message)
            self._error(exc.message, exc.hint)
            return USAGE_ERROR, fields
        access = self.session.access
        fields.update(verb=command.verb, namespace=access.grant.namespace, pod=command.pod,
                      container=command.container, argv=list(command.argv))
        verdict = grant.decide(access.grant, command)
        if not verdict.allowed:
            fields.update(decision="refused", reason=verdict.reason)
            self._error(verdict.reason, "ask for a request whose grant holds it; `whoami` "
                                        "shows yours")
            return REFUSED, fields
        if command.verb == commands.SHELL and self.chan.get_terminal_type() is None:
            fields.update(decision="refused", reason="no terminal")
            self._error("shell needs a terminal", "ssh -t ... shell POD")
            return USAGE_ERROR, fields
        fields["decision"] = "allowed"
        try:
            code = await self._run(command)
        except streams.StreamError as exc:
            fields["reason"] = exc.message
            self._error(exc.message)
            return (REFUSED if exc.status == 403 else FAILED), fields
        except ServerError as exc:
            message = exc.status_message or exc.message
            message = f"forbidden: {message}" if exc.status == 403 else message
            fields["reason"] = message
            self._error(message)
            return (REFUSED if exc.status == 403 else FAILED), fields
        except CredHelperError as exc:
            fields["reason"] = exc.message
            self._error(exc.message)
            return FAILED, fields
        return code, fields

    async def _run(self, command: commands.Command) -> int:
        access = self.session.access
        if command.verb == commands.HELP:
            await self._out((commands.USAGE + "\n" + describe(access, self.ctx.clock())).encode())
            return 0
        if command.verb == commands.WHOAMI:
            await self._out(describe(access, self.ctx.clock()).encode())
            return 0
        if command.verb == commands.PODS:
            return await self._pods()
        if command.verb == commands.LOGS:
            return await self._logs(command)
        tty = self.chan.get_terminal_type() is not None
        argv = self.ctx.shell if command.verb == commands.SHELL else command.argv
        return await self._exec(command, argv, tty)

    async def _pods(self) -> int:
        access = self.session.access
        client = self.ctx.cluster.as_person(impersonation(access.spec))
        pods = await asyncio.to_thread(list_pods, client, access.grant.namespace)
        rows = [p for p in pods if grant.pod_allowed(access.grant.pods, p.name)]
        width = max([len(p.name) for p in rows] + [4])
        text = f"{'NAME':<{width}}  {'STATUS':<10}  CONTAINERS\n" + "".join(
            f"{p.name:<{width}}  {p.phase:<10}  {','.join(p.containers)}\n" for p in rows)
        await self._out(text.encode())
        return 0

    async def _logs(self, command: commands.Command) -> int:
        ns = self.session.access.grant.namespace
        query = [("container", command.container)] if command.container else []
        if command.tail is not None:
            query.append(("tailLines", str(command.tail)))
        if command.follow:
            query.append(("follow", "true"))
        ws = await streams.open_stream(target(self.ctx, self.session.access),
                                       f"/api/v1/namespaces/{ns}/pods/{command.pod}/log",
                                       query, streams.LOGS_PROTOCOL)
        try:
            async for message in streams.messages(ws):
                await self._out(message)
        finally:
            await ws.close()
        return 0

    async def _exec(self, command: commands.Command, argv: tuple[str, ...], tty: bool) -> int:
        ns = self.session.access.grant.namespace
        ws = await streams.open_stream(
            target(self.ctx, self.session.access),
            f"/api/v1/namespaces/{ns}/pods/{command.pod}/exec",
            streams.exec_query(command.container, argv, tty), streams.EXEC_PROTOCOL)
        pump = None
        try:
            if tty:
                width, height = self.chan.get_terminal_size()[:2]
                await ws.send(streams.resize_message(width, height))
            pump = asyncio.create_task(self._stdin_to(ws))
            code, message = FAILED, "the stream ended without an exit status"
            async for data in streams.messages(ws):
                if not data:
                    continue
                channel, payload = data[0], data[1:]
                if channel == streams.STDOUT:
                    await self._out(payload)
                elif channel == streams.STDERR:
                    await self._out(payload, self.stderr)
                elif channel == streams.STATUS:
                    code, message = streams.exit_status(payload)
        finally:
            if pump is not None:
                pump.cancel()
            await ws.close()
        if message:
            self._error(message)
        return code

    async def _stdin_to(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                try:
                    data = await self.stdin.read(READ_SIZE)
                except asyncssh.TerminalSizeChanged as size:
                    await ws.send(streams.resize_message(size.width, size.height))
                    if self.recording is not None:
                        self.recording.resize(size.width, size.height)
                    continue
                except (asyncssh.BreakReceived, asyncssh.SignalReceived):
                    continue  # a break or a signal from the client: nothing to pass on
                if not data:
                    await ws.send(bytes([streams.CLOSE, streams.STDIN]))
                    return
                self.received += len(data)
                self.session.touch(self.ctx.clock(), received=len(data))
                await ws.send(bytes([streams.STDIN]) + data)
        except ConnectionClosed:
            return

    # ---- output, recording, trail --------------------------------------------------------

    async def _out(self, data: bytes, writer: Any = None) -> None:
        if self.recording is not None:
            self.recording.output(data)
        (writer or self.stdout).write(data)
        self.sent += len(data)
        self.session.touch(self.ctx.clock(), sent=len(data))
        await (writer or self.stdout).drain()
        if self.session.writable is not None:
            await self.session.writable()

    def _error(self, message: str, hint: str = "") -> None:
        text = f"cred-helper: error: {message}\n" + (f"hint: {hint}\n" if hint else "")
        data = text.encode()
        if self.recording is not None:
            with contextlib.suppress(RecordingStopped):
                self.recording.output(data.replace(b"\n", b"\r\n")
                                      if self.chan.get_terminal_type() else data)
        with contextlib.suppress(OSError, asyncssh.Error):  # a client already gone
            self.stderr.write(data if not self.chan.get_terminal_type()
                              else data.replace(b"\n", b"\r\n"))
            self.sent += len(data)
            self.session.touch(self.ctx.clock(), sent=len(data))

    def _start_recording(self, line: str) -> None:
        width, height = self.chan.get_terminal_size()[:2]
        path = recording_path(self.ctx.recordings, self.session.id, self.session.commands,
                              self.started)
        self.recording = Recording(
            path, width=width or 80, height=height or 24, started=self.started,
            title=f"{self.session.person} on {self.session.access.request}",
            command=line[:4096], term=self.chan.get_terminal_type() or "",
            clock=self.ctx.clock, max_bytes=self.ctx.recording_limit)

    def _trail(self, code: int, fields: dict[str, Any]) -> None:
        access = self.session.access
        self.ctx.trail.write(
            "command", session=self.session.id, who=access.spec.username,
            request=access.request, **fields, exit_code=code, bytes_in=self.received,
            bytes_out=self.sent, start=self.started, end=self.ctx.clock(),
            recording=str(self.recording.path) if self.recording else None)


async def forward(ctx: Context, session: Session, pod: str, port: int, reader: Any,
                  writer: Any) -> None:
    """One `ssh -L` connection to a granted pod port (grant.decide_forward already said
    yes), over the v4 port-forward WebSocket, as the person."""
    from websockets.exceptions import ConnectionClosed

    started = ctx.clock()
    sent = received = 0
    reason = ""
    ns = session.access.grant.namespace
    try:
        ws = await streams.open_stream(target(ctx, session.access),
                                       f"/api/v1/namespaces/{ns}/pods/{pod}/portforward",
                                       [("ports", str(port))], streams.PORTFORWARD_PROTOCOL)
    except (streams.StreamError, asyncio.CancelledError) as exc:
        # Refused, or the session ended during the upgrade (which may have reached the API
        # server already): either way the forward gets its trail line.
        cancelled = isinstance(exc, asyncio.CancelledError)
        reason = (session.ending or "ended") if cancelled else exc.message
        writer.close()
        ctx.connections.close_channel(session)
        _forward_trail(ctx, session, pod, port, started, 0, 0, reason)
        if cancelled:
            raise
        return

    async def upstream() -> None:
        nonlocal received
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                return
            received += len(data)
            session.touch(ctx.clock(), received=len(data))
            await ws.send(bytes([0]) + data)

    # The client's end of input ends the pump alone: a client that sends, then shuts down its
    # writing half, still waits for the answer, until the pod closes or the client closes
    # the channel.
    pump = asyncio.create_task(upstream())
    downstream = asyncio.current_task()
    closed = asyncio.create_task(writer.channel.wait_closed())
    if downstream is not None:  # the client closed its channel: stop reading the pod
        closed.add_done_callback(lambda _: downstream.cancel())
    prefixed: set[int] = set()
    try:
        async for message in streams.messages(ws):
            if not message:
                continue
            channel, payload = message[0], message[1:]
            if channel not in prefixed:  # each channel opens with the port (2 bytes)
                prefixed.add(channel)
                payload = payload[2:]
            if channel == 0 and payload:
                writer.write(payload)
                sent += len(payload)
                session.touch(ctx.clock(), sent=len(payload))
                await writer.drain()
                if session.writable is not None:
                    await session.writable()
            elif channel == 1 and payload:
                reason = server_text(payload.decode("utf-8", "replace"))
                break
    except (ConnectionClosed, ConnectionError, asyncio.CancelledError):
        pass
    finally:
        # Cancelling `closed` runs its callback, which cancels this task at its next await:
        # everything that must happen comes before the one await left.
        closed.cancel()
        pump.cancel()
        writer.close()
        ctx.connections.close_channel(session)
        _forward_trail(ctx, session, pod, port, started, received, sent, reason)
        await ws.close()


def _forward_trail(ctx: Context, session: Session, pod: str, port: int, started: float,
                   received: int, sent: int, reason: str) -> None:
    access = session.access
    ctx.trail.write("command", session=session.id, who=access.spec.username,
                    request=access.request, verb="forward", namespace=access.grant.namespace,
                    pod=pod, port=port, decision="allowed", reason=reason or None,
                    bytes_in=received, bytes_out=sent, start=started, end=ctx.clock())


def describe(access: Access, now: float) -> str:
    """`whoami`: who, the request, its grant, when it ends."""
    spec, g = access.spec, access.grant
    left = max(0, int(access.ends_at - now))
    exec_patterns = " | ".join(" ".join(p) for p in g.exec) or "none"
    return (
        f"you are {spec.username} (groups: {', '.join(spec.groups) or 'none'})\n"
        f"request {access.request}: namespace {g.namespace}, approved by "
        f"{access.decided_by or 'the broker'}, ends {format_time(access.ends_at)} "
        f"(in {left // 60}m{left % 60:02d}s)\n"
        f"reason: {spec.reason or '-'}\n"
        f"grant: commands {', '.join(g.commands) or 'none'}; pods "
        f"{', '.join(g.pods) or 'any'}; exec: {exec_patterns}; shell: "
        f"{'yes' if g.shell else 'no'}; ports: {', '.join(map(str, g.ports)) or 'none'}\n")

