"""An SSH server standing in for the gateway in the client's tests: asyncssh on 127.0.0.1,
trusting one SSH user CA, accepting only certificates from it whose principal is the login name
(asyncssh's own rule for certificates), no passwords, no plain keys. asyncssh also holds a
session to its certificate's extensions: a pty only with `permit-pty`, `ssh -L` only with
`permit-port-forwarding`.

It answers the part of the gateway's command set the client's tests use, as the gateway and
the kubelet stand-in answer it (so that those tests can run against the real gateway by
changing a fixture):
- the command line is split into words as the gateway splits it (`shlex.split`, POSIX rules:
  gateway/commands.py);
- `exec POD [-c C] -- ARGV...` runs ARGV as a local process in the pod's directory (as the
  stand-in does), stdin, stdout and stderr streamed, on a pty when the client asked for one;
  its exit code is the session's;
- `shell POD` runs /bin/sh on a pty, and needs one;
- no command: who logged in; any other verb: exit 2;
- `ssh -L ...:POD:PORT` reaches 127.0.0.1:PORT (as the stand-in forwards a pod's port) for a
  port in `ports`, and is refused for any other.

Each session is recorded in `sessions` (login, command line, words, terminal).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shlex
import struct
import subprocess
import tempfile
import termios
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():
    # asyncssh still imports DSA, which cryptography 51 deprecates: five lines per import.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    import asyncssh

SHELL = ("/bin/sh", "-i")


@dataclass
class Seen:
    login: str
    line: str | None  # None: no command (a shell session)
    words: list[str] = field(default_factory=list)
    term_type: str | None = None
    term_size: tuple[int, int] = (0, 0)
    exit_code: int | None = None


class SshPeer:
    def __init__(self, user_ca_line: str, ports: Iterable[int] = ()) -> None:
        self.user_ca_line = user_ca_line
        self.ports = set(ports)
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.sessions: list[Seen] = []
        self.forwards: list[tuple[str, int, bool]] = []  # (pod, port, allowed)
        self.port = 0
        self._pods = tempfile.TemporaryDirectory(prefix="sshpeer-pods-")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: Any = None

    @property
    def logins(self) -> list[str]:
        return [s.login for s in self.sessions]

    @property
    def host_key_line(self) -> str:
        return " ".join(self.host_key.export_public_key("openssh").decode().split()[:2])

    def pod_dir(self, pod: str) -> Path:
        path = Path(self._pods.name) / pod
        path.mkdir(exist_ok=True)
        return path

    def __enter__(self) -> SshPeer:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._pods.cleanup()

    async def _start(self) -> Any:
        authorized = asyncssh.import_authorized_keys(f"cert-authority {self.user_ca_line}\n")
        peer = self

        class Server(asyncssh.SSHServer):
            def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                                     orig_port: int) -> Any:
                allowed = dest_port in peer.ports
                peer.forwards.append((dest_host, dest_port, allowed))
                if not allowed:
                    raise asyncssh.ChannelOpenError(
                        asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                        f"port {dest_port} of pod {dest_host} is not in your grant")
                return _forward_to(dest_port)

        return await asyncssh.create_server(
            Server, "127.0.0.1", 0, server_host_keys=[self.host_key],
            authorized_client_keys=authorized, process_factory=self._session,
            password_auth=False, kbdint_auth=False, encoding=None, line_editor=False,
            allow_scp=False, agent_forwarding=False, x11_forwarding=False)

    async def _session(self, process: Any) -> None:
        line = process.command
        if isinstance(line, bytes):
            line = line.decode("utf-8", "surrogateescape")
        seen = Seen(process.get_extra_info("username"), line,
                    term_type=process.get_terminal_type(),
                    term_size=tuple(process.get_terminal_size()[:2]))
        self.sessions.append(seen)
        try:
            seen.words = shlex.split(line or "", posix=True)
            seen.exit_code = await self._run(process, seen)
        except ValueError as exc:
            process.stderr.write(f"cred-helper: error: {exc}\n".encode())
            seen.exit_code = 2
        except (OSError, asyncssh.Error):
            seen.exit_code = 1
        with contextlib.suppress(OSError, asyncssh.Error):
            process.exit(seen.exit_code)

    async def _run(self, process: Any, seen: Seen) -> int:
        words = seen.words
        if not words:
            process.stdout.write(f"logged in as {seen.login}\n".encode())
            return 0
        verb, args = words[0], words[1:]
        if verb == "exec" and "--" in args and args.index("--") >= 1:
            pod, argv = args[0], args[args.index("--") + 1:]
            if argv:
                return await _run_local(process, argv, self.pod_dir(pod), seen.term_type)
        if verb == "shell" and args:
            if seen.term_type is None:
                process.stderr.write(b"cred-helper: error: shell needs a terminal\n"
                                     b"hint: ssh -t ... shell POD\n")
                return 2
            return await _run_local(process, list(SHELL), self.pod_dir(args[0]),
                                    seen.term_type)
        process.stderr.write(f"cred-helper: error: unknown command {verb!r}\n".encode())
        return 2


def _forward_to(port: int) -> Any:
    async def handler(reader: Any, writer: Any) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return

        async def pump(src: Any, dst: Any) -> None:
            with contextlib.suppress(OSError, asyncssh.Error):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError, asyncssh.Error):
                dst.write_eof()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        writer.close()
        up_writer.close()

    return handler


async def _run_local(process: Any, argv: list[str], cwd: Path, term: str | None) -> int:
    """ARGV as a process of this machine: pipes, or a pty when the client has a terminal."""
    if term is None:
        try:
            child = await asyncio.create_subprocess_exec(
                *argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE)
        except OSError as exc:
            process.stderr.write(f"cannot run {argv[0]}: {exc.strerror}\n".encode())
            return 127

        async def stdin() -> None:
            with contextlib.suppress(OSError, asyncssh.Error, ConnectionError):
                while data := await process.stdin.read(65536):
                    child.stdin.write(data)
                    await child.stdin.drain()
            with contextlib.suppress(OSError, ConnectionError):
                child.stdin.close()

        async def out(src: Any, dst: Any) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()

        feeding = asyncio.create_task(stdin())
        await asyncio.gather(out(child.stdout, process.stdout),
                             out(child.stderr, process.stderr))
        code = await child.wait()
        feeding.cancel()
        return code
    width, height = process.get_terminal_size()[:2]
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", height or 24, width or 80,
                                                        0, 0))
    try:
        child = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
            env={"PATH": os.environ.get("PATH", os.defpath), "TERM": term, "PS1": "$ "})
    finally:
        os.close(slave)
    loop = asyncio.get_running_loop()
    output: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(master)
        output.put_nowait(data)

    loop.add_reader(master, readable)

    async def typed() -> None:
        with contextlib.suppress(OSError, asyncssh.Error):
            while True:
                try:
                    data = await process.stdin.read(65536)
                except asyncssh.TerminalSizeChanged as size:
                    fcntl.ioctl(master, termios.TIOCSWINSZ,
                                struct.pack("HHHH", size.height, size.width, 0, 0))
                    continue
                if not data:
                    return
                os.write(master, data)

    feeding = asyncio.create_task(typed())
    while data := await output.get():
        process.stdout.write(data)
    code = await child.wait()
    feeding.cancel()
    loop.remove_reader(master)
    os.close(master)
    return code


@contextlib.contextmanager
def agent_with_token_keys(module: str, pin: str, env: dict[str, str],
                          scratch: Path) -> Iterator[dict[str, str]]:
    """A private ssh-agent holding a PKCS#11 module's keys (`ssh-add -s`, the PIN through
    SSH_ASKPASS, as where no terminal is open): yields SSH_AUTH_SOCK for ssh. `env` carries
    what the module needs (SOFTHSM2_CONF): the agent's helper loads it."""
    with private_agent(env) as agent:
        askpass = scratch / "askpass"
        askpass.write_text(f"#!/bin/sh\necho {pin}\n")
        askpass.chmod(0o700)
        added = subprocess.run(["ssh-add", "-s", module], capture_output=True, text=True,
                               timeout=60, stdin=subprocess.DEVNULL,
                               env={"PATH": os.environ["PATH"], **env, **agent,
                                    "SSH_ASKPASS": str(askpass),
                                    "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"})
        assert added.returncode == 0, added.stderr
        yield agent


@contextlib.contextmanager
def private_agent(env: dict[str, str] | None = None) -> Iterator[dict[str, str]]:
    """An ssh-agent of the test's own, empty: yields SSH_AUTH_SOCK."""
    started = subprocess.run(["ssh-agent", "-s"], capture_output=True, text=True,
                             env={"PATH": os.environ["PATH"], **(env or {})}, check=True)
    agent = dict(part.split("=", 1) for part in started.stdout.replace(";", "\n").split()
                 if part.startswith(("SSH_AUTH_SOCK=", "SSH_AGENT_PID=")))
    try:
        yield {"SSH_AUTH_SOCK": agent["SSH_AUTH_SOCK"]}
    finally:
        subprocess.run(["kill", agent["SSH_AGENT_PID"]], check=False)
