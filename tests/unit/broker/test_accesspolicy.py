"""The policy's `access:` section: every outcome and deny reason as a table against real
requests; the grant and the lifetime an approval carries; sections refused with line and field;
seeded damage raises only PolicyError."""

from __future__ import annotations

import random
import textwrap

import pytest

from cred_helper import accessrequest as ar
from cred_helper.broker.accessfacts import access_facts
from cred_helper.broker.accesspolicy import pod_within
from cred_helper.broker.policy import PolicyError, load_policy
from cred_helper.broker.verdict import APPROVE, DENY, MANUAL, NO_PROOF, Attestation
from tests.unit.broker.test_policy import only_policy_errors

from .accessbuild import access_object, line

POLICY = textwrap.dedent("""\
    rules:
      - name: csr
        match: {groups: [oncall]}
        action: manual
    attestation:
      registry:
        - {user: alice, key-sha256: "%s"}
    access:
      rules:
        - name: no-bots
          match: {users: [ci-bot]}
          namespaces: ["*"]
          action: deny
        - name: payments
          match: {groups: [oncall]}
          namespaces: [payments, shop]
          pods: ["payment-api-*", "worker-0"]
          action: approve
          max-expiration: 30m
          require-reason: true
          attestation: none
          grant:
            commands: [pods, logs, exec]
            exec: [[ps, aux], [cat, "/var/log/*"], [ls, "**"]]
            ports: [8080]
        - name: kube-system
          match: {groups: [sre]}
          namespaces: [kube-system]
          action: manual
          max-expiration: 1h
          key-types: [p256]
          attestation: registry-key
          grant:
            commands: [pods, logs]
            shell: true
    """) % ("ab" * 32)

ALICE = {"username": "alice", "groups": ("oncall", "system:authenticated")}
ROOT = {"username": "root", "groups": ("sre", "system:authenticated"), "namespace": "kube-system",
        "public_key": line("p256")}
REGISTERED = Attestation("registry-key", True, "registered key", user="root")


@pytest.fixture(scope="module")
def policy():
    return load_policy(POLICY, "policy.yaml").access


def facts(**changes):
    return access_facts(access_object(**changes))


# (id, request, attestation, action, rule, a fragment of the reason)
TABLE = [
    ("approve", {**ALICE}, NO_PROOF, APPROVE, "payments", "every check passed"),
    ("approve-pod", {**ALICE, "pods": ("payment-api-7d4f",)}, NO_PROOF, APPROVE, "payments", ""),
    ("approve-same-glob", {**ALICE, "pods": ("payment-api-*",)}, NO_PROOF, APPROVE, "payments",
     ""),
    ("approve-other-namespace", {**ALICE, "namespace": "shop"}, NO_PROOF, APPROVE, "payments",
     ""),
    ("approve-at-max", {**ALICE, "seconds": 1800}, NO_PROOF, APPROVE, "payments", ""),
    ("manual", {**ROOT}, REGISTERED, MANUAL, "kube-system", "leaves the request for a person"),
    ("namespace-outside", {**ALICE, "namespace": "kube-system"}, NO_PROOF, DENY, "",
     "no access rule takes requester 'alice' (groups: oncall, system:authenticated) in "
     "namespace 'kube-system'"),
    ("nobody", {"username": "eve", "groups": ("system:authenticated",)}, NO_PROOF, DENY, "",
     "no access rule takes requester 'eve'"),
    ("rule-denies", {"username": "ci-bot", "groups": ("oncall",)}, NO_PROOF, DENY, "no-bots",
     "rule no-bots: denies every request it takes"),
    ("pod-outside", {**ALICE, "pods": ("db-0",)}, NO_PROOF, DENY, "payments",
     "rule payments: pod 'db-0' is not within the rule's pods"),
    ("wider-glob", {**ALICE, "pods": ("payment-*",)}, NO_PROOF, DENY, "payments",
     "pod 'payment-*' is not within"),
    ("glob-of-a-name", {**ALICE, "pods": ("worker-?",)}, NO_PROOF, DENY, "payments",
     "pod 'worker-?' is not within"),
    ("too-long", {**ALICE, "seconds": 3600}, NO_PROOF, DENY, "payments",
     "rule payments: expirationSeconds 3600 exceeds 30m"),
    ("no-reason", {**ALICE, "reason": ""}, NO_PROOF, DENY, "payments", "spec.reason is empty"),
    ("blank-reason", {**ALICE, "reason": "   "}, NO_PROOF, DENY, "payments",
     "spec.reason is empty"),
    # Shows nothing to a person, as a CSR's reason annotation is judged (policy.shows_something).
    ("invisible-reason", {**ALICE, "reason": "\u200b\u2800\u202e"}, NO_PROOF, DENY, "payments",
     "spec.reason is empty"),
    ("key-type", {**ROOT, "public_key": line("ed25519")}, REGISTERED, DENY, "kube-system",
     "key type ed25519 is not allowed (p256)"),
    ("no-attestation", {**ROOT}, NO_PROOF, DENY, "kube-system",
     "the rule wants a hardware attestation or a registered key; got none"),
    ("someone-elses-key", {**ROOT},
     Attestation("registry-key", True, "registered", user="alice"), DENY, "kube-system",
     "the key belongs to 'alice', not the requester 'root'"),
    ("failing-proof-anywhere", {**ALICE}, Attestation("registry-key", False, "forged"), DENY,
     "payments", "rule payments: the attestation proof fails: forged"),
]


@pytest.mark.parametrize("request_, attestation, action, rule, reason",
                         [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_decisions(policy, request_, attestation, action, rule, reason):
    verdict = policy.decide(facts(**request_), attestation)
    assert (verdict.decision.action, verdict.decision.rule) == (action, rule)
    assert reason in verdict.decision.reason
    if action == DENY:
        assert verdict.grant is None and verdict.decision.details["check"]


def test_an_approval_grants_the_rules_commands_for_the_requests_scope(policy):
    verdict = policy.decide(facts(**ALICE, pods=("payment-api-7d4f",)), NO_PROOF)
    assert verdict.grant == ar.Grant(namespace="payments", pods=("payment-api-7d4f",),
                                     commands=("pods", "logs", "exec"),
                                     exec=(("ps", "aux"), ("cat", "/var/log/*"), ("ls", "**")),
                                     shell=False, ports=(8080,))
    # naming no pods means what the rule allows, never more
    assert policy.decide(facts(**ALICE), NO_PROOF).grant.pods == ("payment-api-*", "worker-0")
    manual = policy.decide(facts(**ROOT), REGISTERED)
    assert manual.grant.shell and manual.grant.pods == () and manual.seconds == 1800


def test_the_lifetime_never_exceeds_the_rules_whatever_is_asked(policy):
    rng = random.Random(7)
    for _ in range(200):
        seconds = rng.randrange(ar.MIN_SECONDS, ar.MAX_SECONDS + 1)
        who = rng.choice([ALICE, ROOT])
        verdict = policy.decide(facts(**who, seconds=seconds), REGISTERED)
        if verdict.decision.action != DENY:
            limit = 1800 if who is ALICE else 3600
            assert verdict.seconds == seconds <= limit
        else:
            assert verdict.seconds == 0


def test_needs_attestation(policy):
    assert not policy.needs_attestation(facts(**ALICE))
    assert policy.needs_attestation(facts(**ROOT))
    assert not policy.needs_attestation(facts(username="ci-bot", groups=("oncall",),
                                              proof=b"{}"))
    assert policy.needs_attestation(facts(**ALICE, proof=b"{}"))


@pytest.mark.parametrize("asked, allowed, within", [
    ("api-1", (), True), ("api-*", (), True), ("api-1", ("api-*",), True),
    ("api-*", ("api-*",), True), ("api-1*", ("api-*",), False), ("api-?", ("api-1",), False),
    ("db-0", ("api-*", "worker-0"), False), ("[a]pi", ("api",), False)])
def test_pod_containment(asked, allowed, within):
    assert pod_within(asked, allowed) is within


RULE = """\
rules: [{name: c, match: {users: [a]}, action: manual}]
access:
  rules:
    - name: r
      match: {groups: [oncall]}
      namespaces: [payments]
      action: approve
      max-expiration: 30m
      attestation: none
      grant: {commands: [exec], exec: [[ps]]}
"""


def _changed(old: str, new: str) -> str:
    assert old in RULE
    return RULE.replace(old, new)


# (id, policy text, line, field, problem fragment)
REFUSED = [
    ("unknown-section-field", RULE.replace("access:\n", "access:\n  default: approve\n"), 3,
     "access", "unknown field 'default'"),
    ("unknown-rule-field", _changed("      action: approve", "      action: approve\n"
                                    "      subject-groups: [x]"), 8, "access.rules[0]",
     "unknown field 'subject-groups'"),
    ("no-namespaces", _changed("namespaces: [payments]", "namespaces: []"), 6,
     "access.rules[0].namespaces", "names no namespace"),
    ("bad-namespace", _changed("[payments]", "[Payments]"), 6,
     "access.rules[0].namespaces[0]", "not a namespace name"),
    ("bad-pod", _changed("      action: approve", "      pods: [Api]\n      action: approve"),
     7, "access.rules[0].pods[0]", "not a pod name"),
    ("lifetime-too-long", _changed("30m", "25h"), 8, "access.rules[0].max-expiration",
     "is not from 10m to 24h"),
    ("lifetime-too-short", _changed("30m", "5m"), 8, "access.rules[0].max-expiration",
     "is not from 10m to 24h"),
    ("no-lifetime", _changed("      max-expiration: 30m\n", ""), 4,
     "access.rules[0].max-expiration", "is required in a rule that approves"),
    ("no-grant", _changed("      grant: {commands: [exec], exec: [[ps]]}\n", ""), 4,
     "access.rules[0].grant", "is required"),
    ("no-attestation", _changed("      attestation: none\n", ""), 4,
     "access.rules[0].attestation", "is required"),
    ("unknown-command", _changed("[exec]", "[exec, rm]"), 10,
     "access.rules[0].grant.commands[1]", "'rm' is not one of pods, logs, exec"),
    ("exec-without-command", _changed("commands: [exec]", "commands: [pods]"), 10,
     "access.rules[0].grant.exec", "add exec to commands"),
    ("rest-first", _changed("[[ps]]", "[['**']]"), 10, "access.rules[0].grant.exec[0]",
     "the command itself must be named"),
    ("rest-in-middle", _changed("[[ps]]", "[[ls, '**', x]]"), 10,
     "access.rules[0].grant.exec[0]", "only as the last element"),
    ("bad-port", _changed("exec: [[ps]]}", "exec: [[ps]], ports: [70000]}"), 10,
     "access.rules[0].grant.ports[0]", "not a port number"),
    ("shell-not-bool", _changed("exec: [[ps]]}", "exec: [[ps]], shell: yes-please}"), 10,
     "access.rules[0].grant.shell", "is not true or false"),
    ("pins-without-attestation", _changed("attestation: none", "attestation: none\n"
                                          "      pin-policies: [once]"), 10,
     "access.rules[0].pin-policies", "set attestation: required"),
    ("key-type", _changed("      action: approve", "      key-types: [rsa]\n      action: approve"),
     7, "access.rules[0].key-types[0]", "'rsa' is not one of ed25519, p256"),
    ("repeated-name", RULE + RULE.split("  rules:\n", 1)[1], 11, "access.rules[1].name",
     "already the name"),
    # A manual rule needs them too, and the reason says what such a rule does (it said "a
    # rule that manuals").
    ("manual-no-grant", _changed("      action: approve\n", "      action: manual\n")
     .replace("      grant: {commands: [exec], exec: [[ps]]}\n", ""), 4, "access.rules[0].grant",
     "is required in a rule that leaves requests for a person (what the gateway may run)"),
    ("manual-no-attestation", _changed("      action: approve\n", "      action: manual\n")
     .replace("      attestation: none\n", ""), 4, "access.rules[0].attestation",
     "is required in a rule that leaves requests for a person (required, registry-key, none)"),
]


@pytest.mark.parametrize("text, line_, field, problem", [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_refused_sections(text, line_, field, problem):
    with pytest.raises(PolicyError) as caught:
        load_policy(text, "policy.yaml")
    error = caught.value
    assert (error.line, error.field) == (line_, field), error.message
    assert problem in error.problem
    assert error.message.startswith(f"policy policy.yaml:{line_}: {field}: ")


def test_a_policy_without_the_section_has_no_access_rules():
    assert load_policy("rules: [{name: c, match: {users: [a]}, action: manual}]\n",
                       "p").access is None
    assert load_policy(RULE, "p").access.rules[0].grant.exec == (("ps",),)


@pytest.mark.parametrize("seed", range(4))
def test_damaged_sections_raise_only_policy_error(seed):
    only_policy_errors(POLICY, seed, first_line=8)


def test_the_docs_example_is_a_valid_access_section():
    from tests.support.doccommands import block

    example = block("docs/access-requests.md", "For the admin", "yaml").text
    example = example.replace("3f9a...", "3f" * 32)
    policy = load_policy("rules: [{name: c, match: {users: [a]}, action: manual}]\n" + example,
                         "docs/access-requests.md")
    assert [(r.name, r.action) for r in policy.access.rules] == [
        ("payments", APPROVE), ("kube-system", MANUAL)]
    verdict = policy.access.decide(facts(**ALICE, pods=("worker-0",)), NO_PROOF)
    assert verdict.decision.action == APPROVE and verdict.grant.exec[1] == ("cat",
                                                                            "/var/log/*")
