"""The attestation chain attacked as issue 20's review did it, through the broker's judge with
the shipped step-2 policy and the README's: mallory builds whole proofs from her own genuine
YubiKey, from an end-entity certificate of an organisation CA listed in `roots`, or from a
look-alike root (tests/support/forgeries.py). Every forgery is denied with a reason naming the
chain; alice's genuine chain is approved."""

from __future__ import annotations

import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from cred_helper.broker import attestation
from cred_helper.broker.attestation import key_sha256, root_problem, spki
from cred_helper.broker.main import policy_judge
from cred_helper.broker.policy import PolicyError, load_policy
from cred_helper.broker.verdict import APPROVE, DENY
from tests.support import policies
from tests.support.attestca import UNSET, AttestationCA
from tests.support.forgeries import (
    ALICE,
    ALICE_SERIAL,
    MALLORY,
    MALLORY_SERIAL,
    Scene,
    request_pem,
    usage,
)

from .build import csr_object

NOW = float(int(time.time()))
SCENE = Scene()
GROUPS = ("oncall", "system:authenticated")


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> list[str]:
    where = tmp_path_factory.mktemp("roots")
    (where / "test-root.pem").write_bytes(SCENE.ca.root_pem)
    (where / "org-root.pem").write_bytes(SCENE.org.root_pem)
    return [str(where / "test-root.pem"), str(where / "org-root.pem")]


REGISTRY = [f"{{user: {ALICE}, serial: {ALICE_SERIAL}}}",
            f"{{user: {ALICE}, key-sha256: {key_sha256(spki(SCENE.alice_key.public_key()))}}}",
            f"{{user: {MALLORY}, serial: {MALLORY_SERIAL}}}"]


@pytest.fixture(scope="module", params=["shipped step 2", "shipped step 2, roots only",
                                        "README"])
def judge(request, roots):
    if request.param == "README":
        text = policies.with_attestation(policies.documented(), roots, REGISTRY)
    elif request.param == "shipped step 2":
        text = policies.with_attestation(policies.step_two(), roots, REGISTRY)
    else:  # the review's fourth variant: the shipped policy with only `roots:` added
        text = policies.with_attestation(policies.step_two(), roots[:1])
    return policy_judge(load_policy(text, request.param), lambda: NOW)


def _judged(judge, forgery):
    pem, _ = request_pem(forgery, groups=("oncall",), now=NOW)
    decision, proved, _ = judge(csr_object(pem, username=forgery.user, groups=GROUPS,
                                           created=NOW))
    return decision, proved


def test_the_genuine_chain_is_approved(judge):
    decision, proved = _judged(judge, SCENE.genuine())
    assert (decision.action, decision.rule) == (APPROVE, "oncall"), decision.reason
    assert (proved.mode, proved.ok, proved.serial, proved.user) == ("attested", True,
                                                                     ALICE_SERIAL, ALICE)


@pytest.mark.parametrize("name", list(SCENE.forgeries()))
def test_every_forgery_is_denied_naming_the_chain(judge, name):
    decision, proved = _judged(judge, SCENE.forgeries()[name])
    assert decision.action == DENY, decision.reason
    assert not proved.ok and proved.mode == "attested"
    assert "attestation chain" in decision.reason, decision.reason
    assert proved.serial is None and proved.user == ""  # nothing read from a forgery


# The reason each forgery meets: the first rule of the chain it breaks.
EXPECTED = {
    "software key as alice's serial, under mallory's real slot and f9":
        "the attestation chain holds 3 certificates, where a YubiKey's is exactly two",
    "the same, without the f9 certificate":
        "the attestation chain does not lead to any of the configured roots (the device (f9) "
        "certificate is issued by 'CN=Yubico PIV Attestation')",
    "the same, placed directly under mallory's f9 certificate":
        "the attestation chain's slot attestation certificate is not signed by its device "
        "(f9) certificate",
    "mallory's software key as hardware, PIN and touch always, as herself":
        "holds 3 certificates",
    "mallory's never/never key re-attested by itself as always/always": "holds 3 certificates",
    "the re-attested key, without the f9 certificate": "does not lead to any of the configured",
    "four: the forgery, mallory's slot and f9 certificates, and the root":
        "holds 4 certificates",
    "the two certificates the other way round":
        "the attestation chain's slot attestation certificate attests another key",
    "alice's slot certificate twice": "is not signed by its device (f9) certificate",
    "the slot certificate alone": "the attestation chain holds 1 certificate, where",
    "the root in the f9 position": "is not signed by its device (f9) certificate",
    "an f9 certificate from a look-alike root of the same name":
        "does not lead to any of the configured roots",
    "an end-entity certificate of the organisation's CA, without basicConstraints":
        "the attestation chain's device (f9) certificate has no basicConstraints, so it is "
        "not a CA (only under Yubico's own roots may a device certificate omit them)",
    "an end-entity certificate of the organisation's CA, marked not a CA":
        "the attestation chain's device (f9) certificate is marked as not a CA",
    "a CA certificate of the organisation whose keyUsage forbids signing certificates":
        "device (f9) certificate may not sign certificates (its keyUsage lacks keyCertSign)",
}


def test_each_forgery_meets_its_own_rule(roots):
    judge = policy_judge(load_policy(policies.with_attestation(policies.step_two(), roots,
                                                               REGISTRY), "p"), lambda: NOW)
    forgeries = SCENE.forgeries()
    assert set(EXPECTED) == set(forgeries)
    for name, forgery in forgeries.items():
        _, proved = _judged(judge, forgery)
        assert EXPECTED[name] in proved.reason, (name, proved.reason)


def test_a_genuine_chain_of_another_device_does_not_make_it_alices(judge):
    """mallory's own genuine YubiKey, used with alice's stolen bootstrap credential: the chain
    holds, and the registry says whose device it is."""
    mallory_genuine = SCENE.forgeries()["the same, without the f9 certificate"]
    mallory_genuine.token, mallory_genuine.user = SCENE.mallory_key, ALICE
    mallory_genuine.certs = (SCENE.mallory_slot.public_bytes(Encoding.DER),
                             SCENE.mallory_device.cert.public_bytes(Encoding.DER))
    decision, proved = _judged(judge, mallory_genuine)
    assert decision.action == DENY
    assert f"device serial {MALLORY_SERIAL}" in proved.reason or "registered to" in \
        proved.reason, proved.reason


# ---- the roots, and Yubico's own quirks -------------------------------------------------------

def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode()


@pytest.mark.parametrize(("root", "problem"), [
    (AttestationCA("pathlen 0", root_path_length=0).root, "allows no intermediate"),
    (SCENE.org_entity(basic_constraints=x509.BasicConstraints(False, None)).cert,
     "is not a CA certificate"),
    (SCENE.org_entity(basic_constraints=UNSET).cert, "is not a CA certificate"),
    (SCENE.org_entity(basic_constraints=x509.BasicConstraints(True, None),
                      key_usage=usage(digital_signature=True)).cert, "lacks keyCertSign"),
], ids=["pathlen-0", "not-a-ca", "no-basic-constraints", "no-key-cert-sign"])
def test_a_root_that_cannot_issue_device_certificates_is_refused_when_loaded(tmp_path, root,
                                                                              problem):
    assert problem in root_problem(root)
    (tmp_path / "root.pem").write_text(_pem(root))
    text = policies.with_attestation(policies.step_two(), [str(tmp_path / "root.pem")])
    with pytest.raises(PolicyError) as caught:
        load_policy(text, "p.yaml")
    assert caught.value.field == "attestation.roots[0]" and problem in caught.value.problem


def test_a_root_whose_extensions_cannot_be_read_is_refused_when_loaded(tmp_path):
    """A root naming an x400Address (cryptography cannot read it) is refused with its line,
    never a raise when the policy is read or a proof is judged."""
    from cryptography.hazmat.primitives import hashes

    ca = AttestationCA("odd root")
    odd = (x509.CertificateBuilder().subject_name(ca.root.subject).issuer_name(ca.root.subject)
           .public_key(ca.root_key.public_key()).serial_number(7)
           .not_valid_before(ca.start).not_valid_after(ca.end)
           .add_extension(x509.BasicConstraints(True, None), critical=True)
           .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.17"),
                                                     bytes([0x30, 2, 0xA3, 0])), critical=False)
           .sign(ca.root_key, hashes.SHA256()))
    (tmp_path / "odd.pem").write_text(_pem(odd))
    with pytest.raises(PolicyError) as caught:
        load_policy(policies.with_attestation(policies.step_two(), [str(tmp_path / "odd.pem")]),
                    "p.yaml")
    assert caught.value.field == "attestation.roots[0]"
    assert "that cred-helper can read" in caught.value.problem


def test_yubicos_roots_are_fit_to_be_roots():
    """Both published roots, the U2F one's pathlen 0 lifted as piv-go lifts it."""
    from cred_helper.broker.yubico import YUBICO_PIV_ROOTS

    for pem in YUBICO_PIV_ROOTS:
        assert root_problem(x509.load_pem_x509_certificate(pem)) is None
    assert load_policy("rules: []", "p").attestation.roots_pem == YUBICO_PIV_ROOTS


def test_an_f9_without_basic_constraints_passes_under_yubicos_roots_only(monkeypatch,
                                                                          tmp_path):
    """Some YubiKey 4 f9 certificates carry no basicConstraints (piv-go accepts them). The
    test root stands in for Yubico's here, by making it one of the roots yubico.py names."""
    ca = AttestationCA("Test PIV Root CA Serial 263751")
    device = ca.new_device(4004, basic_constraints=UNSET)
    forgery = SCENE.genuine()
    forgery.certs = device.chain(SCENE.alice_key.public_key(), serial=ALICE_SERIAL)
    (tmp_path / "yk4-root.pem").write_bytes(ca.root_pem)
    judge = policy_judge(load_policy(policies.with_attestation(
        policies.step_two(), [str(tmp_path / "yk4-root.pem")]), "p"), lambda: NOW)
    _, proved = _judged(judge, forgery)
    assert not proved.ok and "has no basicConstraints" in proved.reason
    monkeypatch.setattr(attestation, "_yubico_roots_der",
                        lambda: frozenset({ca.root.public_bytes(Encoding.DER)}))
    decision, proved = _judged(judge, forgery)
    assert proved.ok, proved.reason
    assert decision.action == APPROVE, decision.reason


def test_an_intermediate_is_trusted_only_where_roots_name_it(tmp_path):
    """Newer YubiKeys may have a CA between Yubico's root and the f9 certificate (Yubico's
    SDK says so), and the token shows only the slot and f9 certificates. The chain stays two
    long: naming that intermediate in `roots` makes it the certificate the chain must reach;
    naming only the root above it does not let the broker take an intermediate on trust."""
    ca = AttestationCA("Test Attestation Root 1")
    intermediate = ca.new_device(cn="Test PIV Attestation B 1",
                                 basic_constraints=x509.BasicConstraints(True, None))
    device = ca.new_device(5005, issuer=intermediate)
    forgery = SCENE.genuine()
    forgery.certs = device.chain(SCENE.alice_key.public_key(), serial=ALICE_SERIAL)
    (tmp_path / "root.pem").write_bytes(ca.root_pem)
    (tmp_path / "intermediate.pem").write_text(_pem(intermediate.cert))
    outcomes = {}
    for roots in (["root.pem"], ["intermediate.pem"]):
        text = policies.with_attestation(policies.step_two(), [str(tmp_path / r) for r in roots])
        judge = policy_judge(load_policy(text, "p"), lambda: NOW)
        decision, proved = _judged(judge, forgery)
        outcomes[roots[0]] = (decision.action, proved.reason)
    assert outcomes["root.pem"][0] == DENY
    assert "does not lead to any of the configured roots" in outcomes["root.pem"][1]
    assert outcomes["intermediate.pem"][0] == APPROVE, outcomes


def test_an_issuing_ca_of_an_organisation_root_is_no_device(roots):
    """mallory's own TLS client certificate from her organisation's issuing CA (a CA
    directly under the organisation root an admin listed in `roots`, which issues no device
    certificates), for a software key she registered as hers."""
    import datetime

    from cryptography.hazmat.primitives import hashes

    issuing = SCENE.org.new_device(cn="Example Corp Issuing CA 1",
                                   basic_constraints=x509.BasicConstraints(True, 0))
    now = datetime.datetime.now(datetime.timezone.utc)
    tls = (x509.CertificateBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, MALLORY)]))
           .issuer_name(issuing.cert.subject).public_key(SCENE.software.public_key())
           .serial_number(x509.random_serial_number())
           .not_valid_before(now - datetime.timedelta(hours=1))
           .not_valid_after(now + datetime.timedelta(days=1))
           .add_extension(x509.BasicConstraints(False, None), critical=True)
           .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH]),
                          critical=False)
           .sign(issuing.key, hashes.SHA256()))
    registry = [f"{{user: {MALLORY}, key-sha256: {key_sha256(spki(SCENE.software.public_key()))}}}"]
    judge = policy_judge(load_policy(policies.with_attestation(policies.step_two(), roots,
                                                               registry), "p"), lambda: NOW)
    forgery = SCENE.genuine()
    forgery.token, forgery.user = SCENE.software, MALLORY
    forgery.certs = (tls.public_bytes(Encoding.DER), issuing.cert.public_bytes(Encoding.DER))
    decision, proved = _judged(judge, forgery)
    assert decision.action == DENY, (decision.reason, proved.reason)
    assert "lacks what every YubiKey writes into its attestation" in proved.reason


def test_a_proof_is_as_fresh_as_its_request_not_as_the_judgment(roots):
    """The proof's time is held to the CSR's creationTimestamp (kube-apiserver's clock; the
    requester cannot set it), not to the broker's now. A broker down longer than max-age (a
    crash loop, a drained node) denied every attested request made meanwhile as "a replayed
    or stale proof", and `approver check --csr` did so for every saved one. A proof made
    long before its request, or dated long after it, is refused as before."""
    pem, _ = request_pem(SCENE.genuine(), groups=("oncall",), now=NOW)
    text = policies.with_attestation(policies.step_two(), roots[:1], REGISTRY)
    an_hour_later = policy_judge(load_policy(text, "p"), lambda: NOW + 3600)

    def judged(created: float):
        decision, proved, _ = an_hour_later(csr_object(pem, username=ALICE, groups=GROUPS,
                                                       created=created))
        return decision, proved

    decision, proved = judged(NOW + 2)
    assert (decision.action, proved.ok) == (APPROVE, True), proved.reason
    decision, proved = judged(NOW + 301)
    assert decision.action == DENY
    assert proved.reason == ("the proof was made 301 s before its request, more than the 300 "
                             "s allowed (a replayed or stale proof)")
    decision, proved = judged(NOW - 301)
    assert decision.action == DENY
    assert proved.reason == ("the proof is dated 301 s after its request was made, more than "
                             "the 300 s allowed")
