"""A throwaway real control plane on loopback: etcd, kube-apiserver and kube-controller-manager
(CSR signing and cleaning only), built by tests/controlplane/build.py.

kube-apiserver trusts one test CA for clients, and serves with a certificate from it;
kube-controller-manager signs `kubernetes.io/kube-apiserver-client` certificates with that CA
(as kubeadm does; `separate_client_ca` gives clients and the signer a CA of their own, which
`rotate_client_ca` replaces). Static tokens name an admin (`system:masters`) and the bootstrap
identity. The audit log records every request of the people the tests play, and every
request about a CSR (`audit_events`).
Every port is free and random; readiness is `/readyz`; `stop()` ends every process.

`start_node(binary)` adds a node: the kubelet stand-in (tests/controlplane/standin), which
kube-apiserver reaches over TLS verified both ways, runs the pods bound to it.
`audit_policy=` replaces the audit policy for one plane.

With `oidc=OidcSettings(...)` kube-apiserver also trusts an OpenID provider through the
structured authentication configuration (`--authentication-config`, apiserver.config.k8s.io/v1),
beside the static tokens: one JWT authenticator whose issuer is the https provider, trusted
through its CA alone, audience the client id, username from `email` and groups from `groups`
with no prefix (see `authentication_config`).
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .pki import CA, key_pem, pem

ADMIN = ("admin", ["system:masters"])
BOOTSTRAP = ("alice@example.com", ["oncall", "sre", "oncall-bootstrap"])

def rbac_rule(group: str, resources: list[str], verbs: list[str]) -> dict:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


def role_and_binding(name: str, rules: list[dict], subject_kind: str, subject: str,
                     namespace: str = "") -> str:
    """A role holding `rules` and its binding to one subject (kind User or Group), both
    called `name`, as one List for `kubectl apply -f -`: a ClusterRole and its
    ClusterRoleBinding, or with `namespace` a Role and RoleBinding there."""
    kind = "Role" if namespace else "ClusterRole"
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    group = "rbac.authorization.k8s.io"
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": f"{group}/v1", "kind": kind, "metadata": meta, "rules": rules},
        {"apiVersion": f"{group}/v1", "kind": f"{kind}Binding", "metadata": meta,
         "roleRef": {"apiGroup": group, "kind": kind, "name": name},
         "subjects": [{"apiGroup": group, "kind": subject_kind, "name": subject}]}]})


# What a requester of certificates needs: CSRs, and who they are (SelfSubjectReview).
SELF_REVIEW = rbac_rule("authentication.k8s.io", ["selfsubjectreviews"], ["create"])
REQUESTER_RULES = [rbac_rule("certificates.k8s.io", ["certificatesigningrequests"],
                             ["create", "get", "list", "watch"]), SELF_REVIEW]
REQUESTER_RBAC = role_and_binding("cred-helper-requester", REQUESTER_RULES, "Group",
                                  "oncall-bootstrap")


# Metadata for the people the tests play and for every request about a CSR (whoever makes
# it: approvers, kubectl, the signer), so that a test counts what was asked instead of
# sleeping and looking whether anything more happened; nothing for the rest of the control
# plane's own traffic.
AUDIT_POLICY = f"""
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  users: ["{BOOTSTRAP[0]}"]
- level: Metadata
  resources:
  - group: certificates.k8s.io
    resources: [certificatesigningrequests, certificatesigningrequests/approval,
                certificatesigningrequests/status]
- level: None
"""
@dataclass(frozen=True)
class OidcSettings:
    """An OpenID provider for kube-apiserver's JWT authenticator: its https issuer URL (exactly
    the discovery document's `issuer`), the PEM of the CA that signed its serving certificate,
    and the client id that ID tokens must carry as their audience."""

    issuer: str
    ca_pem: bytes
    client_id: str


def authentication_config(oidc: OidcSettings) -> dict:
    """The AuthenticationConfiguration for `oidc`.

    Names are prefix-free (`prefix: ""` is how v1 says so; a `claim` without a prefix is
    refused): the provider's alice is `alice@example.com` in groups `oncall` and `sre`, the same
    names as the static bootstrap token's, so the on-call RBAC applies to her either way and a
    certificate bootstrapped from her ID token names the person the provider vouched for. A
    cluster whose other authenticators could issue the same names should set a prefix instead.

    The username comes from `email`. With `claim: email` the authenticator itself refuses a
    token whose `email_verified` is present and false; the claim rule also refuses one without
    `email_verified`, as an unverified address must never become a Kubernetes name.
    """
    return {
        "apiVersion": "apiserver.config.k8s.io/v1", "kind": "AuthenticationConfiguration",
        "jwt": [{
            "issuer": {"url": oidc.issuer, "audiences": [oidc.client_id],
                       "certificateAuthority": oidc.ca_pem.decode()},
            "claimValidationRules": [{
                "expression": "claims.?email_verified.orValue(false) == true",
                "message": "the provider has not verified the email address"}],
            "claimMappings": {"username": {"claim": "email", "prefix": ""},
                              "groups": {"claim": "groups", "prefix": ""}},
        }],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _private(path: Path, data: bytes | str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
    return path


class ControlPlane:
    def __init__(self, bin_dir: Path, oidc: OidcSettings | None = None,
                 separate_client_ca: bool = False,
                 extra_controllers: tuple[str, ...] = (),
                 apiserver_args: tuple[str, ...] = (), audit_policy: str = "") -> None:
        self.bin = Path(bin_dir)
        self.audit_policy = audit_policy  # empty: AUDIT_POLICY as it is when the plane starts
        self.apiserver_args = apiserver_args  # more kube-apiserver flags, for one test's plane
        # More kcm controllers beside CSR signing and cleaning (the janitor's `disruption`).
        self.extra_controllers = extra_controllers
        self.oidc = oidc
        self.dir = Path(tempfile.mkdtemp(prefix="controlplane-"))
        self.ca = CA("cred-helper-test-cluster-ca")
        # Trusted for client certificates, and the CSR signer's: the cluster CA unless apart.
        self.client_ca = CA("cred-helper-test-client-ca") if separate_client_ca else self.ca
        self.args: dict[str, list[str]] = {}
        self.admin_token = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
        self.bootstrap_token = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
        self.port = free_port()
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubectl_path(self) -> str:
        return str(self.bin / "kubectl")

    def cluster_entry(self) -> dict:
        return {"server": self.url,
                "certificate-authority-data": base64.b64encode(self.ca.cert_pem).decode()}

    # ---- life cycle ------------------------------------------------------------------------

    def start(self) -> ControlPlane:
        try:
            self._start_etcd()
            self._start_apiserver()
            self._wait_ready(self.url + "/readyz", timeout=120)
            self._start_controller_manager()
            self.kubectl("apply", "-f", "-", stdin=REQUESTER_RBAC)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        # Clients before servers, whatever order restarts left: a kube-apiserver stopped
        # while kcm still watches it waits out its grace period.
        order = ["kube-controller-manager", "kube-apiserver", "etcd"]
        for name in sorted(self.procs, key=lambda n: order.index(n) if n in order else -1):
            self.halt(name)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def halt(self, name: str) -> None:
        """Stop one component (a crash, an upgrade's first half). kube-apiserver closes its
        listener at once on SIGTERM, then lingers with watches open for half a minute before
        it exits: after a few seconds it is killed, which clients cannot tell apart."""
        proc = self.procs.pop(name)
        if proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def resume(self, name: str) -> None:
        """Start a halted component again as it was. One still running is left as it is: a
        second would replace it in `procs`, and the first would outlive the plane (a test
        that failed before its halt still resumes in its `finally`)."""
        running = self.procs.get(name)
        if running is not None and running.poll() is None:
            return
        self._run(name, self.args[name])
        if name == "kube-apiserver":
            self._wait_ready(self.url + "/readyz", timeout=120)

    def restart(self, name: str) -> None:
        self.halt(name)
        self.resume(name)

    def rotate_client_ca(self) -> CA:
        """A new client CA and signer: certificates from the old one stop being accepted."""
        assert self.client_ca is not self.ca, "start with separate_client_ca=True"
        self.client_ca = CA("cred-helper-test-client-ca-rotated")
        self._write_client_ca()
        self.restart("kube-apiserver")
        self.restart("kube-controller-manager")
        return self.client_ca

    def _write_client_ca(self) -> None:
        _private(self.dir / "client-ca.crt", self.client_ca.cert_pem)
        _private(self.dir / "client-ca.key", key_pem(self.client_ca.key))

    def audit_events(self, user_agent_prefix: str = "") -> list[dict]:
        """The bootstrap user's requests and every request about a CSR, one event per request
        in the order they came (a watch is logged when it starts and again when it ends),
        optionally only those whose User-Agent starts with a prefix."""
        path = self.dir / "audit.log"
        requests: dict[str, dict] = {}
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if event.get("userAgent", "").startswith(user_agent_prefix):
                requests.setdefault(event["auditID"], event)
        return list(requests.values())

    def _run(self, name: str, args: list[str]) -> None:
        self.args[name] = args
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115  (the process keeps it)
        self.procs[name] = subprocess.Popen([str(self.bin / name), *args], stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def log(self, name: str) -> str:
        return (self.dir / f"{name}.log").read_text(errors="replace")[-4000:]

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        self._run("etcd", [
            "--name=default", f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}", f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=default=http://127.0.0.1:{peer}",
            "--log-level=warn", "--quota-backend-bytes=268435456"])

    def _start_apiserver(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        d = self.dir
        cert, key = self.ca.server_cert()
        _private(d / "serving.crt", cert + self.ca.cert_pem)
        _private(d / "serving.key", key)
        (d / "ca.crt").write_bytes(self.ca.cert_pem)  # the cluster CA, for tests' clients
        self._write_client_ca()
        (d / "audit-policy.yaml").write_text(self.audit_policy or AUDIT_POLICY)
        # How kube-apiserver reaches a node's kubelet API (start_node): both ends verified.
        kubelet_cert, kubelet_key = self.ca.client_cert("kube-apiserver-kubelet-client", [])
        _private(d / "kubelet-client.crt", kubelet_cert)
        _private(d / "kubelet-client.key", kubelet_key)
        sa = rsa.generate_private_key(65537, 2048)
        _private(d / "sa.key", key_pem(sa))
        _private(d / "tokens.csv", "".join(
            f'{token},{user},{user},"{",".join(groups)}"\n' for token, (user, groups) in
            ((self.admin_token, ADMIN), (self.bootstrap_token, BOOTSTRAP))))
        authn = []
        if self.oidc:
            _private(d / "authn.yaml", yaml.safe_dump(authentication_config(self.oidc)))
            authn = [f"--authentication-config={d / 'authn.yaml'}"]
        self._run("kube-apiserver", [
            *authn, f"--etcd-servers={self.etcd_url}", "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1", f"--secure-port={self.port}",
            f"--tls-cert-file={d / 'serving.crt'}", f"--tls-private-key-file={d / 'serving.key'}",
            f"--client-ca-file={d / 'client-ca.crt'}", f"--token-auth-file={d / 'tokens.csv'}",
            f"--audit-policy-file={d / 'audit-policy.yaml'}",
            f"--audit-log-path={d / 'audit.log'}", "--audit-log-mode=blocking",
            "--authorization-mode=RBAC", "--service-cluster-ip-range=10.0.0.0/24",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={d / 'sa.key'}",
            f"--service-account-signing-key-file={d / 'sa.key'}",
            "--endpoint-reconciler-type=none", f"--cert-dir={d / 'certs'}",
            f"--kubelet-client-certificate={d / 'kubelet-client.crt'}",
            f"--kubelet-client-key={d / 'kubelet-client.key'}",
            f"--kubelet-certificate-authority={d / 'ca.crt'}",
            *self.apiserver_args])

    def _start_controller_manager(self) -> None:
        d = self.dir
        kubeconfig = self.write_kubeconfig(d / "kcm.kubeconfig", {"token": self.admin_token})
        self._run("kube-controller-manager", [
            f"--kubeconfig={kubeconfig}",
            "--controllers=" + ",".join(("csrsigning", "csrcleaner", *self.extra_controllers)),
            f"--cluster-signing-kube-apiserver-client-cert-file={d / 'client-ca.crt'}",
            f"--cluster-signing-kube-apiserver-client-key-file={d / 'client-ca.key'}",
            "--leader-elect=false", "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}", f"--cert-dir={d / 'kcm-certs'}"])

    def _wait_ready(self, url: str, timeout: float) -> None:
        ctx = ssl.create_default_context(cadata=self.ca.cert_pem.decode())
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(url, headers={
            "Authorization": f"Bearer {self.admin_token}"})
        while True:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}):\n{self.log(name)}")
            try:
                with urllib.request.urlopen(request, context=ctx, timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"kube-apiserver not ready:\n{self.log('kube-apiserver')}")
            time.sleep(0.2)

    # ---- a node ----------------------------------------------------------------------------

    NODE = "standin"

    def start_node(self, binary: Path, timeout: float = 60) -> None:
        """Run the kubelet stand-in (tests/controlplane/standin) as the node `standin`:
        pods bound to it (`spec.nodeName: standin`) run, exec runs local processes in
        `pod_dir(...)`, logs come from `<pod_dir>/<container>.log`, port-forward reaches
        127.0.0.1. Returns once the node is Ready; stopped with the plane."""
        d = self.dir
        port = free_port()
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = self.ca.issue(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{self.NODE}")]),
            key.public_key(), now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1),
            client=False, san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        _private(d / "node.crt", pem(cert))
        _private(d / "node.key", key_pem(key))
        (d / "pods").mkdir(mode=0o700, exist_ok=True)
        kubeconfig = self.write_kubeconfig(d / "node.kubeconfig", {"token": self.admin_token})
        self.node_binary = Path(binary)
        name = "kubelet-standin"
        self.args[name] = [f"--kubeconfig={kubeconfig}", f"--node-name={self.NODE}",
                           f"--port={port}", f"--tls-cert={d / 'node.crt'}",
                           f"--tls-key={d / 'node.key'}", f"--client-ca={d / 'ca.crt'}",
                           f"--root={d / 'pods'}"]
        log = open(d / f"{name}.log", "ab")  # noqa: SIM115  (the process keeps it)
        self.procs[name] = subprocess.Popen(
            [str(binary), *self.args[name]], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env={**os.environ, "KUBECONFIG": str(kubeconfig)})
        deadline = time.monotonic() + timeout
        while "ready" not in self.log(name).split():
            if self.procs[name].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the kubelet stand-in did not start:\n{self.log(name)}")
            time.sleep(0.1)

    def pod_dir(self, namespace: str, pod: str) -> Path:
        """The directory a pod on the stand-in runs in (its exec commands' working directory)."""
        return self.dir / "pods" / namespace / pod

    # ---- helpers for tests -----------------------------------------------------------------

    def write_kubeconfig(self, path: Path, user: dict) -> Path:
        doc = {"apiVersion": "v1", "kind": "Config", "current-context": "real",
               "clusters": [{"name": "real", "cluster": self.cluster_entry()}],
               "users": [{"name": "real", "user": user}],
               "contexts": [{"name": "real", "context": {"cluster": "real", "user": "real"}}]}
        return _private(Path(path), yaml.safe_dump(doc))

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        admin = self.dir / "admin.kubeconfig"
        if not admin.exists():
            self.write_kubeconfig(admin, {"token": self.admin_token})
        done = subprocess.run([self.kubectl_path, f"--kubeconfig={admin}", *args],
                              input=stdin, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr}")
        return done.stdout


def main() -> None:
    """Run a control plane for `scripts/demo --real`: write its files to --state, serve until
    stopped. The binaries come from tests/controlplane/build.py (built once per machine)."""
    import argparse
    import signal
    import sys
    import threading

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--state", required=True)
    args = parser.parse_args()
    build = Path(__file__).resolve().parents[1] / "controlplane" / "build.py"
    done = subprocess.run([sys.executable, str(build)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stderr)
    state = Path(args.state)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with ControlPlane(Path(done.stdout.strip())) as plane:
        (state / "ca.crt").write_bytes(plane.ca.cert_pem)
        _private(state / "bootstrap.token", plane.bootstrap_token + "\n")
        plane.write_kubeconfig(state / "admin.kubeconfig", {"token": plane.admin_token})
        (state / "kubectl").write_text(plane.kubectl_path + "\n")
        (state / "url").write_text(plane.url + "\n")
        stop.wait()


if __name__ == "__main__":
    main()
