"""access.py: which request lets a connection in, and when an open one must end. The
certificates are whole ones an attacker could hold or a careless signer could make, each
signed for real."""

from __future__ import annotations

import base64
import copy

import pytest

from cred_helper import accessrequest as ar
from cred_helper.gateway.access import Refused, admit, ca_keys, certificate_blob, ended
from tests.support.gateway import UserCA

NOW = 1_800_000_000.0
NAME = "ar-7k2xq"
CA = UserCA()
OTHER_CA = UserCA()
CAS = ca_keys(CA.public_line + "\n")
ALICE_KEY = UserCA().public_line  # any Ed25519 public key line
MALLORY_KEY = UserCA().public_line
GRANT = {"namespace": "payments", "pods": [], "commands": ["exec"], "exec": [["ps"]],
         "shell": False, "ports": []}


def signed(key: str = ALICE_KEY, principals: tuple[str, ...] = (NAME,), ca: UserCA = CA,
           after: float = NOW - 60, before: float = NOW + 1800,
           key_id: str = f"{NAME}:alice@example.com", **kw) -> str:
    return ca.sign(key, list(principals), key_id=key_id, valid_after=after,
                   valid_before=before, **kw)


CERT = signed()


def request(certificate: str | None = None, conditions=None, grant=GRANT, expires=NOW + 1800,
            deleting: bool = False, uid: str = "u-1", namespace: str = "payments") -> dict:
    status = {"conditions": conditions if conditions is not None else [
        {"type": "Approved", "status": "True", "decidedBy": "broker"}]}
    if grant is not None:
        status["grant"] = grant
    status["certificate"] = CERT if certificate is None else certificate
    if expires is not None:
        status["expiresAt"] = ar.format_time(expires)
    meta = {"name": NAME, "uid": uid, "resourceVersion": "7"}
    if deleting:
        meta["deletionTimestamp"] = "2027-01-15T08:00:00Z"
    return {"apiVersion": ar.API_VERSION, "kind": ar.KIND, "metadata": meta,
            "spec": {"username": "alice@example.com", "groups": ["oncall"],
                     "publicKey": ALICE_KEY, "namespace": namespace,
                     "expirationSeconds": 1800},
            "status": status}


def parsed(**kw) -> ar.AccessRequest:
    return ar.parse(request(**kw))


def test_an_approved_request_lets_in_until_the_earlier_end():
    access = admit(parsed(expires=NOW + 600), CAS, NOW)
    assert access.request == NAME and access.grant.namespace == "payments"
    assert access.ends_at == ar.parse_time(ar.format_time(NOW + 600), "t")
    assert access.certificate == certificate_blob(parsed().certificate) != b""
    assert admit(parsed(expires=NOW + 7200), CAS, NOW).ends_at == NOW + 1800  # the cert's end


@pytest.mark.parametrize(("kw", "why"), [
    ({"conditions": []}, "is not approved yet"),
    ({"conditions": [{"type": "Approved", "status": "False"}]}, "is not approved yet"),
    ({"conditions": [{"type": "Approved", "status": "True"},
                     {"type": "Denied", "status": "True", "decidedBy": "carol",
                      "reason": "not now"}]}, "was denied by carol: not now"),
    # What `cred-helper deny --reason` writes: the person's words are the message.
    ({"conditions": [{"type": "Approved", "status": "True"},
                     {"type": "Denied", "status": "True", "decidedBy": "carol",
                      "reason": "DeniedByPerson", "message": "incident over"}]},
     "was denied by carol: incident over"),
    ({"deleting": True}, "is being deleted"),
    ({"grant": None}, "has no grant"),
    ({"grant": {**GRANT, "namespace": "kube-system"}}, "grant is for namespace kube-system"),
    ({"certificate": ""}, "carries no certificate"),
    ({"certificate": ALICE_KEY}, "carries no certificate"),
    ({"certificate": "ssh-ed25519-cert-v01@openssh.com !!!"}, "carries no certificate"),
    ({"certificate": "ssh-ed25519-cert-v01@openssh.com AAAA"}, "cannot be read"),
    ({"certificate": signed(ca=OTHER_CA)}, "is not signed by the gateway's SSH user CA"),
    ({"certificate": signed(host=True)}, "is not a user certificate"),
    # A certificate of the right CA for another person's key, naming this request: a signer
    # that made it (a bug, or a CA shared with something else) does not get it in.
    ({"certificate": signed(key=MALLORY_KEY)}, "is not for the request's key"),
    ({"certificate": signed(principals=("ar-other",))}, "one principal"),
    ({"certificate": signed(principals=(NAME, "root"))}, "one principal"),
    ({"certificate": signed(principals=())}, "one principal"),
    ({"certificate": signed(key_id=f"{NAME}:mallory@example.com")}, "has another key id"),
    ({"certificate": signed(critical={"force-command": "id"})}, "carries critical options"),
    ({"certificate": signed(before=NOW - 1)}, "is not valid now"),
    ({"certificate": signed(after=NOW + 60)}, "is not valid now"),
    ({"expires": NOW - 1}, "ended at"),
])
def test_refusals_name_the_reason(kw, why):
    with pytest.raises(Refused) as caught:
        admit(parsed(**kw), CAS, NOW)
    assert why in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("spec", "field"), [
    ({"username": " bob@example.com"}, "spec.username"),
    ({"username": "bob@example.com "}, "spec.username"),
    ({"groups": ["oncall", " system:masters"]}, "spec.groups[1]"),
    ({"groups": ["oncall "]}, "spec.groups[0]"),
    ({"uid": " 1234"}, "spec.uid"),
    ({"extra": {"acme.com/team": ["a", "b "]}}, "spec.extra['acme.com/team']"),
])
def test_an_identity_that_http_would_change_is_refused(spec, field):
    """A header value loses the spaces at its edges: the API server would read ' bob' as
    bob, ' system:masters' as a group."""
    doc = request()
    doc["spec"].update(spec)
    with pytest.raises(Refused) as caught:
        admit(ar.parse(doc), CAS, NOW)
    assert f"{field} starts or ends with a space" in str(caught.value)


def test_spaces_inside_an_identity_are_its_own():
    doc = request(certificate=signed(key_id=f"{NAME}:Alice Example"))
    doc["spec"].update(username="Alice Example", groups=["on call"])
    assert admit(ar.parse(doc), CAS, NOW).spec.username == "Alice Example"


def test_a_tampered_certificate_is_refused():
    kind, blob = signed().split()[:2]
    raw = bytearray(base64.b64decode(blob))
    raw[-10] ^= 0x01  # a bit of the signature
    with pytest.raises(Refused, match="has a bad signature"):
        admit(parsed(certificate=f"{kind} {base64.b64encode(bytes(raw)).decode()}"), CAS, NOW)


def test_a_ca_rotation_trusts_each_listed_key():
    both = ca_keys(f"# old and new\n{OTHER_CA.public_line}\n\n{CA.public_line}\n")
    assert admit(parsed(), both, NOW).request == NAME


@pytest.mark.parametrize("text", ["", "# only a comment\n", "not a key\n",
                                  "ssh-ed25519 AAAA\n"])
def test_a_ca_file_without_a_key_is_refused(text):
    with pytest.raises(ValueError):
        ca_keys(text)


def test_an_open_connection_ends_on_each_change():
    access = admit(parsed(), CAS, NOW)
    assert ended(access, parsed(), NOW + 10) == ""
    assert "was deleted" in ended(access, None, NOW)
    assert "was deleted" in ended(access, parsed(uid="u-2"), NOW)  # made again: another one
    assert "is being deleted" in ended(access, parsed(deleting=True), NOW)
    denied = parsed(conditions=[{"type": "Approved", "status": "True"},
                                {"type": "Denied", "status": "True", "decidedBy": "carol"}])
    assert "was denied by carol" in ended(access, denied, NOW)
    assert "certificate was replaced" in ended(access, parsed(certificate=signed(
        after=NOW - 30)), NOW)
    wider = copy.deepcopy(GRANT)
    wider["exec"].append(["sh"])
    assert "grant changed" in ended(access, parsed(grant=wider), NOW)
    assert "ended at" in ended(access, parsed(), NOW + 1800)
