import base64
import warnings

import pytest
from cryptography import x509

from cred_helper.issuers.csr import (
    build_request,
    csr_name,
    csr_object,
    csr_shape_problem,
    csr_state,
    usages_for,
    visible_groups,
)
from cred_helper.keys import software
from cred_helper.x509names import subject_of


def test_request_names_the_user_and_groups():
    key = software.generate("ed25519")
    csr = x509.load_pem_x509_csr(build_request(key, "alice", ["oncall", "sre"]).encode())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "O=sre,O=oncall,CN=alice"


def test_a_request_carries_a_name_longer_than_x509s_bound():
    name = "oidc:https://login.example.com/tenant#" + "f" * 62  # 100 characters
    key = software.generate("p256")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        csr = x509.load_pem_x509_csr(build_request(key, name, ["g" * 80]).encode())
        assert subject_of(csr).rfc4514_string() == f"O={'g' * 80},CN={name}"
    assert csr.is_signature_valid


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
    assert csr_state(approved) == ("approved", "")
    not_yet = {"status": {"conditions": [{"type": "Approved", "status": "False"}]}}
    assert csr_state(not_yet) == ("pending", "")
    denied = {"status": {"conditions": [{"type": "Denied", "reason": "R", "message": "m"}]}}
    assert csr_state(denied) == ("denied", "R: m")
    issued = {"status": {"certificate": base64.b64encode(b"PEM").decode()}}
    assert csr_state(issued) == ("issued", "PEM")


def test_system_groups_are_left_out():
    assert visible_groups(["system:authenticated", "oncall", "system:masters"]) == ["oncall"]


GOOD = {"metadata": {"name": "n", "resourceVersion": "3", "creationTimestamp":
                     "2026-01-01T00:00:00Z"},
        "status": {"conditions": [{"type": "Approved", "status": "True", "reason": "R"}],
                   "certificate": "UEVN"}}


@pytest.mark.parametrize("bad, problem", [
    ([], "a list instead of an object"),
    ({"metadata": []}, "metadata is not an object"),
    ({"metadata": {"name": 5}}, "metadata.name is not a string"),
    ({"metadata": {"name": "n", "resourceVersion": 7}}, "metadata.resourceVersion"),
    ({"metadata": {"name": "n"}, "status": "Approved"}, "status is not an object"),
    ({"metadata": {"name": "n"}, "status": {"conditions": {}}}, "conditions is not a list"),
    ({"metadata": {"name": "n"}, "status": {"conditions": ["Approved"]}}, "not an object"),
    ({"metadata": {"name": "n"}, "status": {"conditions": [{"type": 1}]}}, "type"),
    ({"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Approved",
                                                              "reason": []}]}}, "reason"),
    ({"metadata": {"name": "n"}, "status": {"certificate": 12}}, "certificate"),
])
def test_csr_shapes(bad, problem):
    assert csr_shape_problem(GOOD) is None
    assert csr_shape_problem({"metadata": {"name": "n"}, "status": None}) is None
    assert problem in csr_shape_problem(bad)
