"""Running the installed cred-helper and real kubectl against the local API server."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .apiserver import LocalAPIServer

BIN = Path(sys.executable).parent
CRED_HELPER = str(BIN / "cred-helper")
SECRET_MARKERS = ("PRIVATE KEY", "BEGIN CERTIFICATE", "Bearer ")


def as_kubectl_would(*argv: str) -> list[str]:
    """Run argv from its own parent process, as each kubectl process is.

    cred-helper treats a second run from the same parent as client-go retrying after a 401;
    every test subprocess would otherwise share pytest as its parent. The trailing command
    keeps the shell from exec-ing (and so vanishing as the parent).
    """
    return ["/bin/sh", "-c", '"$@"; exit $?', "sh", *argv]


def find_kubectl() -> str | None:
    """Real kubectl: $KUBECTL, a pinned gcloud-SDK build, or one on PATH (the wheel's too)."""
    candidates = [os.environ.get("KUBECTL", ""),
                  "/usr/lib/google-cloud-sdk/bin/kubectl.1.32",
                  shutil.which("kubectl", path=str(BIN)) or "", shutil.which("kubectl") or ""]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


@dataclass
class Sandbox:
    """A private HOME, config and cache for one test, and the server it talks to."""

    root: Path
    server: LocalAPIServer
    token: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache" / "cred-helper"

    @property
    def token_file(self) -> Path:
        return self.root / "bootstrap.token"

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.crt"

    def base_args(self, *extra: str) -> list[str]:
        return ["--issuer=csr", "--ttl=30m", f"--bootstrap-token-file={self.token_file}",
                *extra]

    def run(self, *args: str, exec_info: dict | str | None = None, stdin: str | None = None,
            extra_env: dict[str, str] | None = None, timeout: float = 60
            ) -> subprocess.CompletedProcess:
        env = dict(self.env, **(extra_env or {}))
        if exec_info is not None:
            env["KUBERNETES_EXEC_INFO"] = (exec_info if isinstance(exec_info, str)
                                           else json.dumps(exec_info))
        return subprocess.run(as_kubectl_would(CRED_HELPER, *args), env=env,
                              capture_output=True, text=True, input=stdin or "", timeout=timeout)

    def exec_info(self, api_version: str = "client.authentication.k8s.io/v1",
                  interactive: bool = False, cluster: bool = True) -> dict:
        spec: dict = {"interactive": interactive}
        if cluster:
            spec["cluster"] = self.server.cluster_entry()
        return {"apiVersion": api_version, "kind": "ExecCredential", "spec": spec}

    def kubeconfig(self, args: list[str], api_version: str = "client.authentication.k8s.io/v1",
                   interactive_mode: str = "IfAvailable", name: str = "kubeconfig") -> Path:
        path = self.root / name
        exec_entry = {"apiVersion": api_version, "command": CRED_HELPER, "args": args,
                      "provideClusterInfo": True, "interactiveMode": interactive_mode,
                      "env": [{"name": k, "value": v} for k, v in self.env.items()
                              if k.startswith(("XDG_", "CRED_HELPER_"))]}
        doc = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
               "clusters": [{"name": "test", "cluster": self.server.cluster_entry()}],
               "users": [{"name": "oncall", "user": {"exec": exec_entry}}],
               "contexts": [{"name": "test", "context": {"cluster": "test", "user": "oncall"}}]}
        path.write_text(yaml.safe_dump(doc))
        return path

    def admin_kubeconfig(self) -> Path:
        import base64

        from .apiserver import write_kubeconfig

        path = self.root / "admin.kubeconfig"
        if not path.exists():
            cert, key = self.server.client_cert("admin", ["system:masters"])
            write_kubeconfig(str(path), self.server, {
                "client-certificate-data": base64.b64encode(cert).decode(),
                "client-key-data": base64.b64encode(key).decode()})
        return path

    def kubectl(self, kubectl: str, kubeconfig: Path, *args: str, timeout: float = 120
                ) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.root),
               "KUBECONFIG": str(kubeconfig)}
        return subprocess.run([kubectl, *args], env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)


def profile_kubeconfig(sandbox: Sandbox, args: list[str], provide: bool = True) -> Path:
    """A kubeconfig whose context `prod` runs `cred-helper ARGS` (a profile named in them),
    made KUBECONFIG for the sandbox's runs."""
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "clusters": [{"name": "prod", "cluster": sandbox.server.cluster_entry()}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "oncall"}}],
        "users": [{"name": "oncall", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": "cred-helper",
            "args": args, "interactiveMode": "IfAvailable",
            "provideClusterInfo": provide}}}]}
    path = sandbox.root / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    sandbox.env["KUBECONFIG"] = str(path)
    return path


def on_terminal(argv: list[str], env: dict[str, str], timeout: float = 30,
                script: Sequence[tuple[bytes, bytes]] = (),
                size: tuple[int, int] | None = None) -> tuple[int, str]:
    """Run with stdin, stdout and stderr on one pseudo-terminal (of `size`, rows and columns),
    as a person types it: for each (wait_for, typed) of `script`, once the output holds
    wait_for, type. The exit code and everything the person saw, in order."""
    master, slave = pty.openpty()
    if size:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            close_fds=True, start_new_session=bool(script))
    os.close(slave)
    out = b""
    steps = list(script)
    while True:
        if steps and steps[0][0] in out:
            os.write(master, steps.pop(0)[1])
            continue
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            proc.kill()
            raise AssertionError(f"no output within {timeout}s: {out!r}")
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return proc.wait(timeout), out.decode(errors="replace").replace("\r\n", "\n")


def assert_no_secrets(text: str, *secrets: str) -> None:
    for marker in (*SECRET_MARKERS, *secrets):
        assert marker not in text, f"secret-looking {marker[:12]!r} reached output"


def one_error(stderr: str) -> str:
    """The error line; asserts the shape: one `cred-helper: error:` line, an optional hint."""
    lines = [ln for ln in stderr.splitlines() if not ln.startswith("cred-helper: warning:")
             and not ln.startswith("cred-helper: waiting")]
    assert lines and lines[0].startswith("cred-helper: error: "), stderr
    assert len(lines) <= 2, stderr
    if len(lines) == 2:
        assert lines[1].startswith("hint: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def edit_entry(path: Path, change) -> None:
    """Change a cache entry's fields in place, keeping its checksum valid (as if issued so).

    `change` receives the entry's document (a dict) and edits it.
    """
    from cred_helper.cache.entrydoc import seal, unseal

    doc = json.loads(unseal(path.read_bytes()))
    change(doc)
    path.write_bytes(seal(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()))
