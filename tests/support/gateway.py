"""Test support for the SSH gateway on a real control plane with the kubelet stand-in:

- the AccessRequest CRD and the gateway's RBAC (packaging/kubernetes/gateway/rbac.yaml)
  applied as an admin would;
- people with client certificates of the cluster's client CA (as cred-helper issues them), a
  request created by its requester with the identity SelfSubjectReview shows;
- the broker's part played here: a test SSH user CA signs the request's key with
  cryptography's SSHCertificateBuilder (key id `<name>:<user>`, the name as its one principal,
  extensions by the grant) and the test writes `status` (Approved, grant, expiresAt,
  certificate) as the broker would;
- `cred-helper gateway run` as a process, with a ServiceAccount token of its own;
- OpenSSH's `ssh` as the client (`-F /dev/null`, the gateway's host key pinned).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from cred_helper import accessrequest as ar

from .controlplane import ADMIN, SELF_REVIEW, ControlPlane, rbac_rule, role_and_binding

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "cred_helper" / "manifests" / "accessrequest-crd.yaml"
GATEWAY_MANIFESTS = ROOT / "packaging" / "kubernetes" / "gateway"
CRED_HELPER = str(Path(sys.executable).parent / "cred-helper")
GATEWAY_SA = "system:serviceaccount:cred-helper:cred-helper-gateway"
PEOPLE = ("alice@example.com", "bob@example.com")  # the people with client certificates here

# What people may do with access requests in these tests (issue 26 ships the real RBAC).
REQUESTER_RBAC = role_and_binding(
    "test-accessrequest-requester",
    [rbac_rule("access.cred-helper.dev", ["accessrequests"], ["create", "get", "list", "watch"]),
     SELF_REVIEW], "Group", "oncall")


def _openssh_private(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption())


def _openssh_public(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


class UserCA:
    """An SSH user CA (the broker's signing key)."""

    def __init__(self) -> None:
        self.key = ed25519.Ed25519PrivateKey.generate()

    @property
    def public_line(self) -> str:
        return _openssh_public(self.key)

    def sign(self, public_line: str, principals: list[str], *, key_id: str,
             valid_after: float, valid_before: float, extensions: tuple[str, ...] = (),
             critical: dict[str, str] | None = None, host: bool = False) -> str:
        public = serialization.load_ssh_public_key(public_line.encode())
        builder = (serialization.SSHCertificateBuilder()
                   .public_key(public)
                   .type(serialization.SSHCertificateType.HOST if host
                         else serialization.SSHCertificateType.USER)
                   .serial(secrets.randbits(63)).key_id(key_id.encode())
                   .valid_after(int(valid_after)).valid_before(int(valid_before)))
        # No principal at all: valid for every login name (OpenSSH's and asyncssh's rule).
        builder = builder.valid_principals([p.encode() for p in principals]) if principals \
            else builder.valid_for_all_principals()
        for name in sorted(extensions):
            builder = builder.add_extension(name.encode(), b"")
        for name, value in sorted((critical or {}).items()):
            builder = builder.add_critical_option(name.encode(), value.encode())
        return builder.sign(self.key).public_bytes().decode()


@dataclass
class Key:
    """A person's SSH key pair on disk, as ssh reads it (`key`, `key-cert.pub`)."""

    path: Path
    public_line: str

    @property
    def cert_path(self) -> Path:
        return self.path.with_name(self.path.name + "-cert.pub")

    def write_cert(self, line: str) -> None:
        self.cert_path.write_text(line + "\n")


def new_key(directory: Path, name: str, kind: str = "ed25519") -> Key:
    key = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else \
        ec.generate_private_key(ec.SECP256R1())
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(_openssh_private(key))
    return Key(path, _openssh_public(key))


@dataclass
class Person:
    name: str
    groups: list[str]
    kubeconfig: Path

    @property
    def review_groups(self) -> list[str]:
        """Their groups as SelfSubjectReview shows them."""
        return [*self.groups, "system:authenticated"]


def person(plane: ControlPlane, directory: Path, name: str, groups: list[str]) -> Person:
    """Someone holding a client certificate of the cluster (what cred-helper issues)."""
    cert, key = plane.client_ca.client_cert(name, groups)
    path = directory / f"{name.split('@')[0]}.kubeconfig"
    plane.write_kubeconfig(path, {"client-certificate-data": _b64(cert),
                                  "client-key-data": _b64(key)})
    return Person(name, groups, path)


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def kubectl_as(plane: ControlPlane, who: Person, *args: str, stdin: str | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([plane.kubectl_path, f"--kubeconfig={who.kubeconfig}", *args],
                          input=stdin, capture_output=True, text=True, timeout=timeout)


def install(plane: ControlPlane) -> None:
    """The CRD, the gateway's RBAC, and what people may do with requests."""
    plane.kubectl("apply", "-f", str(CRD))
    plane.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                  "crd/accessrequests.access.cred-helper.dev")
    plane.kubectl("apply", "-f", "-", stdin="apiVersion: v1\nkind: Namespace\n"
                                            "metadata: {name: cred-helper}\n")
    plane.kubectl("apply", "-f", str(GATEWAY_MANIFESTS / "rbac.yaml"))
    plane.kubectl("apply", "-f", "-", stdin=REQUESTER_RBAC)


def namespace(plane: ControlPlane, name: str, oncall_group: str | None = "oncall") -> str:
    """A namespace with the `default` ServiceAccount (no kcm controller makes it here) and,
    unless None, the on-call Role of `setup --print-rbac` bound to the group."""
    from cred_helper import rbac

    plane.kubectl("create", "namespace", name)
    plane.kubectl("create", "serviceaccount", "default", "-n", name)
    if oncall_group:  # what `cred-helper setup --print-rbac --apply` applies
        plane.kubectl("apply", "-f", "-",
                      stdin=rbac.api_objects(rbac.Team(oncall_group, (name,))))
    return name


def pod(plane: ControlPlane, namespace: str, name: str, containers: tuple[str, ...] = ("app",),
        ports: tuple[int, ...] = ()) -> Path:
    """A pod on the stand-in, Running; returns its directory (where exec runs)."""
    spec = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"nodeName": plane.NODE, "automountServiceAccountToken": False,
                     "containers": [{"name": c, "image": "example/app:1",
                                     "ports": [{"containerPort": p} for p in ports]}
                                    for c in containers]}}
    plane.kubectl("create", "-f", "-", stdin=json.dumps(spec))
    deadline = time.monotonic() + 30
    while plane.kubectl("get", "pod", "-n", namespace, name, "-o",
                        "jsonpath={.status.phase}") != "Running":
        if time.monotonic() > deadline:
            raise RuntimeError(f"pod {namespace}/{name} did not start on the stand-in")
        time.sleep(0.1)
    return plane.pod_dir(namespace, name)


def create_request(plane: ControlPlane, who: Person, name: str, key: Key, namespace: str,
                   pods: tuple[str, ...] = (), seconds: int = 1800,
                   reason: str = "INC-42") -> dict:
    """The request, created by its requester with exactly their identity: SelfSubjectReview's
    user info, as `cred-helper ssh-config` copies it (admission refuses anything else)."""
    review = kubectl_as(plane, who, "auth", "whoami", "-o", "json")
    if review.returncode != 0:
        raise RuntimeError(review.stderr)
    info = json.loads(review.stdout)["status"]["userInfo"]
    spec = {"username": info["username"], "groups": info.get("groups", []),
            "publicKey": key.public_line, "namespace": namespace, "pods": list(pods),
            "reason": reason, "expirationSeconds": seconds}
    spec.update({k: info[k] for k in ("uid", "extra") if info.get(k)})
    body = {"apiVersion": ar.API_VERSION, "kind": ar.KIND, "metadata": {"name": name},
            "spec": spec}
    done = kubectl_as(plane, who, "create", "-o", "json", "-f", "-", stdin=json.dumps(body))
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return json.loads(done.stdout)


def extensions_for(grant: dict) -> tuple[str, ...]:
    """The broker's extensions: a terminal only for a shell, forwarding only for ports."""
    out = []
    if grant.get("shell"):
        out.append("permit-pty")
    if grant.get("ports"):
        out.append("permit-port-forwarding")
    return tuple(out)


@dataclass
class Decided:
    name: str
    certificate: str
    expires_at: float


def approve(plane: ControlPlane, ca: UserCA, name: str, key: Key, grant: dict, *,
            lifetime: float = 1800, username: str = "", not_before: float | None = None,
            certificate: str | None = None, write_cert: bool = True) -> Decided:
    """Decide the request as the broker would: sign its key, write status (as the plane's
    admin, whom admission lets sign, so `decidedBy` is the admin: a decision names its
    writer). `certificate` replaces what is written (to write something the broker never
    would)."""
    now = time.time()
    request = json.loads(plane.kubectl("get", "accessrequest", name, "-o", "json"))
    username = username or request["spec"]["username"]
    ends = now + lifetime
    cert = certificate or ca.sign(
        key.public_line, [ar.principal(name)], key_id=ar.key_id(name, username),
        valid_after=not_before if not_before is not None else now - 60, valid_before=ends,
        extensions=extensions_for(grant))
    status = {"status": {
        "conditions": [{"type": "Approved", "status": "True", "reason": "rule oncall",
                        "message": "approved by the test's broker", "decidedBy": ADMIN[0],
                        "lastTransitionTime": ar.format_time(now)}],
        "certificate": cert, "grant": grant, "expiresAt": ar.format_time(ends)}}
    plane.kubectl("patch", "accessrequest", name, "--subresource=status", "--type=merge",
                  "-p", json.dumps(status))
    if write_cert:
        key.write_cert(cert)
    return Decided(name, cert, ends)


def deny(plane: ControlPlane, name: str, reason: str = "revoked") -> None:
    """Deny as the plane's admin (admission: `decidedBy` is the writer's own name), as
    `cred-helper deny --reason REASON` writes it."""
    request = json.loads(plane.kubectl("get", "accessrequest", name, "-o", "json"))
    conditions = request.get("status", {}).get("conditions", [])
    conditions.append({"type": "Denied", "status": "True", "reason": "DeniedByPerson",
                       "message": reason, "decidedBy": ADMIN[0],
                       "lastTransitionTime": ar.format_time(time.time())})
    plane.kubectl("patch", "accessrequest", name, "--subresource=status", "--type=merge",
                  "-p", json.dumps({"status": {"conditions": conditions}}))


@dataclass
class Gateway:
    """`cred-helper gateway run` as a process, on 127.0.0.1 and a free port."""

    proc: subprocess.Popen
    port: int
    host_public: str
    recordings: Path
    known_hosts: Path
    stderr_path: Path
    _lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Read the trail as it comes: a full pipe would stop the gateway (its writes block).
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self._lines.append(line.decode())

    def trail(self, timeout: float = 0) -> list[dict]:
        """Every JSON line the gateway wrote so far (after waiting `timeout` for more)."""
        if timeout:
            time.sleep(timeout)
        return [json.loads(line) for line in list(self._lines)]

    def wait_trail(self, match, timeout: float = 15) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.trail(0.1):
                if match(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no such trail line in {self.trail()}\n{self.stderr()}")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def gateway_token(plane: ControlPlane) -> str:
    return plane.kubectl("create", "token", "-n", "cred-helper", "cred-helper-gateway",
                         "--duration=2h").strip()


def start_gateway(plane: ControlPlane, ca: UserCA | None, directory: Path, *args: str,
                  token: str = "", ca_lines: str | None = None,
                  host_key: Path | None = None) -> Gateway:
    """`ca_lines` (the --user-ca file's text) instead of `ca`'s key; `host_key` an OpenSSH
    private key file of the site's instead of a fresh one."""
    directory.mkdir(parents=True, exist_ok=True)
    if host_key is None:
        host_key = directory / "ssh_host_ed25519_key"
        host_key.write_bytes(_openssh_private(ed25519.Ed25519PrivateKey.generate()))
        host_key.chmod(0o600)
    host = serialization.load_ssh_private_key(host_key.read_bytes(), None)
    user_ca = directory / "user_ca.pub"
    user_ca.write_text(ca_lines if ca_lines is not None else ca.public_line + "\n")
    kubeconfig = plane.write_kubeconfig(directory / "gateway.kubeconfig",
                                        {"token": token or gateway_token(plane)})
    recordings = directory / "recordings"
    stderr_path = directory / "gateway.stderr"
    proc = subprocess.Popen(
        [CRED_HELPER, "gateway", "run", f"--kubeconfig={kubeconfig}", "--listen=127.0.0.1:0",
         f"--host-key={host_key}", f"--user-ca={user_ca}", f"--recordings={recordings}",
         # Every client of the tests comes from 127.0.0.1, 20 people's logins at once among
         # them; a test of the limit itself gives its own value (the last one counts).
         "--max-logging-in-per-address=100", *args],
        stdout=subprocess.PIPE, stderr=open(stderr_path, "wb"),  # noqa: SIM115
        stdin=subprocess.DEVNULL, env={"PATH": os.environ.get("PATH", ""),
                                       "HOME": str(directory)})
    deadline = time.monotonic() + 60
    port = 0
    while not port:
        text = stderr_path.read_text(errors="replace")
        for line in text.splitlines():
            if "listening on" in line:
                port = int(line.rsplit(":", 1)[1])
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the gateway did not start:\n{text}")
        time.sleep(0.05)
    public = _openssh_public(host)
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {public}\n")
    return Gateway(proc, port, public, recordings, known_hosts, stderr_path)


def ssh_argv(gateway: Gateway, key: Key, login: str, *command: str, tty: bool = False,
             options: tuple[str, ...] = (), identity: bool = True) -> list[str]:
    argv = ["ssh", "-F", "/dev/null", "-p", str(gateway.port),
            "-o", f"UserKnownHostsFile={gateway.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=20"]
    if identity:
        argv += ["-o", f"IdentityFile={key.path}", "-o", f"CertificateFile={key.cert_path}"]
    argv += ["-tt" if tty else "-T", *options, f"{login}@127.0.0.1"]
    if command:
        argv.append(" ".join(command))
    return argv


def ssh(gateway: Gateway, key: Key, login: str, *command: str, stdin: str | bytes = b"",
        tty: bool = False, options: tuple[str, ...] = (), timeout: float = 60
        ) -> subprocess.CompletedProcess:
    """`ssh login@gateway COMMAND`: the words of `command` are sent joined by spaces, as ssh
    sends its arguments."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    done = subprocess.run(ssh_argv(gateway, key, login, *command, tty=tty, options=options),
                          input=data, capture_output=True, timeout=timeout,
                          env={"PATH": os.environ.get("PATH", ""), "HOME": str(key.path.parent)})
    return subprocess.CompletedProcess(done.args, done.returncode,
                                       done.stdout.decode("utf-8", "replace"),
                                       done.stderr.decode("utf-8", "replace"))


async def connect(gateway: Gateway, key: Key, login: str):
    """asyncssh's client with the request's certificate: it sends what OpenSSH's `ssh` will
    not (NUL bytes and newlines in a command, any number of channels, any -L host)."""
    from cred_helper.gateway.sshlib import asyncssh

    return await asyncssh.connect(
        "127.0.0.1", gateway.port, username=login, known_hosts=None,
        client_keys=[(str(key.path), str(key.cert_path))], agent_path=None,
        config=[], preferred_auth="publickey")


def grant(namespace: str, *, pods: tuple[str, ...] = (), commands=("pods", "logs", "exec"),
          exec_patterns: tuple[tuple[str, ...], ...] = (), shell: bool = False,
          ports: tuple[int, ...] = ()) -> dict:
    return {"namespace": namespace, "pods": list(pods), "commands": list(commands),
            "exec": [list(p) for p in exec_patterns], "shell": shell, "ports": list(ports)}


@contextlib.contextmanager
def pod_http_server(body: bytes):
    """An HTTP server on 127.0.0.1 answering every GET with `body`: a pod's port, as the
    stand-in forwards to it. Yields the port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def closed_at_once(port: int) -> bool:
    """Whether a connection to 127.0.0.1:`port` (an `ssh -L` listener) is closed or reset
    unanswered: the gateway refused ssh's channel."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.settimeout(10)
        try:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return s.recv(100) == b""
        except ConnectionResetError:
            return True


def audit_ids(plane: ControlPlane) -> set[str]:
    return {e["auditID"] for e in plane.audit_events()}


def gateway_calls(plane: ControlPlane, since: set[str]) -> list[dict]:
    """The gateway ServiceAccount's audited requests not in `since` (auditIDs), beside its
    own reads of access requests."""
    return [e for e in plane.audit_events() if e["user"]["username"] == GATEWAY_SA
            and e["auditID"] not in since
            and e.get("objectRef", {}).get("resource") != "accessrequests"]


def audited(plane: ControlPlane, marker: str, timeout: float = 10) -> list[dict]:
    """The audit events whose requestURI holds `marker` (an exec's argv word), once any came."""
    deadline = time.monotonic() + timeout
    while True:
        events = [e for e in plane.audit_events() if marker in e.get("requestURI", "")]
        if events or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def yaml_objects(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@dataclass
class World:
    """What the gateway tests share (tests/realcluster/conftest.py: gateway_world)."""

    plane: ControlPlane
    directory: Path
    ca: UserCA
    payments: str
    ledger: str
    alice: Person
    bob: Person
    gateway: Gateway | None = None
    pod_dirs: dict[str, Path] = field(default_factory=dict)

    def request(self, grant_doc: dict, *, who: Person | None = None, lifetime: float = 1800,
                namespace: str = "", key_kind: str = "ed25519", approve_it: bool = True
                ) -> tuple[str, Key]:
        """A new request of `who` (alice) for the grant's namespace, approved with that
        grant as the broker would; its name and key."""
        who = who or self.alice
        name = f"ar-{secrets.token_hex(4)}"
        key = new_key(self.directory, name, key_kind)
        create_request(self.plane, who, name, key, namespace or grant_doc["namespace"])
        if approve_it:
            approve(self.plane, self.ca, name, key, grant_doc, lifetime=lifetime)
        return name, key
