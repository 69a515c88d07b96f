"""`cred-helper get --attest-with pkcs11:...` end to end: a key on a SoftHSM2 token, the test
attestation CA's certificates stored beside it as ykcs11 shows a YubiKey's, and the local API
server's auto-approver running the broker's attestation check on each CSR it receives. No
person approves anything."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cred_helper.broker.attestation import key_sha256, spki, verify
from cred_helper.broker.verdict import Attestation, AttestationConfig, RegistryEntry
from tests.support.attestca import AttestationCA, der, facts_of_object
from tests.support.harness import one_error
from tests.support.needs import needs
from tests.support.softhsm import MODULE, USER_PIN, SoftHSM, available

pytestmark = needs(available(), "softhsm2 is installed by scripts/setup")

USER = "alice@example.com"  # the sandbox's bootstrap identity


@pytest.fixture
def hsm(tmp_path):
    box = SoftHSM(tmp_path / "hsm")
    box.new_token("ci")
    return box


def _env(hsm, pin: str = USER_PIN) -> dict[str, str]:
    return {**hsm.env, "PIN": pin}


def _key(sandbox, hsm, kind: str, uri: str):
    made = sandbox.run("keys", "generate", uri, f"--type={kind}", "--pin-source=env:PIN",
                       f"--pkcs11-module={MODULE}", extra_env=_env(hsm))
    assert made.returncode == 0, made.stderr
    public = sandbox.run("keys", "public", uri, f"--pkcs11-module={MODULE}",
                         extra_env=_env(hsm))
    assert public.returncode == 0, public.stderr
    return serialization.load_pem_public_key(public.stdout.encode())


class Broker:
    """The auto-approver: approves a CSR only when its proof verifies."""

    def __init__(self, config: AttestationConfig) -> None:
        self.config = config
        self.seen: list[Attestation] = []
        self.requests: list[dict] = []

    def __call__(self, obj: dict) -> bool:
        self.requests.append(obj)
        result = verify(facts_of_object(obj), self.config, time.time())
        self.seen.append(result)
        return result.ok


def _get(sandbox, hsm, uri: str, *extra: str, pin: str = USER_PIN):
    return sandbox.run("get", *sandbox.base_args(f"--attest-with={uri}", "--pin-source=env:PIN",
                                                 f"--pkcs11-module={MODULE}", *extra),
                       exec_info=sandbox.exec_info(), extra_env=_env(hsm, pin))


def test_an_attested_token_key_gets_its_certificate_approved_with_no_person(sandbox, hsm):
    uri = "pkcs11:token=ci;object=piv-auth;id=%01"
    public = _key(sandbox, hsm, "p256", uri)
    ca = AttestationCA()
    slot, device = ca.chain(public, serial=20240611, pin="once", touch="always")
    # as ykcs11 shows them: the slot's own certificate and its attestation share CKA_ID 01
    # (picked by label), the device's f9 certificate has id 19
    own = ca.attest(public)  # stands in for "X.509 Certificate for PIV Authentication"
    hsm.import_certificate("ci", der(own), "X.509 Certificate for PIV Authentication", b"\x01")
    hsm.import_certificate("ci", slot, "X.509 Certificate for PIV Attestation 9a", b"\x01")
    hsm.import_certificate("ci", device, "X.509 Certificate for PIV Attestation", b"\x19")
    broker = Broker(AttestationConfig(roots_pem=(ca.root_pem,),
                                      registry=(RegistryEntry(USER, serial=20240611),)))
    sandbox.server.auto_approve = broker

    got = _get(sandbox, hsm, uri)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["status"]["clientCertificateData"]
    (result,) = broker.seen
    assert (result.mode, result.ok, result.user) == ("attested", True, USER)
    assert (result.serial, result.pin_policy, result.touch_policy) == (20240611, "once", "always")
    assert "no attestation certificate" not in got.stderr

    # the proof names the certificate's key, not the token's: the token key stays on the token
    request = x509.load_pem_x509_csr(base64.b64decode(broker.requests[0]["spec"]["request"]))
    assert spki(request.public_key()) != spki(public)


def test_a_token_without_attestation_gives_the_registry_key_mode(sandbox, hsm):
    uri = "pkcs11:token=ci;object=soft"
    public = _key(sandbox, hsm, "ed25519", uri)
    broker = Broker(AttestationConfig(registry=(
        RegistryEntry(USER, key_sha256=key_sha256(spki(public))),)))
    sandbox.server.auto_approve = broker

    got = _get(sandbox, hsm, uri)
    assert got.returncode == 0, got.stderr
    (result,) = broker.seen
    assert (result.mode, result.ok, result.user) == ("registry-key", True, USER)
    assert "has no attestation certificate: the proof shows only that you hold the key" in \
        got.stderr


def test_an_unregistered_key_is_left_for_a_person(sandbox, hsm):
    uri = "pkcs11:token=ci;object=stranger"
    _key(sandbox, hsm, "p256", uri)
    broker = Broker(AttestationConfig())
    sandbox.server.auto_approve = broker

    got = _get(sandbox, hsm, uri, "--approval-timeout=2s")
    assert got.returncode == 1
    assert "was not approved within 2s" in got.stderr
    (result,) = broker.seen
    assert not result.ok and "registry does not name" in result.reason


def test_a_wrong_pin_makes_no_request(sandbox, hsm):
    uri = "pkcs11:token=ci;object=k"
    _key(sandbox, hsm, "p256", uri)
    got = _get(sandbox, hsm, uri, pin="000000")
    assert got.returncode == 1
    assert "rejected the PIN" in one_error(got.stderr)
    assert sandbox.server.csr_creations == 0


def test_attest_with_is_checked_before_anything_runs(sandbox, hsm):
    bad = sandbox.run("get", *sandbox.base_args("--attest-with=/dev/yubikey"),
                      exec_info=sandbox.exec_info())
    assert bad.returncode == 2
    assert "--attest-with: expected a pkcs11: URI" in one_error(bad.stderr)
    oidc = sandbox.run("get", "--issuer=oidc", "--oidc-issuer-url=https://idp.example",
                       "--oidc-client-id=c", extra_env={"CRED_HELPER_ATTEST_WITH": "pkcs11:"},
                       exec_info=sandbox.exec_info())
    assert "CRED_HELPER_ATTEST_WITH: attestation goes into certificate signing requests" in \
        one_error(oidc.stderr)
    assert sandbox.server.csr_creations == 0
