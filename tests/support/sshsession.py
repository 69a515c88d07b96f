"""A person whose cache already holds a signed access request (what `cred-helper ssh-config`
or `cred-helper ssh` keeps after the broker signed), for the client's tests and bench: a home
of their own, a profile `prod` naming the gateway, its pinned host key and the SSH user CA,
and the request's entry in the cache under the key the CLI computes for these flags. The CLI
then takes the warm path: no API server, straight to ssh.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from cred_helper import accessrequest as ar
from cred_helper import config
from cred_helper.broker.sshsign import SshCa, sign
from cred_helper.sshaccess import flow
from cred_helper.sshaccess import settings as sshsettings
from cred_helper.sshaccess.sshkey import SshKey, fresh
from cred_helper.sshaccess.store import ISSUED, SshEntry, SshStore

from .harness import CRED_HELPER

USER = "alice@example.com"
GROUPS = ("oncall", "system:authenticated")
NAME = "alice-example-com-20261207-100000-abc123"


class Holder:
    """Alice at her terminal, her request signed and cached."""

    def __init__(self, home: Path, gateway_port: int, host_key: str, ca: SshCa,
                 cache_dir: Path | None = None, server: str = "https://127.0.0.1:9") -> None:
        self.home = home
        self.ca = ca
        (home / "config" / "cred-helper").mkdir(parents=True, exist_ok=True)
        (home / "ssh-ca.pub").write_text(ca.public_line + "\n")
        self.config = home / "config" / "cred-helper" / "config.toml"
        # The cluster is never reached while the certificate is valid: a closed port, so a
        # run that tries shows it.
        self.config.write_text(
            f'[clusters.prod]\nissuer = "csr"\nserver = "{server}"\n'
            f'bootstrap-token-file = "{home / "token"}"\nnamespace = "payments"\n'
            f'gateway = "127.0.0.1:{gateway_port}"\ngateway-host-key = "{host_key}"\n'
            f'ssh-user-ca = "{home / "ssh-ca.pub"}"\n')
        (home / "token").write_text("not-used\n")
        (home / "token").chmod(0o600)
        self.env = {"PATH": os.environ["PATH"], "HOME": str(home),
                    "XDG_CONFIG_HOME": str(home / "config"),
                    "XDG_CACHE_HOME": str(home / "cache"), "LANG": "C.UTF-8"}
        if cache_dir is not None:
            self.env["CRED_HELPER_CACHE_DIR"] = str(cache_dir)

    @property
    def cache_dir(self) -> Path:
        return Path(self.env.get("CRED_HELPER_CACHE_DIR") or self.home / "cache" / "cred-helper")

    @property
    def ssh_dir(self) -> Path:
        return self.cache_dir / "ssh"

    def entry_key(self, pods: tuple[str, ...] = (), ssh_key: str | None = None) -> str:
        """The key the CLI computes for `--cluster prod` (and these pods and key): the same
        functions, the same profile."""
        flags = {"cluster": "prod", "pod": pods, "reason": "INC-42", "ssh_key": ssh_key}
        settings = config.resolve(flags, self.env)
        table = config.load_config_file(str(self.config), named=True)["clusters"]["prod"]
        ssh = sshsettings.resolve(flags, table, "prod")
        return flow.entry_key(settings.cache_key(None), ssh)

    def hold(self, grant: ar.Grant, *, key: SshKey | None = None, name: str = NAME,
             pods: tuple[str, ...] = (), seconds: int = 1800, ssh_key: str | None = None,
             now: float | None = None, ca: SshCa | None = None,
             certificate: str = "") -> SshEntry:
        """Put a request into the cache, as the CLI keeps it: its certificate signed here by
        the CA (or `ca`), or one signed elsewhere (a request the real gateway reads)."""
        key = key or fresh()
        now = time.time() if now is None else now
        from cryptography.hazmat.primitives.serialization import load_ssh_public_key

        cert = certificate or sign(ca or self.ca, load_ssh_public_key(key.public_line.encode()),
                                   name, USER, grant, now, seconds).line
        entry = SshEntry(
            key=self.entry_key(pods, ssh_key), profile="prod", alias="prod-payments",
            server="https://127.0.0.1:9", name=name, state=ISSUED, created=now,
            seconds=seconds, namespace=grant.namespace, pods=pods, reason="INC-42",
            username=USER, groups=GROUPS, ssh_key=ssh_key or "ed25519",
            public_line=key.public_line, private_openssh=key.private_openssh.decode(),
            certificate=cert, issued_at=now, not_after=now + seconds,
            grant=grant.to_json())
        SshStore(str(self.cache_dir), print).save(entry)
        return entry

    def argv(self, *args: str) -> list[str]:
        return [CRED_HELPER, "ssh", "--cluster", "prod", "--reason", "INC-42", *args]

    def ssh(self, *args: str, input: bytes | str = "", timeout: float = 60,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """`cred-helper ssh --cluster prod --reason INC-42 ARGS...`, stdin not a terminal."""
        return subprocess.run(self.argv(*args), env={**self.env, **(env or {})},
                              capture_output=True, timeout=timeout, input=input,
                              text=isinstance(input, str))

    def cred_helper(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([CRED_HELPER, *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
