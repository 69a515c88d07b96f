"""The approver's loop against the real kube-apiserver (Events and Leases live only there):
two approvers racing, a restart mid-stream, leader election on a Lease, a manual CSR announced
once across a restart, and conflicts. A test judge (tests/support/approver_proc.py) decides by
the CSR's name, so that only the runtime is under test here."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cred_helper.broker.run import CSR_PATH, Approver
from cred_helper.broker.verdict import APPROVE, DENY, NO_PROOF, Decision
from cred_helper.kube import BearerAuth, Endpoint, KubeClient

pytestmark = pytest.mark.realcluster

ROOT = Path(__file__).resolve().parents[2]


def admin_client(plane) -> KubeClient:
    return KubeClient(Endpoint(plane.url, ca_pem=plane.ca.cert_pem),
                      BearerAuth(plane.admin_token, source="admin"))


def csr_request(cn: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])).sign(key, hashes.SHA256())
    return base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode()


def create_csr(client: KubeClient, name: str) -> dict:
    return client.post(CSR_PATH, {
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": csr_request("admin"), "signerName":
                 "kubernetes.io/kube-apiserver-client", "usages": ["client auth"],
                 "expirationSeconds": 600}})


def verdicts(client: KubeClient, name: str) -> list[str]:
    obj = client.get(f"{CSR_PATH}/{name}")
    return [c["type"] for c in (obj.get("status") or {}).get("conditions") or []
            if c["type"] in ("Approved", "Denied")]


def requests_about(plane, name: str) -> list[tuple[str, str, int]]:
    """(verb, subresource, response code) of every request kube-apiserver was asked about
    the CSR `name`, by anyone, refused ones included (its audit log)."""
    return [(e["verb"], e["objectRef"].get("subresource", ""),
             e.get("responseStatus", {}).get("code", 0)) for e in plane.audit_events()
            if e.get("objectRef", {}).get("resource") == "certificatesigningrequests"
            and e["objectRef"].get("name") == name]


def caught_up(client: KubeClient, plane, p: str, approvers: int, timeout: float = 60) -> None:
    """Instead of a sleep: every active approver has handled every event so far. A CSR made
    after all the others is decided, and each of the `approvers` has read it again to judge
    it (a GET each, in the audit log); an approver handles its events in order, so each is
    past every earlier one, and what it would have done about them it has done."""
    name = f"{p}approve-caught-up"
    create_csr(client, name)
    wait_decided(client, [name])
    deadline = time.monotonic() + timeout
    while [r[:2] for r in requests_about(plane, name)].count(("get", "")) < approvers:
        assert time.monotonic() < deadline, requests_about(plane, name)
        time.sleep(0.1)


def decided_once(plane, names: list[str]) -> None:
    """Each CSR was decided by exactly one request the server took, all approvers together;
    any other decision sent was refused as a conflict (each approves at the version it
    judged, so a racing approver's is refused, then it reads the CSR decided)."""
    for name in names:
        sent = [code for verb, sub, code in requests_about(plane, name)
                if (verb, sub) == ("update", "approval")]
        assert sent.count(200) == 1 and set(sent) <= {200, 409}, (name, sent)


def wait_decided(client: KubeClient, names: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    left = list(names)
    while left and time.monotonic() < deadline:
        left = [n for n in left if not verdicts(client, n)]
        time.sleep(0.1)
    assert not left, f"not decided: {left}"


def events_for(plane, uid: str) -> list[dict]:
    items = json.loads(plane.kubectl("get", "events", "-n", "default", "-o", "json"))["items"]
    return [e for e in items if e["involvedObject"].get("uid") == uid]


class Proc:
    """One approver process (python -m tests.support.approver_proc) with its output in files."""

    def __init__(self, tmp: Path, plane, prefix: str, *extra: str, tag: str = "a",
                 token: str = "") -> None:
        self.out = tmp / f"{tag}-{uuid.uuid4().hex[:6]}.out"
        self.err = self.out.with_suffix(".err")
        kubeconfig = plane.write_kubeconfig(tmp / f"{tag}.kubeconfig",
                                            {"token": token or plane.admin_token})
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.support.approver_proc", "--prefix", prefix,
                 "--kubeconfig", str(kubeconfig), *extra], cwd=ROOT, env=env,
                stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.read_text().splitlines() if line]

    def wait_lines(self, count: int, timeout: float) -> list[dict]:
        """Its decision lines once there are `count` of them (or as many as came in time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.lines()) < count:
            time.sleep(0.1)
        return self.lines()

    def stderr(self) -> str:
        return self.err.read_text()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def prefix() -> str:
    return f"rt{uuid.uuid4().hex[:6]}-"


def test_two_approvers_racing_decide_each_csr_once(tmp_path, control_plane, procs):
    client, p = admin_client(control_plane), prefix()
    procs += [Proc(tmp_path, control_plane, p, tag="one"),
              Proc(tmp_path, control_plane, p, tag="two")]
    time.sleep(2)  # both listed and watching
    names = [f"{p}{'approve' if i % 3 else 'deny'}-{i}" for i in range(24)]
    for name in names:
        create_csr(client, name)
    wait_decided(client, names)
    caught_up(client, control_plane, p, approvers=2)
    decided_once(control_plane, names)
    for name in names:
        expected = "Approved" if "approve" in name else "Denied"
        assert verdicts(client, name) == [expected], name
    lines = [line for proc in procs for line in proc.lines()]
    assert sorted(line["csr"] for line in lines) == sorted([*names, f"{p}approve-caught-up"])
    assert all(line["rule"] in ("test-approve", "test-deny") for line in lines)
    # Each process is a live approver: neither sat out the race.
    assert all(proc.proc.poll() is None for proc in procs), [p.stderr() for p in procs]


def test_restart_mid_stream_decides_nothing_twice(tmp_path, control_plane, procs):
    client, p = admin_client(control_plane), prefix()
    first = Proc(tmp_path, control_plane, p, tag="first")
    procs.append(first)
    time.sleep(1.5)
    before = [f"{p}approve-{i}" for i in range(5)]
    manual = create_csr(client, f"{p}manual-0")
    for name in before:
        create_csr(client, name)
    wait_decided(client, before)
    first.wait_lines(6, timeout=30)
    first.kill()  # SIGKILL: no chance to tidy up
    meanwhile = [f"{p}deny-{i}" for i in range(5)]
    for name in meanwhile:
        create_csr(client, name)
    second = Proc(tmp_path, control_plane, p, tag="second")
    procs.append(second)
    wait_decided(client, meanwhile)
    caught_up(client, control_plane, p, approvers=1)  # the second has judged manual-0 too
    decided_once(control_plane, [*before, *meanwhile])
    assert sorted(line["csr"] for line in first.lines()) == sorted([*before, f"{p}manual-0"])
    assert sorted(line["csr"] for line in second.lines()) == sorted(
        [*meanwhile, f"{p}approve-caught-up"])
    for name in before:
        assert verdicts(client, name) == ["Approved"]
    for name in meanwhile:
        assert verdicts(client, name) == ["Denied"]
    # The manual CSR: still pending, announced by exactly one Event, across the restart.
    assert verdicts(client, f"{p}manual-0") == []
    events = events_for(control_plane, manual["metadata"]["uid"])
    assert [e["reason"] for e in events] == ["ManualApprovalRequired"]
    assert "the name says manual" in events[0]["message"]


def test_decisions_are_events_that_describe_shows(tmp_path, control_plane, procs):
    client, p = admin_client(control_plane), prefix()
    procs.append(Proc(tmp_path, control_plane, p))
    time.sleep(1.5)
    name = f"{p}deny-x"
    created = create_csr(client, name)
    wait_decided(client, [name])
    obj = client.get(f"{CSR_PATH}/{name}")
    cond = next(c for c in obj["status"]["conditions"] if c["type"] == "Denied")
    assert cond["reason"] == "CredHelperRule.test-deny"
    assert cond["message"] == "the name says deny"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not events_for(control_plane,
                                                         created["metadata"]["uid"]):
        time.sleep(0.1)
    described = control_plane.kubectl("describe", "csr", name)
    assert "Denied" in described and "deny by rule test-deny" in described, described
    line = procs[0].lines()[0]
    assert line["decision"] == "deny" and line["requester"]["username"] == "admin"
    assert set(line) >= {"csr", "requester", "subject", "rule", "decision", "reason",
                         "attestation"}


def lease(plane, name: str) -> dict:
    return json.loads(plane.kubectl("get", "lease", "-n", "default", name, "-o", "json"))


def test_leader_election_one_acts_and_the_other_takes_over(tmp_path, control_plane, procs):
    client, p = admin_client(control_plane), prefix()
    lease_name = f"{p}lease"
    common = ("--lease-name", lease_name, "--lease-duration", "3")
    a = Proc(tmp_path, control_plane, p, *common, "--identity", "replica-a", tag="a")
    b = Proc(tmp_path, control_plane, p, *common, "--identity", "replica-b", tag="b")
    procs += [a, b]
    time.sleep(3)
    names = [f"{p}approve-{i}" for i in range(8)]
    for name in names:
        create_csr(client, name)
    wait_decided(client, names)
    caught_up(client, control_plane, p, approvers=1)
    decided_once(control_plane, names)  # the standby sent nothing
    holder = lease(control_plane, lease_name)["spec"]["holderIdentity"]
    leader, standby = (a, b) if holder == "replica-a" else (b, a)
    assert sorted(line["csr"] for line in leader.lines()) == sorted(
        [*names, f"{p}approve-caught-up"])
    assert standby.lines() == []
    transitions = lease(control_plane, lease_name)["spec"]["leaseTransitions"]
    leader.kill()  # no release: the standby must wait the lease out
    later = [f"{p}deny-{i}" for i in range(4)]
    for name in later:
        create_csr(client, name)
    wait_decided(client, later, timeout=60)
    spec = lease(control_plane, lease_name)["spec"]
    assert spec["holderIdentity"] != holder
    assert spec["leaseTransitions"] == transitions + 1
    assert sorted(line["csr"] for line in standby.lines()) == sorted(later)
    for name in names:
        assert verdicts(client, name) == ["Approved"]


def test_a_clean_stop_gives_the_lease_up(tmp_path, control_plane, procs):
    p = prefix()
    lease_name = f"{p}lease"
    a = Proc(tmp_path, control_plane, p, "--lease-name", lease_name, "--identity", "solo")
    procs.append(a)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if lease(control_plane, lease_name)["spec"].get("holderIdentity") == "solo":
                break
        except RuntimeError:
            pass
        time.sleep(0.2)
    a.stop()
    assert a.proc.returncode == 0, a.stderr()
    assert not lease(control_plane, lease_name)["spec"].get("holderIdentity")


def test_conflict_reads_and_judges_again(control_plane):
    """Someone changes the CSR while we judge it: our approval at the judged version is
    refused (409), so we read it again and judge the new version."""
    client, p = admin_client(control_plane), prefix()
    name = f"{p}approve-conflict"
    create_csr(client, name)
    seen: list[str] = []

    def judge(obj: dict):
        seen.append(obj["metadata"]["resourceVersion"])
        if len(seen) == 1:  # meanwhile a person labels it: a new resourceVersion
            control_plane.kubectl("label", "csr", name, "touched=yes")
        return Decision(APPROVE, "r", "ok"), NO_PROOF, None

    lines: list[str] = []
    approver = Approver(client, lambda: judge, out=lines.append, warn=print,
                        clock=time.monotonic, sleep=time.sleep)
    approver.handle(client.get(f"{CSR_PATH}/{name}"))
    assert len(seen) == 2 and seen[0] != seen[1]
    assert verdicts(client, name) == ["Approved"]
    assert len(lines) == 1


def test_conflict_with_a_person_deciding_first_leaves_it(control_plane):
    client, p = admin_client(control_plane), prefix()
    name = f"{p}approve-person"
    create_csr(client, name)

    def judge(obj: dict):
        control_plane.kubectl("certificate", "deny", name)  # a person, faster than us
        return Decision(APPROVE, "r", "ok"), NO_PROOF, None

    lines: list[str] = []
    approver = Approver(client, lambda: judge, out=lines.append, warn=print,
                        clock=time.monotonic, sleep=time.sleep)
    approver.handle(client.get(f"{CSR_PATH}/{name}"))
    assert verdicts(client, name) == ["Denied"]
    assert lines == []


def test_a_failed_reload_keeps_the_last_good_judge(control_plane, capsys):
    client, p = admin_client(control_plane), prefix()
    name = f"{p}deny-reload"
    create_csr(client, name)
    calls = {"n": 0}

    def first(obj: dict):
        if not obj["metadata"]["name"].startswith(p):
            raise LookupError("another test's CSR")
        return Decision(DENY, "first", "the first policy"), NO_PROOF, None

    def load():
        calls["n"] += 1
        if calls["n"] == 1:
            return first
        from cred_helper.errors import UsageError
        raise UsageError("policy.yaml line 3: unknown field 'approve_all'")

    warnings: list[str] = []
    lines: list[str] = []
    approver = Approver(client, load, out=lines.append, warn=warnings.append,
                        clock=time.monotonic, sleep=time.sleep)
    approver.run_once()
    assert verdicts(client, name) == ["Denied"]
    assert [json.loads(line)["rule"] for line in lines if p in line] == ["first"]
    failed = [w for w in warnings if "reload failed" in w]
    assert failed == ["policy reload failed, keeping the last good policy: "
                      "policy.yaml line 3: unknown field 'approve_all'"]
