"""The AccessRequest model: what the broker, the gateway and `cred-helper ssh` all read."""

from __future__ import annotations

import copy
import random

import pytest

from cred_helper import accessrequest as ar

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc4Rbq0dz5cZ0Zb2n8kFJ3vXkV0r2w0m1m0d5x1y2z3"


def request(**status) -> dict:
    return {
        "apiVersion": "access.cred-helper.dev/v1alpha1", "kind": "AccessRequest",
        "metadata": {"name": "ar-7k2xq", "uid": "u-1", "resourceVersion": "41"},
        "spec": {"username": "alice@example.com", "groups": ["oncall", "system:authenticated"],
                 "publicKey": KEY, "namespace": "payments", "pods": ["payment-api-*"],
                 "reason": "INC-42", "expirationSeconds": 1800},
        "status": status,
    }


GRANT = {"namespace": "payments", "pods": ["payment-api-*"], "commands": ["pods", "exec"],
         "exec": [["ps", "aux"], ["cat", "/var/log/*"], ["ls", "**"]], "shell": False,
         "ports": [8080]}


def test_a_pending_request_reads_back():
    got = ar.parse(request())
    assert got.name == ar.principal(got.name) == "ar-7k2xq"
    assert got.spec.groups == ("oncall", "system:authenticated")  # in order, as admitted
    assert got.spec.pods == ("payment-api-*",)
    assert got.decision.state == ar.PENDING and got.grant is None and not got.certificate
    assert ar.key_id(got.name, got.spec.username) == "ar-7k2xq:alice@example.com"


def test_an_approved_request_carries_its_grant_and_end():
    got = ar.parse(request(
        conditions=[{"type": "Approved", "status": "True", "reason": "rule oncall",
                     "decidedBy": "system:serviceaccount:cred-helper:approver",
                     "lastTransitionTime": "2026-12-07T10:00:00Z"}],
        certificate="ssh-ed25519-cert-v01@openssh.com AAAA", grant=GRANT,
        expiresAt="2026-12-07T10:30:00Z"))
    assert got.decision.state == ar.APPROVED
    assert got.decision.by == "system:serviceaccount:cred-helper:approver"
    assert got.grant == ar.parse_grant(got.grant.to_json())
    assert got.grant.exec[2] == ("ls", ar.REST) and got.grant.ports == (8080,)
    assert got.expires_at == ar.parse_time(ar.format_time(got.expires_at), "t")


def test_denied_wins_over_approved():
    got = ar.parse(request(conditions=[
        {"type": "Approved", "status": "True"},
        {"type": "Denied", "status": "True", "reason": "revoked", "decidedBy": "carol"}]))
    assert (got.decision.state, got.decision.by) == (ar.DENIED, "carol")


def test_a_condition_not_true_decides_nothing():
    got = ar.parse(request(conditions=[{"type": "Approved", "status": "False"}]))
    assert got.decision.state == ar.PENDING


@pytest.mark.parametrize(("path", "value", "field"), [
    (("spec", "publicKey"), "ssh-rsa AAAAB3NzaC1yc2E=", "spec.publicKey"),
    (("spec", "publicKey"), KEY + " alice@laptop", "spec.publicKey"),
    (("spec", "publicKey"), KEY + "\nssh-ed25519 AAAA", "spec.publicKey"),
    (("spec", "expirationSeconds"), 599, "spec.expirationSeconds"),
    (("spec", "expirationSeconds"), 86401, "spec.expirationSeconds"),
    (("spec", "expirationSeconds"), True, "spec.expirationSeconds"),
    (("spec", "expirationSeconds"), 1800.0, "spec.expirationSeconds"),
    (("spec", "namespace"), "Payments", "spec.namespace"),
    (("spec", "namespace"), "a" * 64, "spec.namespace"),
    (("spec", "username"), "alice\n", "spec.username"),
    (("spec", "username"), "", "spec.username"),
    (("spec", "groups"), "oncall", "spec.groups"),
    (("spec", "groups"), ["ok"] * 65, "spec.groups"),
    (("spec", "pods"), ["../etc"], "spec.pods[0]"),
    (("spec", "admin"), True, "spec.admin"),
    (("metadata", "name"), "AR_1", "metadata.name"),
    (("status", "grant"), {**GRANT, "commands": ["shell"]}, "status.grant.commands"),
    (("status", "grant"), {**GRANT, "exec": [["**"]]}, "status.grant.exec[0]"),
    (("status", "grant"), {**GRANT, "exec": [["ls", "**", "x"]]}, "status.grant.exec[0]"),
    (("status", "grant"), {**GRANT, "exec": [[]]}, "status.grant.exec[0]"),
    (("status", "grant"), {**GRANT, "ports": [0]}, "status.grant.ports"),
    (("status", "grant"), {**GRANT, "ports": [True]}, "status.grant.ports"),
    (("status", "grant"), {**GRANT, "shell": "yes"}, "status.grant.shell"),
    (("status", "grant"), {**GRANT, "root": True}, "status.grant.root"),
    (("status", "expiresAt"), "tomorrow", "status.expiresAt"),
    (("status", "conditions"), {"type": "Approved"}, "status.conditions"),
])
def test_each_bad_field_is_named(path, value, field):
    doc = request()
    doc[path[0]][path[1]] = value
    with pytest.raises(ar.AccessRequestError) as caught:
        ar.parse(doc)
    assert caught.value.field == field


def test_another_kind_is_refused():
    doc = request()
    doc["kind"] = "CertificateSigningRequest"
    with pytest.raises(ar.AccessRequestError, match="not an AccessRequest"):
        ar.parse(doc)


def test_hostile_objects_raise_only_the_model_error():
    """Seeded: every field replaced by values of other types, nested or dropped."""
    rng = random.Random(2026)
    junk = [None, 0, -1, 2**70, 1.5, True, "", "x" * 5000, "\x00", [], [None], {}, {"a": []},
            ["ok", 3], [["ls"]], "ssh-ed25519 AAAA", "2026-12-07T10:00:00Z"]
    base = request(conditions=[{"type": "Approved", "status": "True"}], grant=GRANT,
                   certificate="c", expiresAt="2026-12-07T10:30:00Z")
    parsed = 0
    for _ in range(3000):
        doc = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            section = rng.choice(["spec", "status", "metadata"])
            target = doc[section]
            if section == "status" and isinstance(target.get("grant"), dict) \
                    and rng.random() < 0.5:
                target = target["grant"]
            key = rng.choice([*target.keys(), "extra", "new"])
            if rng.random() < 0.2:
                target.pop(key, None)
            else:
                target[key] = copy.deepcopy(rng.choice(junk))
        try:
            ar.parse(doc)
            parsed += 1
        except ar.AccessRequestError:
            pass
    assert 0 < parsed < 3000  # some mutations are harmless (an optional field dropped)


def test_a_text_every_reader_takes():
    """What approve/deny --reason may write into a condition's message: exactly what the
    parse of a condition takes."""
    def read(text: str) -> bool:
        try:
            ar.decision_of({"conditions": [{"type": "Approved", "status": "True",
                                            "message": text}]})
        except ar.AccessRequestError:
            return False
        return True

    for text in ("x" * ar.MAX_TEXT, "ok, é ✓", ""):
        assert ar.is_text(text) and read(text)
    for text in ("x" * (ar.MAX_TEXT + 1), "two\nlines", "a\ttab", "\x1b[2J", "del\x7f"):
        assert not ar.is_text(text) and not read(text)
