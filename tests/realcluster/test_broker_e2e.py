"""The access broker end to end, with no person: real kubectl runs cred-helper with
`--attest-with` on a SoftHSM2 token that holds the test attestation CA's certificates, the CSR
goes to the real kube-apiserver, `cred-helper approver run` approves it by the policy file, kcm
signs it, and kubectl succeeds. The same request without a proof is denied, with the rule and
the check named."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.support.attestca import AttestationCA
from tests.support.harness import CRED_HELPER, as_kubectl_would
from tests.support.needs import needs
from tests.support.softhsm import MODULE, USER_PIN, SoftHSM, available

pytestmark = [pytest.mark.realcluster,
              needs(available(), "softhsm2 is installed by scripts/setup")]

URI = "pkcs11:token=ci;object=piv-auth;id=%01"
SERIAL = 20261202
POLICY = """\
default: manual
attestation:
  roots: [{root}]
  registry:
    - {{user: alice@example.com, serial: {serial}}}
rules:
  - name: oncall
    match: {{groups: [oncall]}}
    action: approve
    subject-groups: ["*"]
    max-expiration: 30m
    key-types: [ed25519, p256]
    attestation: required
    pin-policies: [once, always]
"""


@pytest.fixture
def token(box, tmp_path):
    """A SoftHSM2 token with a P-256 key whose attestation chains to a test CA, as ykcs11 shows
    a YubiKey's slot 9a; returns (environment, the CA)."""
    hsm = SoftHSM(tmp_path / "hsm")
    hsm.new_token("ci")
    env = {**box.env, **hsm.env, "PIN": USER_PIN}
    for args in (("keys", "generate", URI, "--type=p256", "--pin-source=env:PIN"),
                 ("keys", "public", URI)):
        done = subprocess.run(as_kubectl_would(CRED_HELPER, *args, f"--pkcs11-module={MODULE}"),
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    public = serialization.load_pem_public_key(done.stdout.encode())
    ca = AttestationCA()
    slot, device = ca.chain(public, serial=SERIAL, pin="once", touch="always")
    hsm.import_certificate("ci", slot, "X.509 Certificate for PIV Attestation 9a", b"\x01")
    hsm.import_certificate("ci", device, "X.509 Certificate for PIV Attestation", b"\x19")
    return env, ca


@pytest.fixture
def approver(box, control_plane, token):
    """`cred-helper approver run` with the on-call policy, as the admin; yields a function that
    stops it and returns its decision lines."""
    _, ca = token
    root = box.root / "attestation-root.pem"
    root.write_bytes(ca.root_pem)
    policy = box.root / "policy.yaml"
    policy.write_text(POLICY.format(root=root, serial=SERIAL))
    admin = control_plane.dir / "admin.kubeconfig"
    proc = subprocess.Popen([CRED_HELPER, "approver", "run", f"--policy={policy}",
                             f"--kubeconfig={admin}"], env=box.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)

    def stop() -> tuple[list[dict], str]:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        return [json.loads(line) for line in out.splitlines()], err

    yield stop
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def kubectl(box, plane, kubeconfig: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    # The exec entry passes XDG_* on; SoftHSM2's config and the PIN come from the environment.
    run_env = {**env, "KUBECONFIG": str(kubeconfig), "PATH": os.environ.get("PATH", "")}
    return subprocess.run([plane.kubectl_path, *args], env=run_env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_an_attested_request_is_approved_with_no_person(box, control_plane, token, approver):
    env, _ = token
    kubeconfig = box.kubeconfig(box.base_args(f"--attest-with={URI}", "--pin-source=env:PIN",
                                              f"--pkcs11-module={MODULE}",
                                              "--approval-timeout=60s"))
    done = kubectl(box, control_plane, kubeconfig, env, "auth", "whoami", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"]["userInfo"]["username"] == "alice@example.com"
    assert "waiting up to" not in done.stderr  # nobody was asked

    decisions, _ = approver()
    (ours,) = [d for d in decisions if d["requester"]["username"] == "alice@example.com"
               and d["decision"] == "approve"]
    assert ours["rule"] == "oncall"
    assert ours["subject"]["commonName"] == "alice@example.com"
    assert ours["attestation"]["mode"] == "attested" and ours["attestation"]["ok"]
    assert ours["attestation"]["serial"] == SERIAL
    csr = json.loads(control_plane.kubectl("get", "csr", ours["csr"], "-o", "json"))
    (condition,) = csr["status"]["conditions"]
    assert (condition["type"], condition["reason"]) == ("Approved", "CredHelperRule.oncall")
    events = control_plane.kubectl("get", "events", "-n", "default", "--field-selector",
                                   f"involvedObject.name={ours['csr']}", "-o", "json")
    assert json.loads(events)["items"], "the decision is an Event on the CSR too"


def test_the_same_request_without_a_proof_is_denied(box, control_plane, token, approver):
    env, _ = token
    kubeconfig = box.kubeconfig(box.base_args("--approval-timeout=60s"))
    done = kubectl(box, control_plane, kubeconfig, env, "get", "--raw", "/version")
    assert done.returncode != 0
    assert "was denied" in done.stderr and "rule oncall" in done.stderr

    decisions, _ = approver()
    (ours,) = [d for d in decisions if d["requester"]["username"] == "alice@example.com"
               and d["decision"] == "deny"]
    assert ours["rule"] == "oncall" and "attestation" in ours["reason"]
