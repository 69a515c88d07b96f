"""Access requests on the real kube-apiserver, with packaging/kubernetes and `setup --print-rbac`
applied by kubectl as a user would, and the broker (`cred-helper approver run --ssh-ca`) running
as its ServiceAccount: admission binds a request to its creator; a rule approves and signs (what
`ssh-keygen -L` shows, and OpenSSH's `ssh` logging in with the printed Host block); a manual
rule waits for another person (never the requester); a denial reaches the waiting client;
hostile requests are refused by the schema or denied, never signed; the attacker holding her
own login cannot sign, widen or approve her own; two brokers decide each request once, and a
killed one loses nothing; many runs make one request; the wait survives an API server restart.

A control plane of its own: its broker approves CSRs and access requests, which would disturb
the session plane's other tests."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from cred_helper import accessrequest as ar
from cred_helper.broker.accessguard import ADMISSION_GRACE
from cred_helper.connect import from_kubeconfig
from cred_helper.kube import BearerAuth, Endpoint, KubeClient
from tests.realcluster.test_approver_runtime import Proc
from tests.support.controlplane import ControlPlane
from tests.support.harness import CRED_HELPER, one_error
from tests.support.needs import missing
from tests.support.sshpeer import SshPeer
from tests.unit.broker.accessbuild import compressed_p256_line

pytestmark = pytest.mark.realcluster

ROOT = Path(__file__).resolve().parents[2]
PACKAGED = ROOT / "packaging" / "kubernetes"
BROKER = "system:serviceaccount:cred-helper:cred-helper-approver"
ALICE = "alice@example.com"

POLICY = """\
rules:
  - name: oncall-certificates
    match: {groups: [oncall]}
    action: approve
    subject-groups: ["*"]
    max-expiration: 1h
    attestation: none
access:
  rules:
    - name: payments
      match: {groups: [oncall]}
      namespaces: [payments]
      pods: ["payment-api-*"]
      action: approve
      max-expiration: 30m
      require-reason: true
      attestation: none
      grant:
        commands: [pods, logs, exec]
        exec: [[ps, aux]]
        shell: true
        ports: [8080]
    - name: by-hand
      match: {groups: [oncall]}
      namespaces: [shop]
      action: manual
      max-expiration: 1h
      attestation: none
      grant: {commands: [pods, logs]}
"""


def key_line() -> str:
    return ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


class Installed:
    """The plane with everything applied, and what the tests need to act on it."""

    def __init__(self, plane: ControlPlane, root: Path, policy: str = POLICY) -> None:
        self.plane = plane
        self.root = root
        ca = ed25519.Ed25519PrivateKey.generate()
        self.ca_file = root / "ssh-ca"
        self.ca_file.write_bytes(ca.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH,
                                                  NoEncryption()))
        self.ca_file.chmod(0o400)  # as a Secret volume's defaultMode: 0400
        self.ca_pub = ca.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
        (root / "ssh-ca.pub").write_bytes(self.ca_pub + b"\n")
        self.policy = root / "policy.yaml"
        self.policy.write_text(policy)
        token = plane.kubectl("create", "token", "-n", "cred-helper", "cred-helper-approver",
                              "--duration=2h").strip()
        self.broker_kubeconfig = plane.write_kubeconfig(root / "broker.kubeconfig",
                                                        {"token": token})
        cert, key = plane.ca.client_cert("carol@example.com", ["sre"])
        self.carol = plane.write_kubeconfig(root / "carol.kubeconfig", {
            "client-certificate-data": base64.b64encode(cert).decode(),
            "client-key-data": base64.b64encode(key).decode()})

    def client(self, token: str) -> KubeClient:
        return KubeClient(Endpoint(self.plane.url, ca_pem=self.plane.ca.cert_pem),
                          BearerAuth(token, source="test"))

    @property
    def admin(self) -> KubeClient:
        return self.client(self.plane.admin_token)

    @property
    def alice(self) -> KubeClient:
        return self.client(self.plane.bootstrap_token)

    def request(self, name: str) -> dict:
        return self.admin.get(f"{ar.PATH}/{name}")

    def requests(self) -> list[dict]:
        return self.admin.get(ar.PATH)["items"]


def install(plane: ControlPlane, root: Path, policy: str = POLICY) -> Installed:
    """As a user would: the packaged manifests, then the people's RBAC from setup (alice's
    group oncall asks, sre decides)."""
    plane.kubectl("create", "namespace", "payments")
    plane.kubectl("apply", "-k", str(PACKAGED))
    printed = subprocess.run(
        [CRED_HELPER, "setup", "--print-rbac", "--group", "oncall", "--approver-group",
         "sre", "--namespace", "payments", "--audit-policy", str(root / "audit.yaml")],
        capture_output=True, text=True, check=True)
    plane.kubectl("apply", "-f", "-", stdin=printed.stdout)
    # Requests made before kube-apiserver surely enforces the policies are never signed.
    time.sleep(ADMISSION_GRACE + 1.1)
    return Installed(plane, root, policy)


@pytest.fixture(scope="module")
def installed(control_plane_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("access")
    os.chmod(root, 0o700)
    with ControlPlane(control_plane_bin) as plane:
        yield install(plane, root)


class Broker(Proc):
    """One `cred-helper approver run --ssh-ca` process, its decision lines in a file (the
    approver runtime tests' Proc, running the real command with the real policy)."""

    def __init__(self, at: Installed, *extra: str, tag: str = "broker") -> None:
        self.out = at.root / f"{tag}-{uuid.uuid4().hex[:6]}.out"
        self.err = self.out.with_suffix(".err")
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [CRED_HELPER, "approver", "run", "--policy", str(at.policy), "--kubeconfig",
                 str(at.broker_kubeconfig), "--ssh-ca", str(at.ca_file), *extra],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    def access_lines(self) -> list[dict]:
        return [line for line in self.lines() if "accessRequest" in line]

    def wait_started(self) -> Broker:
        deadline = time.monotonic() + 20
        while "signing access requests as" not in self.stderr():
            assert self.proc.poll() is None and time.monotonic() < deadline, self.stderr()
            time.sleep(0.05)
        time.sleep(0.5)  # listed, watching
        return self


@pytest.fixture
def broker(installed, procs):
    started = Broker(installed)
    procs.append(started)
    return started.wait_started()


class Person:
    """Alice at her terminal: a profile, a cache, cred-helper."""

    def __init__(self, at: Installed, home: Path, gateway_port: int = 2222,
                 host_key: str = "") -> None:
        self.at = at
        self.home = home
        (home / "config" / "cred-helper").mkdir(parents=True, exist_ok=True)
        token = home / "bootstrap.token"
        token.write_text(at.plane.bootstrap_token + "\n")
        token.chmod(0o600)
        (home / "ca.crt").write_bytes(at.plane.ca.cert_pem)
        (home / "config" / "cred-helper" / "config.toml").write_text(
            f'[clusters.prod]\nissuer = "csr"\nserver = "{at.plane.url}"\n'
            f'certificate-authority = "{home / "ca.crt"}"\n'
            f'bootstrap-token-file = "{token}"\n'
            f'gateway = "127.0.0.1:{gateway_port}"\n'
            f'gateway-host-key = "{host_key or key_line()}"\n'
            f'ssh-user-ca = "{at.root / "ssh-ca.pub"}"\n')
        self.env = {"PATH": os.environ["PATH"], "HOME": str(home),
                    "XDG_CONFIG_HOME": str(home / "config"),
                    "XDG_CACHE_HOME": str(home / "cache")}

    @property
    def ssh_dir(self) -> Path:
        return self.home / "cache" / "cred-helper" / "ssh"

    def argv(self, *args: str) -> list[str]:
        return [CRED_HELPER, *args]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), env=self.env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)

    def ssh_config(self, namespace: str, *extra: str, **kw) -> subprocess.CompletedProcess:
        return self.run("ssh-config", "--cluster", "prod", "--namespace", namespace,
                        "--reason", "INC-42", *extra, **kw)


def error_of(stderr: str) -> str:
    """The one error (and hint) that ends a run that first said what it was doing."""
    return one_error(stderr[stderr.index("cred-helper: error: "):])


def user_of(block: str) -> str:
    return re.search(r"^  User (\S+)$", block, re.M).group(1)


def wait_for(what, timeout: float = 30, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(step)
    raise AssertionError("timed out waiting")


def pending_in(at: Installed, namespace: str, known: set[str]) -> str:
    """The name of the request in `namespace` made since `known` was taken."""
    def fresh():
        return [o["metadata"]["name"] for o in at.requests()
                if o["spec"]["namespace"] == namespace and o["metadata"]["name"] not in known]
    return wait_for(fresh)[0]


def csrs_of(at: Installed, username: str) -> list[dict]:
    return [csr for csr in json.loads(at.plane.kubectl("get", "csr", "-o", "json"))["items"]
            if csr["spec"].get("username") == username]


def names(at: Installed) -> set[str]:
    return {o["metadata"]["name"] for o in at.requests()}


# ---- admission ---------------------------------------------------------------------------------

def alices_spec(at: Installed, **changes) -> dict:
    return spec_of(at.alice, **changes)


def spec_of(client: KubeClient, **changes) -> dict:
    """A spec in the name of whoever `client` is, as SelfSubjectReview shows them."""
    info = client.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                       {"apiVersion": "authentication.k8s.io/v1",
                        "kind": "SelfSubjectReview"})["status"]["userInfo"]
    spec = {"username": info["username"], "groups": info["groups"],
            "uid": info.get("uid", ""), "extra": info.get("extra") or None,
            "publicKey": key_line(), "namespace": "payments", "reason": "INC-42",
            "expirationSeconds": 1800, **changes}
    return {k: v for k, v in spec.items() if v not in ("", None)}


def create(client: KubeClient, spec: dict, name: str | None = None, **extra) -> dict:
    name = name or f"t-{uuid.uuid4().hex[:10]}"
    return client.post(ar.PATH, {"apiVersion": ar.API_VERSION, "kind": ar.KIND,
                                 "metadata": {"name": name}, "spec": spec, **extra})


def refused(call) -> tuple[int, str]:
    from cred_helper.errors import ServerError

    with pytest.raises(ServerError) as caught:
        call()
    return caught.value.status, caught.value.status_message


def test_admission_binds_a_request_to_its_creator(installed):
    at = installed
    made = create(at.alice, alices_spec(at))
    assert made["spec"]["username"] == ALICE
    status, message = refused(lambda: create(at.alice, alices_spec(at, username="bob")))
    assert status == 403 and "spec.username must be your own user name" in message
    groups = alices_spec(at)["groups"]
    status, message = refused(lambda: create(at.alice, alices_spec(
        at, groups=[*groups, "system:masters"])))
    assert status == 403 and "spec.groups must be exactly your groups" in message
    status, message = refused(lambda: create(at.alice, alices_spec(
        at, groups=list(reversed(groups)))))
    assert status == 403, "the groups compare in order"
    # A status written on create is dropped: deciding is the status subresource's alone.
    sneaky = create(at.alice, alices_spec(at), status={
        "conditions": [{"type": "Approved", "status": "True", "decidedBy": ALICE}],
        "certificate": "ssh-ed25519-cert-v01@openssh.com AAAA"})
    assert not sneaky.get("status")
    # Nobody changes a spec; people may not update requests at all.
    status, _ = refused(lambda: at.alice.put(f"{ar.PATH}/{made['metadata']['name']}", made))
    assert status == 403
    changed = {**made, "spec": {**made["spec"], "namespace": "kube-system"}}
    status, message = refused(lambda: at.admin.put(f"{ar.PATH}/{made['metadata']['name']}",
                                                   changed))
    assert status in (403, 422) and ("never changes" in message or "immutable" in message)


# ---- a rule approves ---------------------------------------------------------------------------

def keygen_l(path: Path) -> str:
    return subprocess.run(["ssh-keygen", "-L", "-f", str(path)], capture_output=True,
                          text=True, check=True, env={"TZ": "UTC", "PATH": os.environ["PATH"]}
                          ).stdout


def test_a_rule_approves_and_ssh_logs_in_with_the_printed_block(installed, broker, tmp_path):
    at = installed
    with SshPeer(at.ca_pub.decode()) as peer:
        alice = Person(at, tmp_path, peer.port, peer.host_key_line)
        before = time.time()
        done = alice.ssh_config("payments", "--pod", "payment-api-7d4f")
        assert done.returncode == 0, done.stderr
        name = user_of(done.stdout)
        assert f"access request {name} approved by {BROKER}" in done.stderr
        shown = keygen_l(alice.ssh_dir / "prod-payments" / "id-cert.pub")
        assert f'Key ID: "{name}:{ALICE}"' in shown
        assert re.search(rf"Principals: \n\s+{re.escape(name)}\n\s+Critical", shown), shown
        assert "permit-port-forwarding" in shown and "permit-pty" in shown
        assert "agent" not in shown and "X11" not in shown and "user-rc" not in shown
        start, end = (time.mktime(time.strptime(t, "%Y-%m-%dT%H:%M:%S")) - time.timezone
                      for t in re.search(r"Valid: from (\S+) to (\S+)", shown).groups())
        assert before - 62 <= start <= time.time() - 58
        assert end - start == 1800 + 60
        obj = at.request(name)
        assert obj["status"]["grant"] == {
            "namespace": "payments", "pods": ["payment-api-7d4f"],
            "commands": ["pods", "logs", "exec"], "exec": [["ps", "aux"]], "shell": True,
            "ports": [8080]}
        (tmp_path / "ssh_config").write_text(f"Include {alice.ssh_dir}/*.conf\n")
        login = subprocess.run(["ssh", "-F", str(tmp_path / "ssh_config"), "-o",
                                "BatchMode=yes", "prod-payments"], capture_output=True,
                               text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert login.returncode == 0, login.stderr
        assert login.stdout.strip() == f"logged in as {name}"
    # cached until it ends: the next run makes no request
    again = alice.ssh_config("payments", "--pod", "payment-api-7d4f")
    assert again.returncode == 0 and user_of(again.stdout) == name
    assert f"using access request {name} (made for: INC-42), still valid for" in again.stderr
    assert [o for o in at.requests() if o["spec"]["publicKey"] ==
            obj["spec"]["publicKey"]] and sum(
        1 for line in broker.access_lines() if line["accessRequest"] == name) == 1
    line = next(line for line in broker.access_lines() if line["accessRequest"] == name)
    assert (line["decision"], line["rule"], line["decidedBy"]) == ("approve", "payments",
                                                                   BROKER)
    status = json.loads(alice.run("status", "-o", "json").stdout)
    ssh_rows = [row for row in status if row["issuer"] == "ssh"]
    assert [row["source"] for row in ssh_rows] == [name]
    out = alice.run("logout", "--cluster", "prod")
    assert out.returncode == 0, out.stderr
    assert not list(alice.ssh_dir.glob("*.conf"))
    assert not (alice.ssh_dir / "prod-payments" / "id").exists()


# ---- a person decides --------------------------------------------------------------------------

def test_a_manual_rule_waits_for_another_person(installed, broker, tmp_path):
    at = installed
    alice = Person(at, tmp_path)
    known = names(at)
    cache = tmp_path / "elsewhere"  # --cache-dir, as every command that uses a credential takes it
    waiting = alice.start("ssh-config", "--cluster", "prod", "--namespace", "shop", "--reason",
                          "INC-43", "--cache-dir", str(cache))
    name = pending_in(at, "shop", known)
    time.sleep(1)
    assert "certificate" not in (at.request(name).get("status") or {})
    made = len(csrs_of(at, ALICE))
    own = alice.run("approve", name, "--cluster", "prod", "--cache-dir", str(cache))
    assert len(csrs_of(at, ALICE)) == made  # the credential cached there: no new CSR
    assert own.returncode == 1
    assert "nobody decides their own access request" in error_of(own.stderr)
    assert "another person must decide it" in own.stderr
    assert f"by       {ALICE}" in own.stderr and "because  INC-43" in own.stderr
    carol = alice.run("approve", name, "--kubeconfig", str(at.carol))
    assert carol.returncode == 0, carol.stderr
    assert f"access request {name} approved by carol@example.com" in carol.stderr
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert f"cred-helper approve {name}" in err and user_of(out) == name
    line = wait_for(lambda: [ln for ln in broker.access_lines()
                             if ln["accessRequest"] == name and ln["decision"] == "sign"])[0]
    assert line["decidedBy"] == "carol@example.com" and line["signedBy"] == BROKER
    conditions = at.request(name)["status"]["conditions"]
    assert [(c["type"], c["decidedBy"]) for c in conditions] == [
        ("Approved", "carol@example.com")]
    described = wait_for(lambda: (lambda text: "Signed" in text and text)(
        at.plane.kubectl("describe", "accessrequest", name)))
    assert "ManualApprovalRequired" in described and "rule by-hand" in described, described
    # A denial after the certificate: the request is revoked (the gateway ends its sessions);
    # the certificate, grant and end stay as signed.
    signed_status = at.request(name)["status"]
    revoked = alice.run("deny", name, "--kubeconfig", str(at.carol), "--reason", "over")
    assert revoked.returncode == 0, revoked.stderr
    assert f"access request {name} revoked (denied after approval) by carol@example.com" in \
        revoked.stderr
    after = at.request(name)["status"]
    assert [c["type"] for c in after["conditions"]] == ["Approved", "Denied"]
    assert after["certificate"] == signed_status["certificate"]
    assert ar.parse(at.request(name)).decision.state == ar.DENIED


def test_a_denial_reaches_the_waiting_client_with_its_reason(installed, broker, tmp_path):
    at = installed
    alice = Person(at, tmp_path)
    known = names(at)
    waiting = alice.start("ssh-config", "--cluster", "prod", "--namespace", "shop", "--reason",
                          "INC-44")
    name = pending_in(at, "shop", known)
    carol = alice.run("deny", name, "--kubeconfig", str(at.carol), "--reason",
                      "use the runbook")
    assert carol.returncode == 0, carol.stderr
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 1 and out == ""
    assert one_error(err) == (f"cred-helper: error: access request {name} was denied by "
                              "carol@example.com: use the runbook")
    again = alice.run("ssh-config", "--cluster", "prod", "--namespace", "shop", "--reason", "x",
                      "--approval-timeout", "2s")
    # A denied request is never taken up again: a new one is made (and waits for a person).
    assert name not in again.stderr
    assert "was not approved within 2s" in error_of(again.stderr), again.stderr


def test_a_deciders_reason_on_two_lines_is_refused_before_it_spoils_the_request(
        installed, broker):
    """Every reader refuses a request whose text holds control characters, the condition a
    person adds included: an approval with a two-line --reason was written, and the broker
    then denied the request as unreadable."""
    at = installed
    name = create(at.alice, alices_spec(at, namespace="shop"))["metadata"]["name"]
    done = subprocess.run([CRED_HELPER, "approve", name, "--kubeconfig", str(at.carol),
                           "--reason", "checked with the runbook\nand the on-call lead"],
                          capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert one_error(done.stderr).startswith("cred-helper: error: --reason: ")
    time.sleep(1)
    assert not (at.request(name).get("status") or {}).get("conditions")
    done = subprocess.run([CRED_HELPER, "approve", name, "--kubeconfig", str(at.carol),
                           "--reason", "checked with the runbook"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    wait_for(lambda: signed(at, [name]))


def test_a_timeout_says_so_and_the_next_run_takes_the_same_request_up(installed, broker,
                                                                     tmp_path):
    at = installed
    alice = Person(at, tmp_path)
    known = names(at)
    timed_out = alice.ssh_config("shop", "--approval-timeout", "3s")
    assert timed_out.returncode == 1
    name = pending_in(at, "shop", known)
    assert one_error(timed_out.stderr) == (f"cred-helper: error: access request {name} was "
                                           "not approved within 3s")
    assert f"cred-helper approve {name}`; the next run collects this same request" in \
        timed_out.stderr
    assert alice.run("approve", name, "--kubeconfig", str(at.carol)).returncode == 0
    collected = alice.ssh_config("shop")
    assert collected.returncode == 0, collected.stderr
    assert user_of(collected.stdout) == name and f"taking up access request {name}" in \
        collected.stderr
    assert len(names(at) - known) == 1


def test_the_wait_survives_an_api_server_restart(installed, broker, tmp_path):
    at = installed
    alice = Person(at, tmp_path)
    known = names(at)
    waiting = alice.start("ssh-config", "--cluster", "prod", "--namespace", "shop", "--reason",
                          "INC-45", "--approval-timeout", "2m")
    name = pending_in(at, "shop", known)
    try:
        at.plane.restart("kube-apiserver")
    finally:
        at.plane.resume("kube-apiserver")
    assert alice.run("approve", name, "--kubeconfig", str(at.carol)).returncode == 0
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert user_of(out) == name and len(names(at) - known) == 1


# ---- what is refused, never signed -------------------------------------------------------------

def test_a_scope_or_lifetime_outside_the_rule_is_denied_never_signed(installed, broker,
                                                                    tmp_path):
    at = installed
    alice = Person(at, tmp_path)
    for extra, why in ((("--pod", "db-0"), "pod 'db-0' is not within the rule's pods"),
                       (("--pod", "payment-*"), "pod 'payment-*' is not within"),
                       (("--session-ttl", "1h"), "expirationSeconds 3600 exceeds 30m")):
        done = alice.ssh_config("payments", *extra)
        assert done.returncode == 1, done.stderr
        assert f"was denied by {BROKER}: rule payments: {why}" in one_error(done.stderr)
    done = alice.ssh_config("kube-system")
    assert "no access rule takes requester 'alice@example.com'" in one_error(done.stderr)
    assert not [o for o in at.requests() if (o.get("status") or {}).get("certificate")
                and o["spec"]["namespace"] == "kube-system"]


HOSTILE_SCHEMA = [
    ("rsa", {"publicKey": "ssh-rsa " + key_line().split()[1]}),
    ("p384", {"publicKey": "ecdsa-sha2-nistp384 AAAA"}),
    ("huge-key", {"publicKey": "ssh-ed25519 " + "A" * 1200}),
    ("key-comment", {"publicKey": key_line() + " alice@laptop"}),
    ("huge-reason", {"reason": "x" * 2000}),
    ("too-short", {"expirationSeconds": 599}),
    ("too-long", {"expirationSeconds": 86401}),
    ("bad-pod", {"pods": ["../etc"]}),
    ("many-pods", {"pods": ["a"] * 65}),
]
HOSTILE_BROKER = [
    ("p256-in-ed25519", {"publicKey": "ssh-ed25519 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdH"
                                      "AyNTYAAABBBA"}, "not a readable OpenSSH public key"),
    ("control-characters", {"reason": "INC\u001b[2J"}, "control characters"),
    ("garbage-proof", {"attestation": "bm90IGEgcHJvb2Y="}, "the attestation proof fails"),
    ("compressed-point", {"publicKey": compressed_p256_line()},
     "not a readable OpenSSH public key"),
    ("unpadded-key", {"publicKey": "ssh-ed25519 AAAAA"}, "not a readable OpenSSH public key"),
    ("invisible-reason", {"reason": "\u200b\u2800"}, "spec.reason is empty or shows nothing"),
]


def test_hostile_requests_are_refused_by_the_schema_or_denied_never_signed(installed, broker):
    at = installed
    for label, changes in HOSTILE_SCHEMA:
        status, message = refused(lambda changes=changes: create(at.alice,
                                                                 alices_spec(at, **changes)))
        assert status == 422, (label, message)  # refused: nothing stored
    # An unknown field never reaches anyone: the structural schema drops it, or refuses the
    # whole request when the client asks for strict field validation.
    pruned = create(at.alice, alices_spec(at, shell=True, namespace="kube-system"))
    assert "shell" not in pruned["spec"]
    status, message = refused(lambda: at.alice.request(
        "POST", ar.PATH, params={"fieldValidation": "Strict"}, body={
            "apiVersion": ar.API_VERSION, "kind": ar.KIND, "metadata": {"name": "t-strict"},
            "spec": alices_spec(at, shell=True)}))
    assert status == 400 and 'unknown field "spec.shell"' in message, message
    made = [create(at.alice, alices_spec(at, **changes))["metadata"]["name"]
            for _, changes, _ in HOSTILE_BROKER]
    for name, (label, _, why) in zip(made, HOSTILE_BROKER, strict=True):
        obj = wait_for(lambda name=name: (at.request(name).get("status") or {}).get(
            "conditions") and at.request(name))
        assert "certificate" not in obj["status"], label
        [cond] = obj["status"]["conditions"]
        assert (cond["type"], cond["decidedBy"]) == ("Denied", BROKER), label
        assert why in cond["message"], (label, cond["message"])
    # A person reads each before deciding: an unreadable key is said, never a crash.
    unpadded = made[[label for label, _, _ in HOSTILE_BROKER].index("unpadded-key")]
    again = subprocess.run([CRED_HELPER, "deny", unpadded, "--kubeconfig", str(at.carol),
                            "--reason", "no"], capture_output=True, text=True)
    assert "key      ssh-ed25519 (not a readable key)" in again.stderr
    assert one_error(again.stderr[again.stderr.index("cred-helper: error"):]).startswith(
        f"cred-helper: error: access request {unpadded} is already denied by {BROKER}")


# ---- the attacker holds her own login ----------------------------------------------------------

def test_alice_cannot_sign_widen_or_approve_her_own(installed, procs):
    """With no broker running: carol approves alice's request; alice, also a decider (sre),
    writes what the broker would, names carol as the decider, takes back a denial."""
    at = installed
    name = create(at.alice, alices_spec(at, namespace="shop"))["metadata"]["name"]
    carol = subprocess.run([CRED_HELPER, "approve", name, "--kubeconfig", str(at.carol)],
                           capture_output=True, text=True)
    assert carol.returncode == 0, carol.stderr
    obj = at.request(name)
    forged = json.loads(json.dumps(obj))
    forged["status"].update(certificate="ssh-ed25519-cert-v01@openssh.com AAAA", grant={
        "namespace": "shop", "commands": ["pods", "logs", "exec"], "shell": True},
        expiresAt="2099-01-01T00:00:00Z")
    status, message = refused(lambda: at.alice.put(f"{ar.PATH}/{name}/status", forged))
    assert status == 403 and "nobody decides their own access request" in message
    other = create(at.admin, spec_of(at.admin, namespace="shop"))
    other_name = other["metadata"]["name"]
    stamp = ar.format_time(time.time())
    as_carol = {**other, "status": {"conditions": [{
        "type": "Approved", "status": "True", "reason": "x", "message": "x",
        "decidedBy": "carol@example.com", "lastTransitionTime": stamp}]}}
    status, message = refused(lambda: at.alice.put(f"{ar.PATH}/{other_name}/status", as_carol))
    assert "decidedBy must be your own user name" in message
    with_cert = {**other, "status": {"conditions": [{**as_carol["status"]["conditions"][0],
                                                     "decidedBy": ALICE}],
                                     "certificate": "ssh-ed25519-cert-v01@openssh.com AAAA"}}
    status, message = refused(lambda: at.alice.put(f"{ar.PATH}/{other_name}/status",
                                                   with_cert))
    assert "only the broker writes the certificate" in message
    denied = subprocess.run([CRED_HELPER, "deny", other_name, "--kubeconfig", str(at.carol),
                             "--reason", "no"], capture_output=True, text=True)
    assert denied.returncode == 0, denied.stderr
    taken_back = at.request(other_name)
    taken_back["status"]["conditions"] = []
    status, message = refused(lambda: at.alice.put(f"{ar.PATH}/{other_name}/status",
                                                   taken_back))
    assert "never changed or taken back" in message


def test_a_decider_cannot_make_a_request_irrevocable_or_unapprovable(installed):
    """A condition is a decision only with status True. One with status False, written
    first by one decider, took the place of every later decision of its type (a list keyed
    by type): a Denied False made an approved request impossible to revoke, an Approved False
    one impossible to approve."""
    at = installed
    name = create(at.alice, alices_spec(at, namespace="shop"))["metadata"]["name"]
    carol = KubeClient(*from_kubeconfig(str(at.carol), None))
    for kind in ("Denied", "Approved"):
        obj = at.request(name)
        obj["status"] = {"conditions": [{
            "type": kind, "status": "False", "reason": "x", "message": "x",
            "decidedBy": "carol@example.com", "lastTransitionTime": ar.format_time(time.time())}]}
        status, _ = refused(lambda obj=obj: carol.put(f"{ar.PATH}/{name}/status", obj))
        assert status == 422, kind
    for action in ("approve", "deny"):
        done = subprocess.run([CRED_HELPER, action, name, "--kubeconfig", str(at.carol),
                               "--reason", "INC-42"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert ar.parse(at.request(name)).decision.state == ar.DENIED  # revoked


def test_a_request_being_deleted_is_denied_never_signed(installed):
    """Alice's request carries a finalizer of her own, so that an admin's delete leaves it
    in place, being deleted; a rule that approves it must not sign it."""
    at = installed
    name = f"t-{uuid.uuid4().hex[:10]}"
    at.alice.post(ar.PATH, {"apiVersion": ar.API_VERSION, "kind": ar.KIND,
                            "metadata": {"name": name, "finalizers": ["example.com/keep"]},
                            "spec": alices_spec(at)})
    try:
        at.admin.request("DELETE", f"{ar.PATH}/{name}")
        assert at.request(name)["metadata"]["deletionTimestamp"]
        approver_once(at)
        status = at.request(name).get("status") or {}
        assert "certificate" not in status
        [cond] = status["conditions"]
        assert cond["type"] == "Denied" and "being deleted" in cond["message"], cond
    finally:
        at.plane.kubectl("patch", "accessrequest", name, "--type=merge", "-p",
                         '{"metadata": {"finalizers": null}}')


LOOK_ALIKES = ["\u043encall", "Oncall", "oncall ", "oncall\u200b", "ONCALL", "oncall-bootstrap"]


def test_a_rule_takes_only_the_group_it_names_as_written(installed, broker, tmp_path):
    """People whose groups only look like the rule's `oncall` (a Cyrillic o, another case, a
    trailing space or zero-width character, a longer name) are taken by no rule; one who
    holds it twice, or after other groups, is. (Admission makes spec.groups the person's
    own, in order; the rule matches them as written, as RBAC does.)"""
    at = installed
    made = {}
    people = [f"--user=look-{i}@example.com" for i in range(len(LOOK_ALIKES) + 1)]
    at.plane.kubectl("create", "clusterrolebinding", "look-alikes-ask",
                     "--clusterrole=cred-helper-access-requester", *people)
    for i, group in enumerate([*LOOK_ALIKES, "oncall"]):
        groups = [group] if group != "oncall" else ["sre", "oncall", "oncall"]
        cert, key = at.plane.ca.client_cert(f"look-{i}@example.com", groups)
        path = at.plane.write_kubeconfig(tmp_path / f"look-{i}.kubeconfig", {
            "client-certificate-data": base64.b64encode(cert).decode(),
            "client-key-data": base64.b64encode(key).decode()})
        person = KubeClient(*from_kubeconfig(str(path), None))
        made[group] = create(person, spec_of(person))["metadata"]["name"]
    for group, name in made.items():
        obj = wait_for(lambda name=name: (at.request(name).get("status") or {}).get(
            "conditions") and at.request(name))
        [cond] = obj["status"]["conditions"]
        if group == "oncall":
            assert cond["type"] == "Approved" and obj["status"]["certificate"], cond
        else:
            assert cond["type"] == "Denied" and "no access rule takes" in cond["message"], \
                (group, cond)


def _created_or_none(client: KubeClient, spec: dict) -> str | None:
    from cred_helper.errors import ServerError

    try:
        return create(client, spec)["metadata"]["name"]
    except ServerError as error:
        assert error.status == 403
        return None


@contextlib.contextmanager
def binding_removed(at: Installed, name: str = "cred-helper-access-identity"):
    """The admission binding `name` deleted, and put back as it was on leaving."""
    binding = json.loads(at.plane.kubectl("get", "validatingadmissionpolicybinding", name,
                                          "-o", "json"))
    at.plane.kubectl("delete", "validatingadmissionpolicybinding", name)
    try:
        yield
    finally:
        for field in ("resourceVersion", "uid", "creationTimestamp", "managedFields",
                      "generation"):
            binding["metadata"].pop(field, None)
        at.plane.kubectl("apply", "-f", "-", stdin=json.dumps(binding))


def approver_once(at: Installed) -> subprocess.CompletedProcess:
    once = subprocess.run([CRED_HELPER, "approver", "run", "--once", "--policy",
                           str(at.policy), "--kubeconfig", str(at.broker_kubeconfig),
                           "--ssh-ca", str(at.ca_file)], capture_output=True, text=True,
                          timeout=120)
    assert once.returncode == 0, once.stderr
    return once


def forged_spec(at: Installed) -> dict:
    """Alice's request in the name of "admin", whom a rule would approve."""
    return {**alices_spec(at), "username": "admin", "groups": ["oncall", "system:authenticated"]}


def test_without_the_identity_admission_the_broker_signs_nothing(installed, tmp_path):
    at = installed
    with binding_removed(at):
        # Now anybody could write anybody's name: alice asks as "admin" (once the API
        # server has noticed that the binding is gone).
        name = wait_for(lambda: _created_or_none(at.alice, forged_spec(at)))
        once = approver_once(at)
        assert "access requests are not signed: the admission policy " \
               "cred-helper-access-identity or its binding is not installed" in once.stderr
        assert not at.request(name).get("status")
    # Back in force: the request made meanwhile was never checked, so it is denied; one made
    # once kube-apiserver surely enforces the binding again is signed.
    time.sleep(ADMISSION_GRACE + 1.1)  # creation times are whole seconds
    honest = create(at.alice, alices_spec(at))["metadata"]["name"]
    approver_once(at)
    forged = at.request(name)["status"]
    assert "certificate" not in forged
    [cond] = forged["conditions"]
    assert cond["type"] == "Denied" and "never checked against its creator" in cond["message"]
    assert at.request(honest)["status"]["certificate"]


def test_a_running_broker_signs_nothing_forged_while_the_binding_is_gone_or_reloading(
        installed, broker):
    """The broker's view of admission is never older than the request it signs. Under a
    running broker that has just signed (so it last saw the binding in force), the identity
    binding is deleted and put back while alice keeps asking in admin's name: what is
    admitted while it is gone, and in the moment after it is back before kube-apiserver
    enforces it again (it reloads admission policies every second), is never signed."""
    at = installed
    honest = create(at.alice, alices_spec(at))["metadata"]["name"]
    wait_for(lambda: signed(at, [honest]))
    forged: list[str] = []
    stop = threading.Event()

    def keep_asking():
        while not stop.is_set():
            name = _created_or_none(at.alice, {**forged_spec(at), "publicKey": key_line()})
            if name:
                forged.append(name)

    asking = threading.Thread(target=keep_asking)
    asking.start()
    try:
        with binding_removed(at):
            wait_for(lambda: forged)  # kube-apiserver no longer enforces it
            time.sleep(2)  # the running broker sees them
        back = at.plane.kubectl("get", "validatingadmissionpolicybinding",
                                "cred-helper-access-identity", "-o",
                                "jsonpath={.metadata.creationTimestamp}")
        time.sleep(2)  # and over the reload
    finally:
        stop.set()
        asking.join()
    approver_once(at)  # judges what the running broker left pending while the binding was gone
    time.sleep(1)
    late = [n for n in forged if at.request(n)["metadata"]["creationTimestamp"] > back]
    for name in forged:
        status = at.request(name).get("status") or {}
        assert "certificate" not in status, (name, name in late)
        [cond] = status["conditions"]
        assert cond["type"] == "Denied", name
        why = "before kube-apiserver surely enforced them" if name in late else \
            "never checked against its creator"
        assert why in cond["message"], cond["message"]
    time.sleep(ADMISSION_GRACE + 1.1)
    honest = create(at.alice, alices_spec(at))["metadata"]["name"]
    wait_for(lambda: signed(at, [honest]))


# ---- brokers racing, a broker killed -----------------------------------------------------------

def signed(at: Installed, wanted: list[str]) -> bool:
    found = {o["metadata"]["name"]: o for o in at.requests()}
    return all((found[n].get("status") or {}).get("certificate") for n in wanted)


def test_two_brokers_decide_each_request_once_and_a_killed_one_loses_nothing(installed,
                                                                            procs):
    at = installed
    one, two = Broker(at, tag="one"), Broker(at, tag="two")
    procs += [one, two]
    one.wait_started(), two.wait_started()
    first = [create(at.alice, alices_spec(at))["metadata"]["name"] for _ in range(20)]
    wait_for(lambda: signed(at, first), timeout=60)
    time.sleep(1)  # a second decision, were there one, would have landed by now
    lines = [ln for b in (one, two) for ln in b.access_lines() if ln["accessRequest"] in first]
    assert sorted(ln["accessRequest"] for ln in lines) == sorted(first)
    for name in first:
        conditions = at.request(name)["status"]["conditions"]
        assert [c["type"] for c in conditions] == ["Approved"], name
    one.kill()  # SIGKILL mid-stream: requests keep coming
    second = [create(at.alice, alices_spec(at))["metadata"]["name"] for _ in range(5)]
    two.kill()
    third = [create(at.alice, alices_spec(at))["metadata"]["name"] for _ in range(5)]
    three = Broker(at, tag="three")
    procs.append(three)
    wait_for(lambda: signed(at, second + third), timeout=60)
    time.sleep(1)
    every = [ln["accessRequest"] for b in (one, two, three) for ln in b.access_lines()
             if ln["accessRequest"] in first + second + third]
    assert len(every) == len(set(every)), "a request decided twice"
    for name in second + third:
        conditions = at.request(name)["status"]["conditions"]
        assert [c["type"] for c in conditions] == ["Approved"], name
    # A broker killed between its status write and its line loses that line, never the
    # decision (it is in the request): at most one per broker killed.
    assert len(set(second + third) - set(every)) <= 2


def test_many_large_requests_do_not_stop_the_broker(installed, procs):
    """Anyone who may ask makes requests as large as the CRD lets them, and nothing removes
    old ones: 120 of them list as more than 4 MiB. The broker listed 500 to a page, so its
    list failed at start, and with it the whole process (CSRs too), for as long as they
    stayed. Now it reads them a page at a time and signs the next request."""
    at = installed
    spec = spec_of(at.alice, namespace="no-rule-here", reason="x" * 1000,
                   pods=[f"p{j}-" + "a" * 240 for j in range(64)], attestation="A" * 32768)
    try:
        for i in range(120):
            create(at.alice, {**spec, "publicKey": key_line()}, name=f"bulk-{i}",
                   metadata={"name": f"bulk-{i}", "labels": {"test": "bulk"}})
        assert len(at.plane.kubectl("get", "accessrequests", "-o", "json")) > 4 << 20
        started = Broker(at, tag="bulk")
        procs.append(started)
        started.wait_started()
        honest = create(at.alice, alices_spec(at))["metadata"]["name"]
        wait_for(lambda: started.proc.poll() is not None
                 or (at.request(honest).get("status") or {}).get("certificate"), timeout=60)
        assert started.proc.poll() is None, started.stderr()[-600:]
    finally:
        at.plane.kubectl("delete", "accessrequests", "-l", "test=bulk", "--wait=false")


# ---- many runs, one request --------------------------------------------------------------------

def test_sixteen_concurrent_runs_make_one_request(installed, broker, tmp_path):
    at = installed
    alice = Person(at, tmp_path)
    login = alice.run("login", "--cluster", "prod")  # the cluster credential, once
    assert login.returncode == 0, login.stderr
    known = names(at)
    runs = [alice.start("ssh-config", "--cluster", "prod", "--namespace", "payments",
                        "--reason", "INC-46") for _ in range(16)]
    outs = [run.communicate(timeout=120) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err for _, err in outs]
    assert len({user_of(out) for out, _ in outs}) == 1
    assert len(names(at) - known) == 1


def test_a_person_with_more_groups_than_a_request_holds_is_told_so(installed, broker,
                                                                    tmp_path):
    """The schema holds 64 groups; a person in 70 (common with a directory's groups) gets
    one error saying so, before anything is sent, not the API server's refusal with a hint
    about RBAC."""
    at = installed
    groups = ["oncall", *(f"team-{i}" for i in range(69))]
    cert, key = at.plane.ca.client_cert("many@example.com", groups)
    boot = at.plane.write_kubeconfig(tmp_path / "many.kubeconfig", {
        "client-certificate-data": base64.b64encode(cert).decode(),
        "client-key-data": base64.b64encode(key).decode()})
    many = Person(at, tmp_path)
    config = many.home / "config" / "cred-helper" / "config.toml"
    config.write_text(re.sub(r'bootstrap-token-file = ".*"', f'bootstrap-kubeconfig = "{boot}"',
                             config.read_text()))
    known = names(at)
    done = many.ssh_config("payments")
    assert done.returncode == 1, done.stderr
    assert one_error(done.stderr[done.stderr.index("cred-helper: error"):]) == (
        "cred-helper: error: an access request cannot hold the identity of many@example.com "
        "(spec.groups: not a list of at most 64 strings)")
    assert "\nhint: an access request holds at most 64 groups" in done.stderr
    assert names(at) == known  # nothing was sent


# ---- a key on a token, and a hardware proof over it --------------------------------------------

def test_a_token_key_with_a_proof_is_approved_and_logs_in_through_the_agent(
        installed, broker, tmp_path):
    """`--ssh-key pkcs11:` (a P-256 key on SoftHSM2) and the profile's `attest-with`: the
    proof over the request's key passes a rule that wants a registered key; the Host block
    finds the key in the agent; real ssh logs in."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from cred_helper.broker.attestation import key_sha256, spki
    from tests.support.softhsm import MODULE, USER_PIN, SoftHSM, available
    from tests.support.sshpeer import agent_with_token_keys

    if not available():
        missing("softhsm2 is missing (scripts/setup installs it)")
    at = installed
    hsm = SoftHSM(tmp_path / "hsm")
    hsm.new_token("piv")
    token_env = {**os.environ, **hsm.env, "PIN": USER_PIN}
    for label in ("ssh", "attest"):
        made = subprocess.run([CRED_HELPER, "keys", "generate", f"pkcs11:token=piv;object={label}",
                               "--type", "p256", "--pin-source", "env:PIN", "--pkcs11-module",
                               MODULE], capture_output=True, text=True, env=token_env)
        assert made.returncode == 0, made.stderr
    pem = subprocess.run([CRED_HELPER, "keys", "public", "pkcs11:token=piv;object=attest",
                          "--pkcs11-module", MODULE], capture_output=True, text=True,
                         env=token_env, check=True).stdout
    digest = key_sha256(spki(load_pem_public_key(pem.encode())))
    original = at.policy.read_text()
    at.policy.write_text(original.replace("access:\n", (
        f"attestation:\n  registry:\n    - {{user: {ALICE}, key-sha256: {digest}}}\naccess:\n"
    )).replace("    - name: by-hand\n", (
        "    - name: vault\n      match: {groups: [oncall]}\n      namespaces: [vault]\n"
        "      action: approve\n      max-expiration: 30m\n      attestation: registry-key\n"
        "      key-types: [p256]\n      grant: {commands: [pods]}\n    - name: by-hand\n")))
    try:
        with SshPeer(at.ca_pub.decode()) as peer:
            alice = Person(at, tmp_path / "home", peer.port, peer.host_key_line)
            config = alice.home / "config" / "cred-helper" / "config.toml"
            config.write_text(config.read_text() + (
                f'attest-with = "pkcs11:token=piv;object=attest"\n'
                f'pkcs11-module = "{MODULE}"\npin-source = "env:PIN"\n'))
            alice.env.update(hsm.env, PIN=USER_PIN)
            done = alice.ssh_config("vault", "--ssh-key", "pkcs11:token=piv;object=ssh")
            assert done.returncode == 0, done.stderr
            name = user_of(done.stdout)
            block = done.stdout
            assert "IdentityAgent none" not in block
            assert f"IdentityFile {alice.ssh_dir}/prod-vault/id.pub" in block
            assert not (alice.ssh_dir / "prod-vault" / "id").exists()  # nothing secret kept
            line = next(ln for ln in broker.access_lines() if ln["accessRequest"] == name)
            assert (line["decision"], line["rule"]) == ("approve", "vault")
            assert (line["attestation"]["mode"], line["attestation"]["ok"],
                    line["attestation"]["user"]) == ("registry-key", True, ALICE)
            (tmp_path / "ssh_config").write_text(f"Include {alice.ssh_dir}/*.conf\n")
            with agent_with_token_keys(MODULE, USER_PIN, hsm.env, tmp_path) as agent:
                login = subprocess.run(["ssh", "-F", str(tmp_path / "ssh_config"), "-o",
                                        "BatchMode=yes", "prod-vault"], capture_output=True,
                                       text=True, timeout=60, stdin=subprocess.DEVNULL,
                                       env={"PATH": os.environ["PATH"], **agent})
            assert login.returncode == 0, login.stderr
            assert login.stdout.strip() == f"logged in as {name}"
    finally:
        at.policy.write_text(original)


def test_the_ssh_ca_patch_passes_a_server_side_dry_run(installed, tmp_path):
    """packaging/kubernetes/ssh-ca-patch.yaml, added to the kustomization as its comment says,
    gives the Deployment the CA from the Secret and --ssh-ca."""
    import shutil

    import yaml

    shutil.copy(PACKAGED / "ssh-ca-patch.yaml", tmp_path / "ssh-ca-patch.yaml")
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(PACKAGED, tmp_path)],
        "patches": [{"path": "ssh-ca-patch.yaml"}]}))
    out = json.loads(installed.plane.kubectl("apply", "--dry-run=server", "-k", str(tmp_path),
                                             "-o", "json"))
    deployment = next(i for i in out["items"] if i["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert "--ssh-ca=/etc/cred-helper-ssh-ca/ssh-ca" in container["args"]
    assert "--policy=/etc/cred-helper/policy.yaml" in container["args"]
    assert {m["name"] for m in container["volumeMounts"]} == {"policy", "ssh-ca"}
    ssh_ca = next(v for v in pod["volumes"] if v["name"] == "ssh-ca")
    assert ssh_ca["secret"] == {"secretName": "cred-helper-ssh-ca", "defaultMode": 0o400}
    assert pod["securityContext"]["fsGroup"] == 65532
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_the_engineers_command_as_the_docs_show_it(installed, procs, tmp_path):
    """docs/access-requests.md, "For the engineer": its ssh-config command, typed as shown,
    with the page's own access: section as the broker's policy (after a rule that gives alice
    her cluster credential): approved by its rule payments, and a Host block printed."""
    import copy

    from tests.support import doccommands
    from tests.support.harness import BIN

    shown = doccommands.block("docs/access-requests.md", "For the admin", "yaml").text
    at = copy.copy(installed)
    at.policy = tmp_path / "docs-policy.yaml"
    at.policy.write_text(POLICY[:POLICY.index("access:")] + shown.replace("3f9a...", "3f" * 32))
    procs.append(started := Broker(at, tag="docs-broker"))
    started.wait_started()
    alice = Person(installed, tmp_path)
    (command,) = doccommands.block("docs/access-requests.md", "For the engineer").runnable
    done = doccommands.run(command, cwd=tmp_path,
                           env={**alice.env, "PATH": f"{BIN}{os.pathsep}{alice.env['PATH']}"})
    assert done.returncode == 0, done.stderr
    assert "Host prod-payments" in done.stdout
    name = user_of(done.stdout)
    assert installed.request(name)["spec"]["reason"] == "INC-42: timeouts"
    (line,) = [li for li in started.access_lines() if li["accessRequest"] == name]
    assert (line["decision"], line["rule"]) == ("approve", "payments")
