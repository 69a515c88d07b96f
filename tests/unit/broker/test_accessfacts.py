"""An access request read by the broker: seeded malformed requests are refused (never a
crash, never signable); the attacker's proofs (somebody else's, another request's, a CSR's)
fail the attestation check over the request's key."""

from __future__ import annotations

import base64
import copy
import random
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from cred_helper import accessrequest as ar
from cred_helper.broker.accessfacts import (
    DENIED,
    PENDING,
    SIGNED,
    TO_SIGN,
    access_facts,
)
from cred_helper.broker.attestation import key_sha256, spki, verify
from cred_helper.broker.facts import FactsError
from cred_helper.broker.verdict import AttestationConfig, RegistryEntry
from cred_helper.issuers.csr import subject_name
from cred_helper.keys.attest import make_proof

from .accessbuild import access_object, compressed_p256_line, key, line

NOW = float(int(time.time()))
P256_IN_ED25519 = "ssh-ed25519 " + line("p256").split()[1]


@pytest.mark.parametrize("changes, why", [
    ({"public_key": "ssh-rsa " + line().split()[1]}, "spec.publicKey"),
    ({"public_key": "ecdsa-sha2-nistp384 " + line("p384").split()[1]}, "spec.publicKey"),
    ({"public_key": P256_IN_ED25519}, "not a readable OpenSSH public key"),
    ({"public_key": line()[:-8]}, "not a readable OpenSSH public key"),
    ({"public_key": compressed_p256_line()}, "not a readable OpenSSH public key"),
    ({"public_key": line() + " alice@laptop"}, "spec.publicKey"),
    ({"public_key": "ssh-ed25519 " + base64.b64encode(
        base64.b64decode(line().split()[1]) + b"\0\0\0\0").decode()}, "spec.publicKey"),
    ({"seconds": 599}, "spec.expirationSeconds"),
    ({"seconds": 86401}, "spec.expirationSeconds"),
    ({"seconds": 1800.0}, "spec.expirationSeconds"),
    ({"seconds": True}, "spec.expirationSeconds"),
    ({"reason": "x" * 1025}, "spec.reason"),
    ({"reason": "INC-42\x1b[2J"}, "control characters"),
    ({"username": ""}, "spec.username"),
    ({"groups": ("g",) * 65}, "spec.groups"),
    ({"namespace": "Payments"}, "spec.namespace"),
    ({"pods": ("api/../x",)}, "spec.pods[0]"),
    ({"shell": True}, "spec.shell: unknown field"),
    ({"attestation": "not base64!"}, "spec.attestation is not base64"),
])
def test_malformed_requests_are_facts_errors(changes, why):
    with pytest.raises(FactsError, match=why.replace("[", r"\[").replace("]", r"\]")):
        access_facts(access_object(**changes))


def test_a_key_whose_blob_has_trailing_bytes_is_not_the_key_it_names():
    blob = base64.b64decode(line().split()[1]) + b"\0\0\0\1x"
    obj = access_object()
    obj["spec"]["publicKey"] = "ssh-ed25519 " + base64.b64encode(blob).decode()
    with pytest.raises(FactsError):
        access_facts(obj)


def test_seeded_damage_is_a_facts_error_or_a_readable_request():
    rng = random.Random(26)
    base = access_object(pods=("api-1",), uid="u", extra={"k": ["v"]})
    values = [None, "", "x" * 5000, -1, 10**12, [], {}, ["x"] * 100, True, "\x00", 1.5,
              {"a": [1]}, "ssh-ed25519 AAAA"]
    read = refused = 0
    for _ in range(600):
        obj = copy.deepcopy(base)
        for _ in range(rng.randrange(1, 4)):
            where = rng.choice([d for d in (obj, obj.get("spec"), obj.get("metadata"))
                                if isinstance(d, dict)])
            field = rng.choice([*where, "extra-field"])
            where[field] = rng.choice(values)
        try:
            facts = access_facts(obj)
        except FactsError as error:
            assert "\n" not in str(error)
            refused += 1
        else:
            read += 1
            assert facts.key_type in ("ed25519", "p256")
    assert refused > 300 and read > 0


@pytest.mark.parametrize("status, state", [
    ({}, PENDING),
    ({"conditions": [{"type": "Approved", "status": "True", "decidedBy": "carol"}]}, TO_SIGN),
    ({"conditions": [{"type": "Approved", "status": "True"}], "certificate": "c"}, SIGNED),
    ({"conditions": [{"type": "Approved", "status": "True"},
                     {"type": "Denied", "status": "True"}], "certificate": "c"}, DENIED),
    ({"conditions": [{"type": "Approved", "status": "False"}]}, PENDING),
])
def test_where_a_request_stands(status, state):
    assert access_facts(access_object(status=status)).state == state


# ---- the attacker's proofs ---------------------------------------------------------------------

TOKEN = ec.generate_private_key(ec.SECP256R1())
CONFIG = AttestationConfig(registry=(RegistryEntry(
    "alice", key_sha256=key_sha256(spki(TOKEN.public_key()))),), max_age=300)


def proof_for(public_key, subject, token=TOKEN, when=NOW) -> bytes:
    return make_proof(token, (), public_key, subject, when)


def test_alices_own_proof_over_her_request_passes():
    obj = access_object("alice-1", created=NOW, public_key=line(),
                        proof=proof_for(key().public_key(), ar.proof_subject("alice-1")))
    found = verify(access_facts(obj), CONFIG, NOW)
    assert (found.mode, found.ok, found.user) == ("registry-key", True, "alice")


def test_a_proof_made_for_another_requests_name_fails():
    obj = access_object("alice-2", created=NOW, public_key=line(),
                        proof=proof_for(key().public_key(), ar.proof_subject("alice-1")))
    found = verify(access_facts(obj), CONFIG, NOW)
    assert not found.ok and "another subject" in found.reason


def test_a_proof_over_another_key_fails():
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    obj = access_object("alice-1", created=NOW, public_key=line(),
                        proof=proof_for(other, ar.proof_subject("alice-1")))
    found = verify(access_facts(obj), CONFIG, NOW)
    assert not found.ok and "another CSR key" in found.reason


def test_a_csr_proof_is_no_access_request_proof():
    """The same key and time, but the subject a CSR's proof names: refused."""
    obj = access_object("alice-1", created=NOW, public_key=line(),
                        proof=proof_for(key().public_key(), subject_name("alice", ["oncall"])))
    assert not verify(access_facts(obj), CONFIG, NOW).ok


def test_mallory_with_alices_registered_proof_is_still_mallory():
    """Mallory copies Alice's whole proof (and her public key) into a request of her own:
    the name differs; and were it the same, the registry owner is not the requester."""
    proof = proof_for(key().public_key(), ar.proof_subject("alice-1"))
    obj = access_object("mallory-1", created=NOW, username="mallory", public_key=line(),
                        proof=proof)
    assert not verify(access_facts(obj), CONFIG, NOW).ok
    same_name = access_object("alice-1", created=NOW, username="mallory", public_key=line(),
                              proof=proof)
    found = verify(access_facts(same_name), CONFIG, NOW)
    assert not found.ok and "not to the requester 'mallory'" in found.reason


def test_a_stale_proof_fails():
    obj = access_object("alice-1", created=NOW, public_key=line(),
                        proof=proof_for(key().public_key(), ar.proof_subject("alice-1"),
                                        when=NOW - 3600))
    found = verify(access_facts(obj), CONFIG, NOW)
    assert not found.ok and "a replayed or stale proof" in found.reason
