import base64
import datetime

import pytest
from cryptography import x509

from cred_helper.errors import BadCertificate
from cred_helper.issuers.csr import (
    build_request,
    check_certificate,
    csr_name,
    csr_object,
    csr_state,
    usages_for,
    visible_groups,
)
from cred_helper.keys import software
from tests.support.pki import CA, pem

NOW = datetime.datetime.now(datetime.timezone.utc)


def test_request_names_the_user_and_groups():
    key = software.generate("ed25519")
    csr = x509.load_pem_x509_csr(build_request(key, "alice", ["oncall", "sre"]).encode())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "O=sre,O=oncall,CN=alice"


def test_csr_object():
    obj = csr_object("n", "PEM", 1800, usages_for("p256"), "INC-1")
    assert obj["spec"]["expirationSeconds"] == 1800
    assert obj["spec"]["usages"] == ["digital signature", "client auth"]
    assert usages_for("ed25519") == ["client auth"]
    assert obj["metadata"]["annotations"] == {"cred-helper/reason": "INC-1"}
    assert "annotations" not in csr_object("n", "PEM", 1800, [], "")["metadata"]
    assert base64.b64decode(obj["spec"]["request"]) == b"PEM"


def test_name_is_a_dns_subdomain():
    name = csr_name("Alice O'Brien@Example.COM", 0, "abc123")
    assert name == "cred-helper-alice-o-brien-example.com-19700101-000000-abc123"
    assert csr_name("---", 0, "x").startswith("cred-helper-user-")


def test_states():
    assert csr_state({}) == ("pending", "")
    approved = {"status": {"conditions": [{"type": "Approved", "status": "True"}]}}
    assert csr_state(approved) == ("pending", "")
    denied = {"status": {"conditions": [{"type": "Denied", "reason": "R", "message": "m"}]}}
    assert csr_state(denied) == ("denied", "R: m")
    issued = {"status": {"certificate": base64.b64encode(b"PEM").decode()}}
    assert csr_state(issued) == ("issued", "PEM")


def test_system_groups_are_left_out():
    assert visible_groups(["system:authenticated", "oncall", "system:masters"]) == ["oncall"]


def _cert(ca, key, start, end, client=True):
    subject = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "alice")])
    return pem(ca.issue(subject, key.public_key(), start, end, client=client)).decode()


def test_certificate_checks():
    ca, key = CA(), software.generate("ed25519")
    good = _cert(ca, key, NOW - datetime.timedelta(minutes=5), NOW + datetime.timedelta(minutes=30))
    assert check_certificate(good, key, NOW.timestamp()).subject
    with pytest.raises(BadCertificate, match="another key"):
        check_certificate(good, software.generate("ed25519"), NOW.timestamp())
    server = _cert(ca, key, NOW, NOW + datetime.timedelta(minutes=30), client=False)
    with pytest.raises(BadCertificate, match="client authentication"):
        check_certificate(server, key, NOW.timestamp())
    expired = _cert(ca, key, NOW - datetime.timedelta(hours=2), NOW - datetime.timedelta(hours=1))
    with pytest.raises(BadCertificate, match="expired"):
        check_certificate(expired, key, NOW.timestamp())
    with pytest.raises(BadCertificate, match="not a PEM"):
        check_certificate("garbage", key, NOW.timestamp())
