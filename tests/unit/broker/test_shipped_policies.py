"""What the policies the project ships and documents decide: the starter ConfigMap leaves every
request for a person (installing a broker turns nothing away), its step 2 approves attested
on-call requests, and break-glass (asking for a group not held) reaches a person in both the
step-2 policy and the README's annotated one, whichever other rules the requester matches."""

from __future__ import annotations

import pytest

from cred_helper.broker.policy import load_policy
from cred_helper.broker.verdict import APPROVE, DENY, MANUAL, NO_PROOF, Attestation
from tests.support import policies

from .build import csr_object, request_pem

ALICE = "alice@example.com"
# The real control plane's bootstrap identity: on call and in sre (tests/support/controlplane).
GROUPS = ("oncall", "sre", "oncall-bootstrap", "system:authenticated")
ATTESTED = Attestation("attested", True, "attested by the test root", user=ALICE,
                       serial=12345678, pin_policy="once", touch_policy="always")
FAILING = Attestation("registry-key", False, "the proof is signed by a key the registry "
                                             "does not name: key 0123456789abcdef")


def facts(orgs=("oncall",), groups=GROUPS, user=ALICE, kind="p256", **obj):
    from cred_helper.broker.facts import csr_facts

    pem = request_pem(kind, cn=user, orgs=orgs)
    return csr_facts(csr_object(pem, username=user, groups=groups, **obj))


def test_the_starter_policy_leaves_everything_for_a_person():
    """Whatever is asked, by whomever, with or without a proof that passes: pending, with a
    reason a person can read; never denied."""
    policy = load_policy(policies.starter(), "policy-configmap.yaml")
    assert policy.rules == () and policy.default == MANUAL
    cases = [
        (facts(), NO_PROOF),
        (facts(orgs=("break-glass",)), NO_PROOF),
        (facts(orgs=("oncall",), reason=None, expiration=None, kind="p384"), NO_PROOF),
        (facts(user="system:serviceaccount:cred-helper:alice", orgs=("oncall",),
               groups=("system:serviceaccounts",)), NO_PROOF),  # the docs' ServiceAccount path
        (facts(), ATTESTED),
        (facts(), FAILING),  # --attest-with with a key nobody registered yet
    ]
    for case, attestation in cases:
        decision = policy.decide(case, attestation)
        assert decision.action == MANUAL, decision.reason
        assert "the policy's default is manual" in decision.reason
    assert "note: its attestation proof fails: the proof is signed by a key the registry " \
        "does not name" in policy.decide(facts(), FAILING).reason


@pytest.fixture(scope="module", params=["step-2", "readme"])
def full(request):
    if request.param == "step-2":
        return load_policy(policies.step_two(), "policy-configmap.yaml (step 2)")
    return load_policy(policies.documented(), "docs/admin/policy.md")


def test_step_two_is_the_documented_order():
    policy = load_policy(policies.step_two(), "step 2")
    assert [(r.name, r.action) for r in policy.rules] == [("break-glass", MANUAL),
                                                          ("oncall", APPROVE)]
    assert [(e.user, e.serial) for e in policy.attestation.registry] == [(ALICE, 12345678)]


def test_the_readme_example_is_a_valid_policy():
    policy = load_policy(policies.documented(), "docs/admin/policy.md")
    assert [(r.name, r.action) for r in policy.rules] == [
        ("no-bots", DENY), ("break-glass", MANUAL), ("oncall", APPROVE)]


def test_an_attested_everyday_request_is_approved(full):
    decision = full.decide(facts(), ATTESTED)
    assert (decision.action, decision.rule) == (APPROVE, "oncall"), decision.reason


def test_an_on_call_request_without_attestation_is_denied(full):
    decision = full.decide(facts(), NO_PROOF)
    assert (decision.action, decision.rule) == (DENY, "oncall")
    assert decision.details["check"] == "attestation"


def test_break_glass_reaches_a_person_for_an_on_call_engineer(full):
    """alice is on call and in sre; she asks for break-glass, which she does not hold."""
    decision = full.decide(facts(orgs=("break-glass",), reason="INC-42: etcd is down"),
                           NO_PROOF)
    assert (decision.action, decision.rule) == (MANUAL, "break-glass"), decision.reason
    assert decision.reason == (
        "rule break-glass: every check passed; this rule leaves the request for a person "
        "(requester 'alice@example.com' asks for break-glass, which they do not hold)")


@pytest.mark.parametrize(("change", "check"), [
    ({"reason": None}, "reason"),
    ({"reason": "\u200b \u2060"}, "reason"),
    ({"expiration": 7200}, "expiration"),
    ({"orgs": ("break-glass", "system:nodes")}, "subject"),  # only the group named
    ({"orgs": ("break-glass", "payments")}, "subject"),  # a group not held, not named
    ({"orgs": ("break-glass", "sre")}, "subject"),  # held, but the rule names no others
])
def test_break_glass_still_checks(full, change, check):
    args = {"orgs": ("break-glass",), "reason": "INC-42", **change}
    decision = full.decide(facts(**args), NO_PROOF)
    assert (decision.action, decision.rule, decision.details["check"]) == (
        DENY, "break-glass", check), decision.reason


def test_break_glass_is_only_for_its_groups(full):
    """Someone on call but not in sre who asks for break-glass is not a break-glass
    requester: the oncall rule decides, and a system: group it does not name is denied."""
    decision = full.decide(facts(orgs=("break-glass",), reason="INC-42",
                                 groups=("oncall", "system:authenticated")), ATTESTED)
    assert (decision.action, decision.rule) == (DENY, "oncall")
    assert "O 'break-glass' is a group the requester 'alice@example.com' does not hold" \
        in decision.reason

