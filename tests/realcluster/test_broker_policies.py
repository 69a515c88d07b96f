"""The broker's shipped policies on the real control plane, through `cred-helper approver run`:

- issue 20: each attestation forgery (tests/support/forgeries.py), created as alice with her
  bootstrap credential, is denied by the shipped step-2 policy with only `roots:` added, for a
  reason naming the chain; alice's genuine chain is approved and kcm signs it. CSRs whose names
  the signer reads differently, or whose extensions nobody can read, are accepted by
  kube-apiserver and denied by the broker.
- issue 25: break-glass (alice, on call and in sre, asks for the group `break-glass`, bound to
  cluster-admin, which she does not hold) stays pending with an Event saying why, and a
  person's approval issues it to kubectl; kube-apiserver itself refuses a CSR naming
  system:masters; the starter policy leaves every request pending; `--dry-run` and
  `approver check` change nothing.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from cred_helper.broker.run import CSR_PATH
from cred_helper.kube import BearerAuth, Endpoint, KubeClient
from tests.realcluster.test_approver_runtime import admin_client, events_for, verdicts
from tests.realcluster.test_real_kubectl import csr_names, pending_csrs
from tests.support import doccommands, policies
from tests.support.forgeries import ALICE, Forgery, Scene, request_pem
from tests.support.harness import CRED_HELPER

pytestmark = pytest.mark.realcluster

SIGNER = "kubernetes.io/kube-apiserver-client"


def alice_client(plane) -> KubeClient:
    """alice's bootstrap credential: what mallory stole."""
    return KubeClient(Endpoint(plane.url, ca_pem=plane.ca.cert_pem),
                      BearerAuth(plane.bootstrap_token, source="bootstrap"))


def create(client: KubeClient, name: str, pem: bytes, reason: str | None = None) -> dict:
    meta: dict = {"name": name}
    if reason is not None:
        meta["annotations"] = {"cred-helper/reason": reason}
    return client.post(CSR_PATH, {
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": meta,
        "spec": {"request": base64.b64encode(pem).decode(), "signerName": SIGNER,
                 "usages": ["client auth"], "expirationSeconds": 1800}})


def approver(plane, policy: Path, *extra: str, timeout: float = 120
             ) -> tuple[list[dict], str]:
    """`cred-helper approver run` as the admin, until it exits: its decision lines, stderr."""
    done = subprocess.run([CRED_HELPER, "approver", "run", f"--policy={policy}",
                           f"--kubeconfig={plane.dir / 'admin.kubeconfig'}", *extra],
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env={"PATH": os.environ.get("PATH", "")})
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def condition(client: KubeClient, name: str) -> dict:
    obj = client.get(f"{CSR_PATH}/{name}")
    (found,) = [c for c in obj["status"]["conditions"] if c["type"] in ("Approved", "Denied")]
    return found


def wait_certificate(client: KubeClient, name: str, timeout: float = 60) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cert = (client.get(f"{CSR_PATH}/{name}").get("status") or {}).get("certificate")
        if cert:
            return base64.b64decode(cert)
        time.sleep(0.2)
    raise AssertionError(f"{name} was not signed")


@pytest.fixture(scope="module")
def scene() -> Scene:
    return Scene()


@pytest.fixture
def step_two(tmp_path, scene) -> Path:
    """The shipped step-2 policy with only `roots:` added (the review's fourth variant)."""
    (tmp_path / "test-root.pem").write_bytes(scene.ca.root_pem)
    policy = tmp_path / "policy.yaml"
    policy.write_text(policies.with_attestation(policies.step_two(),
                                                [str(tmp_path / "test-root.pem")]))
    return policy


def _name(tag: str) -> str:
    return f"i20-{tag}-{uuid.uuid4().hex[:6]}"


def _odd_request(kind: str) -> bytes:
    """A CSR for alice that kube-apiserver accepts and the broker cannot judge as Go reads it:
    a BMPString CN ending in NUL (Go: "alice@example.com"), or an x400Address alternative name."""
    key = ec.generate_private_key(ec.SECP256R1())
    if kind == "bmp":
        cn = x509.NameAttribute(NameOID.COMMON_NAME, ALICE + "\x00", _type=_ASN1Type.BMPString,
                                _validate=False)
        builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([cn]))
    else:
        builder = (x509.CertificateSigningRequestBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ALICE)]))
                   .add_extension(x509.UnrecognizedExtension(
                       x509.ObjectIdentifier("2.5.29.17"), bytes([0x30, 2, 0xA3, 0])),
                       critical=False))
    from cryptography.hazmat.primitives import hashes

    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_forgeries_are_denied_and_the_genuine_chain_approved(control_plane, scene, step_two):
    client, admin = alice_client(control_plane), admin_client(control_plane)
    names: dict[str, str] = {}
    for label, forgery in {"genuine": scene.genuine(), **scene.forgeries()}.items():
        # Every request is made as alice, with her stolen bootstrap credential.
        as_alice = Forgery(forgery.token, forgery.certs, ALICE)
        pem, _ = request_pem(as_alice, groups=("oncall",))
        names[label] = create(client, _name("forgery"), pem)["metadata"]["name"]
    for kind in ("bmp", "x400"):
        names[kind] = create(client, _name(kind), _odd_request(kind))["metadata"]["name"]

    decisions, _ = approver(control_plane, step_two, "--once")
    by_csr = {d["csr"]: d for d in decisions}
    genuine = by_csr[names.pop("genuine")]
    assert (genuine["decision"], genuine["rule"]) == ("approve", "oncall"), genuine["reason"]
    assert genuine["attestation"]["serial"] == 12345678
    wait_certificate(admin, genuine["csr"])  # kcm signed what the broker approved

    odd = {kind: names.pop(kind) for kind in ("bmp", "x400")}
    for label, name in names.items():
        decision = by_csr[name]
        assert decision["decision"] == "deny", (label, decision["reason"])
        assert "attestation chain" in decision["reason"], (label, decision["reason"])
        found = condition(admin, name)
        assert (found["type"], found["reason"]) == ("Denied", "CredHelperRule.oncall")
        assert "attestation chain" in found["message"]
    assert "CN is encoded as BMPString" in condition(admin, odd["bmp"])["message"]
    assert "x400Address or ediPartyName" in condition(admin, odd["x400"])["message"]


def readme_break_glass_commands() -> list[list[str]]:
    """The docs' break-glass commands, as a person would type them."""
    commands = doccommands.block("docs/admin/policy.md", "Break-glass").commands
    return [shlex.split(command, comments=True) for command in commands]


def test_break_glass_waits_for_a_person_who_approves_it(box, control_plane, step_two):
    """The README's commands: the admin binds the group break-glass to cluster-admin; alice (on
    call and in sre) asks for it through a kubeconfig user of its own, with a reason. The
    broker leaves the CSR pending with an Event saying why; an admin approves it, and kubectl
    goes on as cluster-admin."""
    admin = admin_client(control_plane)
    bind, set_credentials, use = readme_break_glass_commands()
    assert bind[:3] == ["kubectl", "create", "clusterrolebinding"]
    assert set_credentials[:3] == ["kubectl", "config", "set-credentials"]
    assert use[:3] == ["kubectl", "--user", "prod-break-glass"]
    control_plane.kubectl(*bind[1:])

    profile = box.root / "config" / "cred-helper" / "config.toml"
    profile.parent.mkdir(parents=True, exist_ok=True)
    profile.write_text(f'[clusters.prod]\nissuer = "csr"\n'
                       f'bootstrap-token-file = "{box.token_file}"\napproval-timeout = "90s"\n')
    kubeconfig = box.kubeconfig(box.base_args())
    # kubectl passes XDG_* on to the plugin, and finds `cred-helper` on PATH, as installed
    env = {**box.env, "KUBECONFIG": str(kubeconfig),
           "PATH": f"{Path(CRED_HELPER).parent}:{os.environ.get('PATH', '')}"}
    done = subprocess.run([control_plane.kubectl_path, *set_credentials[1:]], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

    proc = subprocess.Popen(
        [CRED_HELPER, "approver", "run", f"--policy={step_two}",
         f"--kubeconfig={control_plane.dir / 'admin.kubeconfig'}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        env={"PATH": os.environ.get("PATH", "")})
    try:
        before = csr_names(control_plane)
        kubectl = subprocess.Popen([control_plane.kubectl_path, *use[1:]], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   stdin=subprocess.DEVNULL)
        event = csr = None
        deadline = time.monotonic() + 60
        while event is None and time.monotonic() < deadline and kubectl.poll() is None:
            found = pending_csrs(control_plane, before)
            if found:
                csr = found[0]
                event = next(iter(events_for(control_plane, csr["metadata"]["uid"])), None)
            time.sleep(0.2)
        assert event is not None, kubectl.communicate()
        assert event["reason"] == "ManualApprovalRequired" and event["type"] == "Warning"
        assert event["message"] == (
            "manual by rule break-glass: rule break-glass: every check passed; this rule "
            "leaves the request for a person (requester 'alice@example.com' asks for "
            "break-glass, which they do not hold)")
        assert verdicts(admin, csr["metadata"]["name"]) == []  # pending, for a person
        assert csr["metadata"]["annotations"]["cred-helper/reason"] == "INC-42: etcd is down"

        control_plane.kubectl("certificate", "approve", csr["metadata"]["name"])
        out, err = kubectl.communicate(timeout=90)
        assert kubectl.returncode == 0, err  # cluster-admin may list nodes
        whoami = subprocess.run([control_plane.kubectl_path, "--user", "prod-break-glass",
                                 "auth", "whoami", "-o", "json"], env=env, capture_output=True,
                                text=True, timeout=60)  # served from the cache
        assert whoami.returncode == 0, whoami.stderr
        assert "break-glass" in json.loads(whoami.stdout)["status"]["userInfo"]["groups"]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    lines = [json.loads(line) for line in out.splitlines()]
    ours = [d for d in lines if d["csr"] == csr["metadata"]["name"]]
    assert [(d["decision"], d["rule"]) for d in ours] == [("manual", "break-glass")], err


def test_the_starter_policy_leaves_every_request_pending(tmp_path, control_plane, scene):
    """As shipped, the broker turns nothing away: an everyday request, one for the
    break-glass group without a reason, and one with a forged proof all stay pending, each
    with an Event for the person."""
    client, admin = alice_client(control_plane), admin_client(control_plane)
    policy = tmp_path / "policy.yaml"
    policy.write_text(policies.starter())
    forged = scene.forgeries()["software key as alice's serial, under mallory's real slot and f9"]
    requests = {
        "everyday": _plain_request(("oncall",)),
        "masters": _plain_request(("break-glass",)),
        "forged": request_pem(forged, ("oncall",))[0],
    }
    names = {label: create(client, _name(label), pem)["metadata"]["name"]
             for label, pem in requests.items()}
    decisions, _ = approver(control_plane, policy, "--once")
    by_csr = {d["csr"]: d for d in decisions}
    for label, name in names.items():
        assert by_csr[name]["decision"] == "manual", (label, by_csr[name]["reason"])
        assert verdicts(admin, name) == []
        obj = admin.get(f"{CSR_PATH}/{name}")
        (event,) = events_for(control_plane, obj["metadata"]["uid"])
        assert event["reason"] == "ManualApprovalRequired"
    assert "note: its attestation proof fails: the attestation chain holds 3 certificates" \
        in by_csr[names["forged"]]["reason"]


def test_kube_apiserver_refuses_a_csr_for_system_masters(control_plane):
    """Why break-glass names a group of its own: the CertificateSubjectRestriction admission
    plugin (on by default) refuses any kube-apiserver-client CSR naming system:masters, before
    an approver sees it."""
    from cred_helper.errors import ServerError

    with pytest.raises(ServerError) as refused:
        create(alice_client(control_plane), _name("masters"), _plain_request(("system:masters",)))
    assert refused.value.status == 403
    assert "use of kubernetes.io/kube-apiserver-client signer with system:masters group is " \
        "not allowed" in refused.value.status_message


def _plain_request(orgs: tuple[str, ...]) -> bytes:
    from cred_helper.issuers.csr import build_request

    return build_request(ec.generate_private_key(ec.SECP256R1()), ALICE, list(orgs)).encode()


def test_dry_run_and_check_change_nothing(tmp_path, control_plane, scene, step_two):
    """`approver run --dry-run` prints what it would decide for live CSRs and leaves them as
    they were, with no Event; `approver check --csr` on the saved object says the same."""
    client, admin = alice_client(control_plane), admin_client(control_plane)
    forged = scene.forgeries()["software key as alice's serial, under mallory's real slot and f9"]
    names = {label: create(client, _name("dry"), request_pem(forgery, ("oncall",))[0])[
        "metadata"]["name"] for label, forgery in (("forged", forged),
                                                   ("genuine", scene.genuine()))}
    decisions, _ = approver(control_plane, step_two, "--once", "--dry-run")
    by_csr = {d["csr"]: d for d in decisions}
    assert by_csr[names["genuine"]]["decision"] == "approve"
    assert by_csr[names["forged"]]["decision"] == "deny"
    assert all(d["dryRun"] is True for d in decisions)
    for name in names.values():
        obj = admin.get(f"{CSR_PATH}/{name}")
        assert not (obj.get("status") or {}).get("conditions"), obj.get("status")
        assert events_for(control_plane, obj["metadata"]["uid"]) == []

    saved = tmp_path / "csr.yaml"
    saved.write_text(control_plane.kubectl("get", "csr", names["forged"], "-o", "yaml"))
    done = subprocess.run([CRED_HELPER, "approver", "check", str(step_two), f"--csr={saved}"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(x) for x in done.stdout.splitlines()]
    assert (line["csr"], line["decision"], line["rule"]) == (names["forged"], "deny", "oncall")
    assert line["reason"] == by_csr[names["forged"]]["reason"]

    # Then the broker itself decides them, as the dry run said.
    decisions, _ = approver(control_plane, step_two, "--once")
    assert {d["csr"]: d["decision"] for d in decisions if d["csr"] in names.values()} == {
        names["forged"]: "deny", names["genuine"]: "approve"}


def test_a_watching_dry_run_says_each_version_once(tmp_path, control_plane, step_two):
    """`approver run --dry-run` left running: a new CSR is judged once; a change to it (a
    new resourceVersion) is judged again; nothing is written either time."""
    client, admin = alice_client(control_plane), admin_client(control_plane)
    out = tmp_path / "dry.out"
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [CRED_HELPER, "approver", "run", "--dry-run", f"--policy={step_two}",
             f"--kubeconfig={control_plane.dir / 'admin.kubeconfig'}"], stdout=sink,
            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH", "")})
    try:
        time.sleep(2)  # listed and watching
        name = create(client, _name("watch"), _plain_request(("oncall",)))["metadata"]["name"]

        def ours() -> list[dict]:
            return [json.loads(line) for line in out.read_text().splitlines()
                    if json.loads(line)["csr"] == name]

        deadline = time.monotonic() + 30
        while not ours() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(ours()) == 1
        control_plane.kubectl("annotate", "csr", name, "example.com/note=changed")
        deadline = time.monotonic() + 30
        while len(ours()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)  # a third line, were there one, would be here by now
        lines = ours()
        assert [(d["decision"], d["dryRun"]) for d in lines] == [("deny", True)] * 2
        obj = admin.get(f"{CSR_PATH}/{name}")
        assert not (obj.get("status") or {}).get("conditions")
        assert events_for(control_plane, obj["metadata"]["uid"]) == []
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


def test_kube_apiserver_refuses_a_csr_naming_an_extension_twice(control_plane):
    """Why a request naming an extension twice reaches the broker only through `approver
    check --csr` (where it is denied with its reason, tests/unit/broker/test_facts.py): Go's
    parser refuses it, and kube-apiserver with it."""
    from cred_helper.errors import ServerError
    from tests.unit.broker.build import request_naming_an_extension_twice

    with pytest.raises(ServerError) as refused:
        create(alice_client(control_plane), _name("twice"), request_naming_an_extension_twice())
    assert refused.value.status == 422
    assert "spec.request" in refused.value.status_message


def test_a_request_made_while_the_broker_was_down_is_judged_as_it_was_made(control_plane,
                                                                            scene, step_two):
    """alice's genuine attested request, created while no broker runs; the broker starts
    later than the policy's max-age (2 s here, 5 minutes as shipped). The proof is held to the
    CSR's creationTimestamp, which kube-apiserver set: approved and signed. Before, it was
    denied as "a replayed or stale proof"."""
    policy = step_two.parent / "short.yaml"
    policy.write_text(step_two.read_text().replace("attestation:\n", "attestation:\n"
                                                   "  max-age: 2s\n", 1))
    pem, _ = request_pem(scene.genuine(), groups=("oncall",))
    name = create(alice_client(control_plane), _name("late"), pem)["metadata"]["name"]
    time.sleep(4)

    decisions, _ = approver(control_plane, policy, "--once")

    (ours,) = [d for d in decisions if d["csr"] == name]
    assert (ours["decision"], ours["attestation"]["ok"]) == ("approve", True), ours["reason"]
    wait_certificate(admin_client(control_plane), name)
