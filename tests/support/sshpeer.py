"""An SSH server for the access-request tests' real `ssh` to log in to (the gateway does not
exist yet): asyncssh on 127.0.0.1, trusting one SSH user CA, accepting only certificates from it
whose principal is the login name (asyncssh's own rule for certificates), no passwords, no plain
keys. Each session prints who logged in and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():
    # asyncssh still imports DSA, which cryptography 51 deprecates: five lines per import.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    import asyncssh


class SshPeer:
    def __init__(self, user_ca_line: str) -> None:
        self.user_ca_line = user_ca_line
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.logins: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: Any = None

    @property
    def host_key_line(self) -> str:
        return " ".join(self.host_key.export_public_key("openssh").decode().split()[:2])

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

    async def _start(self) -> Any:
        authorized = asyncssh.import_authorized_keys(f"cert-authority {self.user_ca_line}\n")

        async def session(process: Any) -> None:
            user = process.get_extra_info("username")
            self.logins.append(user)
            process.stdout.write(f"logged in as {user}\n")
            process.exit(0)

        return await asyncssh.create_server(
            asyncssh.SSHServer, "127.0.0.1", 0, server_host_keys=[self.host_key],
            authorized_client_keys=authorized, process_factory=session,
            password_auth=False, kbdint_auth=False)


@contextlib.contextmanager
def agent_with_token_keys(module: str, pin: str, env: dict[str, str],
                          scratch: Path) -> Iterator[dict[str, str]]:
    """A private ssh-agent holding a PKCS#11 module's keys (`ssh-add -s`, the PIN through
    SSH_ASKPASS, as where no terminal is open): yields SSH_AUTH_SOCK for ssh. `env` carries
    what the module needs (SOFTHSM2_CONF): the agent's helper loads it."""
    askpass = scratch / "askpass"
    askpass.write_text(f"#!/bin/sh\necho {pin}\n")
    askpass.chmod(0o700)
    env = {"PATH": os.environ["PATH"], **env}
    started = subprocess.run(["ssh-agent", "-s"], capture_output=True, text=True, env=env,
                             check=True)
    agent = dict(part.split("=", 1) for part in started.stdout.replace(";", "\n").split()
                 if part.startswith(("SSH_AUTH_SOCK=", "SSH_AGENT_PID=")))
    try:
        added = subprocess.run(["ssh-add", "-s", module], capture_output=True, text=True,
                               timeout=60, stdin=subprocess.DEVNULL,
                               env={**env, **agent, "SSH_ASKPASS": str(askpass),
                                    "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"})
        assert added.returncode == 0, added.stderr
        yield {"SSH_AUTH_SOCK": agent["SSH_AUTH_SOCK"]}
    finally:
        subprocess.run(["kill", agent["SSH_AGENT_PID"]], check=False)
