"""The broker's attestation check on proofs made by the plugin's own code (keys/attest.py),
with software keys standing in for the token: every mode, every way a forged proof fails,
and hostile bytes that must never crash it."""

from __future__ import annotations

import base64
import json
import os
import random
import time
from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from cred_helper import attestproof as wire
from cred_helper.attestproof import PROOF_OID
from cred_helper.broker.attestation import key_sha256, spki, verify
from cred_helper.broker.facts import CsrFacts
from cred_helper.broker.verdict import NO_PROOF, AttestationConfig, RegistryEntry
from cred_helper.issuers.csr import build_request, subject_name
from cred_helper.keys.attest import make_proof
from tests.support.attestca import AttestationCA, facts_of

NOW = float(int(time.time()))  # proofs carry whole seconds
CA = AttestationCA()


def _token_key(kind: str = "p256"):
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "rsa":
        return rsa.generate_private_key(65537, 2048)
    return ec.generate_private_key(ec.SECP256R1() if kind == "p256" else ec.SECP384R1())


def _csr(proof: bytes | None, key=None, cn: str = "alice", groups=("oncall",)):
    key = key or ed25519.Ed25519PrivateKey.generate()
    pem = build_request(key, cn, list(groups), proof)
    return x509.load_pem_x509_csr(pem.encode())


def _request(token, certs=(), cn="alice", groups=("oncall",), when=NOW, csr_key=None,
             proof_subject=None, user="alice") -> CsrFacts:
    """A CSR as the plugin makes it (the proof inside), read as the broker would."""
    csr_key = csr_key or ed25519.Ed25519PrivateKey.generate()
    proof = make_proof(token, tuple(certs), csr_key.public_key(),
                       proof_subject or subject_name(cn, list(groups)), when)
    return facts_of(_csr(proof, csr_key, cn, groups), user)


def _config(token=None, user="alice", roots=(CA.root_pem,), serial=None, max_age=300):
    registry = []
    if token is not None:
        registry.append(RegistryEntry(user, key_sha256=key_sha256(spki(token.public_key()))))
    if serial is not None:
        registry.append(RegistryEntry(user, serial=serial))
    return AttestationConfig(roots_pem=tuple(roots), registry=tuple(registry), max_age=max_age)


# ---- what works ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["p256", "p384", "ed25519", "rsa"])
def test_an_attested_key_gives_the_user_serial_and_policies(kind):
    token = _token_key(kind)
    facts = _request(token, CA.chain(token.public_key(), serial=7654321, pin="always",
                                     touch="cached"))
    got = verify(facts, _config(token), NOW)
    assert (got.mode, got.ok, got.user, got.serial) == ("attested", True, "alice", 7654321)
    assert (got.pin_policy, got.touch_policy) == ("always", "cached")
    assert "device serial 7654321, firmware 5.4.3, USB-A Keychain" in got.reason


def test_an_attested_device_serial_in_the_registry_is_enough():
    token = _token_key()
    facts = _request(token, CA.chain(token.public_key(), serial=555))
    got = verify(facts, _config(None, serial=555), NOW)
    assert (got.mode, got.ok, got.user, got.serial) == ("attested", True, "alice", 555)


def test_without_certificates_a_registered_key_is_the_weaker_mode():
    token = _token_key("ed25519")
    got = verify(_request(token), _config(token), NOW)
    assert (got.mode, got.ok, got.user) == ("registry-key", True, "alice")
    assert got.serial is None and got.pin_policy == "" and "possession" in got.reason


def test_a_serial_entry_means_nothing_without_attestation():
    token = _token_key()
    got = verify(_request(token), _config(None, serial=12345678), NOW)
    assert (got.mode, got.ok) == ("registry-key", False)
    assert "registry does not name" in got.reason


def test_no_proof_is_no_proof():
    key = ed25519.Ed25519PrivateKey.generate()
    assert verify(facts_of(_csr(None, key), "alice"), _config(), NOW) is NO_PROOF


def test_the_default_roots_are_yubicos():
    from cred_helper.broker.attestation import _roots

    names = sorted(c.subject.rfc4514_string() for c in _roots(AttestationConfig()))
    assert names == ["CN=Yubico PIV Root CA Serial 263751",
                     "CN=Yubico U2F Root CA Serial 457200631"]


# ---- forged proofs, each with its own reason -----------------------------------------------------

def _moved(token):
    """A good proof taken out of alice's CSR and put into a CSR with another key."""
    original = _request(token, CA.chain(token.public_key()))
    return facts_of(_csr(original.proof), "alice")


def _resubject(token):
    """A proof for CN=alice,O=oncall carried by a CSR asking for O=system:masters."""
    csr_key = ed25519.Ed25519PrivateKey.generate()
    proof = make_proof(token, CA.chain(token.public_key()), csr_key.public_key(),
                       subject_name("alice", ["oncall"]), NOW)
    return facts_of(_csr(proof, csr_key, groups=("system:masters",)), "alice")


def _tamper_payload(token):
    facts = _request(token, CA.chain(token.public_key()))
    doc = json.loads(facts.proof)
    payload = json.loads(base64.b64decode(doc["payload"]))
    payload["time"] += 1
    doc["payload"] = base64.b64encode(json.dumps(payload, sort_keys=True,
                                                 separators=(",", ":")).encode()).decode()
    return replace(facts, proof=_canon(doc))


def _tamper_signature(token):
    facts = _request(token, CA.chain(token.public_key()))
    doc = json.loads(facts.proof)
    sig = bytearray(base64.b64decode(doc["sig"]))
    sig[-1] ^= 1
    doc["sig"] = base64.b64encode(bytes(sig)).decode()
    return replace(facts, proof=_canon(doc))


def _other_device(token):
    """Certificates attesting another key, carried beside a signature by this one."""
    other = _token_key()
    return _request(token, CA.chain(other.public_key()))


def _broken_chain(token):
    slot, _ = CA.chain(token.public_key())
    return _request(token, (slot, AttestationCA().chain(token.public_key())[1]))


def _expired(token):
    import datetime

    # Relative to NOW (when this module was imported), the time the proof is checked at: a
    # suite that runs longer than five minutes must not make this certificate valid again.
    past = datetime.datetime.fromtimestamp(NOW, datetime.timezone.utc) - \
        datetime.timedelta(minutes=5)
    return _request(token, (CA.chain(token.public_key(), not_after=past)))


FORGERIES = {
    "wrong root": (lambda t: _request(t, AttestationCA("Evil Root").chain(t.public_key())),
                   "does not lead to any of the configured roots"),
    "proof for another CSR's key": (_moved, "made for another CSR key"),
    "proof for another subject": (_resubject, "made for another subject"),
    "replayed (stale) proof": (lambda t: _request(t, CA.chain(t.public_key()), when=NOW - 301),
                               "301 s old, more than the 300 s allowed"),
    "proof from the future": (lambda t: _request(t, CA.chain(t.public_key()), when=NOW + 900),
                              "900 s in the future"),
    "tampered payload": (_tamper_payload, "signature does not verify"),
    "tampered signature": (_tamper_signature, "signature does not verify"),
    "attestation of another key": (_other_device, "attests another key"),
    "device certificate from another CA": (_broken_chain, "is not signed by its device"),
    "expired attestation": (_expired, "slot attestation certificate is not valid now"),
}


@pytest.mark.parametrize("case", list(FORGERIES))
def test_a_forged_proof_is_refused_with_its_own_reason(case):
    token = _token_key()
    make, reason = FORGERIES[case]
    got = verify(make(token), _config(token), NOW)
    assert (got.mode, got.ok) == ("attested", False)
    assert reason in got.reason, got.reason
    assert got.user == "" and got.serial is None


def test_the_reasons_are_distinct():
    # (a tampered payload and a tampered signature look the same: the signature fails)
    token = _token_key()
    reasons = {case: verify(make(token), _config(token), NOW).reason
               for case, (make, _) in FORGERIES.items() if case != "tampered signature"}
    assert len(set(reasons.values())) == len(reasons), reasons


def test_a_key_nobody_registered_is_refused():
    token = _token_key()
    got = verify(_request(token, CA.chain(token.public_key(), serial=4242)),
                 _config(_token_key()), NOW)
    assert not got.ok
    assert "registry does not name: key " in got.reason and "(device serial 4242)" in got.reason


def test_a_key_registered_to_someone_else_is_refused():
    token = _token_key()
    got = verify(_request(token, user="mallory"), _config(token, user="alice"), NOW)
    assert not got.ok
    assert got.reason == "the hardware key is registered to 'alice', not to the requester " \
                         "'mallory'"


def test_an_ambiguous_registry_is_refused():
    token = _token_key()
    config = AttestationConfig(roots_pem=(CA.root_pem,), registry=(
        RegistryEntry("alice", key_sha256=key_sha256(spki(token.public_key()))),
        RegistryEntry("bob", serial=31337)))
    got = verify(_request(token, CA.chain(token.public_key(), serial=31337)), config, NOW)
    assert not got.ok and got.reason == "the registry names this key for several users: alice, bob"


def test_a_real_yubico_root_refuses_the_test_chain():
    token = _token_key()
    got = verify(_request(token, CA.chain(token.public_key())),
                 _config(token, roots=()), NOW)
    assert not got.ok and "does not lead to any of Yubico's PIV roots" in got.reason


def test_the_algorithm_must_fit_the_key():
    token = _token_key("p256")
    facts = _request(token)
    doc = json.loads(facts.proof)
    doc["alg"] = "EdDSA"
    forged = replace(facts, proof=_canon(doc))
    got = verify(forged, _config(token), NOW)
    assert not got.ok and got.reason == "the proof's algorithm EdDSA does not fit its token key"


def _slot_certificate(token, extensions: dict[int, bytes]) -> x509.Certificate:
    """A slot certificate for `token`'s key as the test device signs one, with exactly these
    of Yubico's extensions (1.3.6.1.4.1.41482.3.N: bytes)."""
    from tests.support import attestca

    slot = CA.attest(token.public_key())
    builder = (x509.CertificateBuilder().subject_name(slot.subject).issuer_name(slot.issuer)
               .public_key(token.public_key()).serial_number(1)
               .not_valid_before(slot.not_valid_before_utc)
               .not_valid_after(slot.not_valid_after_utc))
    for suffix, value in extensions.items():
        builder = attestca._ext(builder, suffix, value)
    return builder.sign(CA.device_key, hashes.SHA256())


YUBICO_EXTENSIONS = {3: bytes([5, 7, 1]), 7: bytes([0x02, 0x01, 0x2A]), 8: bytes([2, 2])}


def test_unknown_pin_policies_stay_visible_and_match_nothing():
    from tests.support import attestca

    token = _token_key()
    # a policy byte this module does not know
    odd = _slot_certificate(token, {**YUBICO_EXTENSIONS, 8: bytes([4, 2])})
    got = verify(_request(token, (attestca.der(odd), attestca.der(CA.device))),
                 _config(token), NOW)
    assert got.ok and got.pin_policy == "unknown-0x04" and got.touch_policy == "always"


@pytest.mark.parametrize("left_out", [3, 7, 8])
def test_a_slot_certificate_without_yubicos_extensions_is_no_attestation(left_out):
    """Every YubiKey that attests (firmware 4.3 on) writes its firmware (.3), serial (.7) and
    PIN and touch policy (.8) into the slot certificate: one without them is some other
    certificate of a CA under a listed root, never a device's attestation."""
    from tests.support import attestca

    token = _token_key()
    bare = _slot_certificate(token, {k: v for k, v in YUBICO_EXTENSIONS.items()
                                     if k != left_out})
    got = verify(_request(token, (attestca.der(bare), attestca.der(CA.device))),
                 _config(token), NOW)
    assert not got.ok and "lacks what every YubiKey writes into its attestation" in got.reason
    assert got.serial is None and got.user == ""


# ---- hostile bytes ---------------------------------------------------------------------------

def _garbage_facts(proof: bytes) -> CsrFacts:
    key = ed25519.Ed25519PrivateKey.generate()
    return replace(facts_of(_csr(None, key), "alice"), proof=proof)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _canon(doc: dict) -> bytes:
    """A proof document spelled as the plugin spells it, so that a test reaches the check it
    is about and not the canonical-form one."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


GARBAGE = {
    b"": "is not JSON",
    b"\xff\xfe": "is not JSON",
    b"not json": "is not JSON",
    b"[1, 2]": "is not a JSON object",
    b"[" * 5000 + b"]" * 5000: "is not JSON",
    b"{" + b" " * 20000 + b"}": "more than the 16384 allowed",
    b'{"v": 2}': "is not version 1",
    b'{"v": true}': "is not version 1",
    b'{"v": 1}': "unknown or missing fields: alg, certs, payload, sig",
    b'{"v":1,"v":1}': "names 'v' twice",
    _canon({"v": 1, "alg": "none", "payload": "", "sig": "", "certs": []}):
        "algorithm 'none' is not one of",
    _canon({"v": 1, "alg": "ES256", "payload": "!!", "sig": "AA==", "certs": []}):
        "payload is not valid base64",
    _canon({"v": 1, "alg": "ES256", "payload": "", "sig": "AA==", "certs": []}):
        "payload is empty",
    _canon({"v": 1, "alg": "ES256", "payload": "AA==", "sig": "AA==",
                "certs": "x"}): "certs is not a list",
    _canon({"v": 1, "alg": "ES256", "payload": "AA==", "sig": "AA==",
                "certs": ["AA=="] * 5}): "5 certificates, more than 4",
    _canon({"v": 1, "alg": "ES256", "payload": _b64(b"{}"), "sig": "AA==",
                "certs": []}): "payload is not version 1",
    _canon({"v": 1, "alg": "ES256", "payload": _b64(json.dumps(
        {"v": 1, "ctx": "jwt", "csr_key": "AA==", "subject": "AA==", "time": 1,
         "token_key": "AA=="}).encode()), "sig": "AA==", "certs": []}):
        "for another use",
    _canon({"v": 1, "alg": "ES256", "payload": _b64(json.dumps(
        {"v": 1, "ctx": wire.CONTEXT, "csr_key": "AA==", "subject": "AA==", "time": 1.5,
         "token_key": "AA=="}).encode()), "sig": "AA==", "certs": []}):
        "time is not a plausible unix time",
    _canon({"v": 1, "alg": "ES256", "payload": _b64(json.dumps(
        {"v": 1, "ctx": wire.CONTEXT, "csr_key": "AA==", "subject": "AA==", "time": 1,
         "token_key": "AA=="}).encode()), "sig": "AA==", "certs": []}):
        "not in canonical form",
    _canon({"v": 1, "alg": "ES256", "payload": _b64(wire.Payload(
        b"k", b"s", 1, b"not a key").encode()), "sig": "AA==", "certs": []}):
        "token key is not a public key cred-helper can read",
}


@pytest.mark.parametrize("data", list(GARBAGE), ids=range(len(GARBAGE)))
def test_garbage_extension_bytes_are_refused_with_the_reason(data):
    got = verify(_garbage_facts(data), _config(), NOW)
    assert not got.ok and got.mode in ("attested", "registry-key")
    assert GARBAGE[data] in got.reason, got.reason


def test_garbage_certificates_are_refused():
    token = _token_key()
    got = verify(_request(token, (b"\x30\x03\x02\x01\x01", CA.chain(token.public_key())[1])),
                 _config(token), NOW)
    assert not got.ok
    assert got.reason == "the proof's slot attestation certificate is not a readable X.509 " \
                         "certificate"


def test_no_mutated_proof_passes():
    """Bytes changed anywhere in a good proof: every result is a refusal, never a crash and
    never a pass (a proof has one spelling, and every part of it is signed or checked)."""
    token = _token_key()
    facts = _request(token, CA.chain(token.public_key()))
    config = _config(token)
    assert verify(facts, config, NOW).ok  # the unmutated proof passes
    rng = random.Random(11)
    for _ in range(600):
        data = bytearray(facts.proof)
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(data))
            data[at] = (data[at] + rng.randrange(1, 256)) % 256  # always a change
        got = verify(replace(facts, proof=bytes(data)), config, NOW)
        assert not got.ok, got.reason
    for _ in range(100):
        got = verify(_garbage_facts(os.urandom(rng.randint(0, 3000))), config, NOW)
        assert not got.ok


@pytest.mark.parametrize("part", ["payload", "sig", "slot", "device"])
def test_no_mutation_inside_a_part_passes(part):
    """The same, one level down: a part of the proof decoded, its bytes changed, and the proof
    spelled canonically again, so that the change reaches the signature, payload and chain
    checks instead of the spelling check."""
    token = _token_key()
    facts = _request(token, CA.chain(token.public_key()))
    config = _config(token)
    found = wire.decode(facts.proof)
    rng = random.Random(part)
    for _ in range(250):
        parts = {"payload": bytearray(found.payload), "sig": bytearray(found.sig),
                 "slot": bytearray(found.certs[0]), "device": bytearray(found.certs[1])}
        data = parts[part]
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            data[at] = (data[at] + rng.randrange(1, 256)) % 256
        mutated = wire.Proof(found.alg, bytes(parts["payload"]), bytes(parts["sig"]),
                             (bytes(parts["slot"]), bytes(parts["device"]))).encode()
        got = verify(replace(facts, proof=mutated), config, NOW)
        assert not got.ok, (part, got.reason)


def test_a_proof_has_one_spelling():
    token = _token_key()
    facts = _request(token, CA.chain(token.public_key()))
    doc = json.loads(facts.proof)
    spaced = json.dumps(doc).encode()  # the same values, with spaces
    got = verify(replace(facts, proof=spaced), _config(token), NOW)
    assert not got.ok and got.reason.endswith("the proof is not in canonical form")
    # "AB==" decodes as "AA==" does (b64decode ignores the last character's unused bits)
    other = _canon({"v": 1, "alg": "ES256", "payload": "AB==", "sig": "AA==", "certs": []})
    with pytest.raises(wire.ProofError, match="payload is not in canonical base64"):
        wire.decode(other)


def test_a_certificate_whose_fields_do_not_parse_is_refused():
    """cryptography reads a certificate's names lazily: a device certificate that loads but
    whose issuer is not DER must be a refusal, not an exception (found by mutation)."""
    token = _token_key()
    facts = _request(token, CA.chain(token.public_key()))
    doc = json.loads(facts.proof)
    device = bytearray(base64.b64decode(doc["certs"][1]))
    for at in range(len(device)):  # find a byte whose change breaks the issuer only
        spoiled = bytes(device[:at]) + b"\x00" + bytes(device[at + 1:])
        try:
            cert = x509.load_der_x509_certificate(spoiled)
            _ = cert.extensions, cert.not_valid_after_utc, cert.public_key()
        except Exception:
            continue
        try:
            _ = cert.issuer
        except (ValueError, TypeError):
            break
    else:
        pytest.skip("no single byte spoils only the issuer here")
    doc["certs"][1] = base64.b64encode(spoiled).decode()
    got = verify(replace(facts, proof=_canon(doc)), _config(token), NOW)
    assert not got.ok
    assert got.reason == "the proof's device (f9) certificate is not a readable X.509 " \
        "certificate"


def test_the_proof_rides_in_the_csr_as_a_non_critical_extension():
    token = _token_key()
    facts = _request(token, CA.chain(token.public_key()))
    extension = facts.request.extensions.get_extension_for_oid(PROOF_OID)
    assert extension.critical is False
    assert facts.request.is_signature_valid
    assert facts.request.subject == x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "oncall")])
    assert len(extension.value.value) < 2048


def test_the_proof_oid_is_one_go_can_parse():
    # kube-apiserver parses CSRs with Go's encoding/asn1, which refuses arcs above 31 bits
    # (a 2.25.<128-bit UUID> OID made every CSR a 422): tests/realcluster checks the server.
    arcs = [int(a) for a in PROOF_OID.dotted_string.split(".")]
    assert all(a < 1 << 31 for a in arcs)
