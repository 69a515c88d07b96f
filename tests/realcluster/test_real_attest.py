"""`--attest-with` against the real kube-apiserver and kube-controller-manager: the proof's
extension comes back intact in `spec.request` (its CSR signature still verifies, and the proof
in it verifies), and kcm signs such a CSR, copying nothing of the proof into the
certificate."""

from __future__ import annotations

import base64
import json
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cred_helper.attestproof import PROOF_OID
from cred_helper.broker.attestation import verify
from cred_helper.broker.verdict import AttestationConfig, RegistryEntry
from tests.realcluster.test_real_kubectl import csr_names, pending_csrs
from tests.support.attestca import AttestationCA, facts_of_object
from tests.support.harness import CRED_HELPER, as_kubectl_would
from tests.support.needs import needs
from tests.support.softhsm import MODULE, USER_PIN, SoftHSM, available

pytestmark = [pytest.mark.realcluster,
              needs(available(), "softhsm2 is installed by scripts/setup")]

URI = "pkcs11:token=ci;object=piv-auth;id=%01"


def test_the_proof_survives_the_real_api_server_and_kcm_signs_the_csr(box, control_plane,
                                                                        tmp_path):
    hsm = SoftHSM(tmp_path / "hsm")
    hsm.new_token("ci")
    env = {**box.env, **hsm.env, "PIN": USER_PIN}
    made = subprocess.run(as_kubectl_would(CRED_HELPER, "keys", "generate", URI, "--type=p256",
                                           "--pin-source=env:PIN", f"--pkcs11-module={MODULE}"),
                          env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    public = serialization.load_pem_public_key(subprocess.run(
        as_kubectl_would(CRED_HELPER, "keys", "public", URI, f"--pkcs11-module={MODULE}"),
        env=env, capture_output=True, text=True, timeout=60, check=True).stdout.encode())
    ca = AttestationCA()
    slot, device = ca.chain(public, serial=4711)
    hsm.import_certificate("ci", slot, "X.509 Certificate for PIV Attestation 9a", b"\x01")
    hsm.import_certificate("ci", device, "X.509 Certificate for PIV Attestation", b"\x19")

    env["KUBERNETES_EXEC_INFO"] = json.dumps(box.exec_info())
    before = csr_names(control_plane)
    proc = subprocess.Popen(as_kubectl_would(
        CRED_HELPER, "get", *box.base_args("--cache=none", f"--attest-with={URI}",
                                           "--pin-source=env:PIN", f"--pkcs11-module={MODULE}")),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    found: list[dict] = []
    while not found and time.monotonic() < deadline and proc.poll() is None:
        found = pending_csrs(control_plane, before)
        time.sleep(0.2)
    assert found, proc.communicate()[1][-300:]
    (csr,) = found

    # What the real server keeps: the request as sent (its signature covers the extension).
    request = x509.load_pem_x509_csr(base64.b64decode(csr["spec"]["request"]))
    assert request.is_signature_valid
    extension = request.extensions.get_extension_for_oid(PROOF_OID)
    assert extension.critical is False
    result = verify(facts_of_object(csr), AttestationConfig(
        roots_pem=(ca.root_pem,), registry=(RegistryEntry(csr["spec"]["username"],
                                                          serial=4711),)), time.time())
    assert (result.mode, result.ok, result.serial) == ("attested", True, 4711), result.reason

    control_plane.kubectl("certificate", "approve", csr["metadata"]["name"])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    cert = x509.load_pem_x509_certificate(
        json.loads(out)["status"]["clientCertificateData"].encode())
    oids = {e.oid for e in cert.extensions}
    assert PROOF_OID not in oids
