"""The broker signs only while the admission that binds a request to its creator is in force:
each way of weakening a shipped policy or binding is named."""

from __future__ import annotations

import copy

import pytest
import yaml

from cred_helper import rbac
from cred_helper.broker.accessguard import binding_problem, policy_problem, shipped

NAMES = ("cred-helper-access-identity", "cred-helper-access-immutable",
         "cred-helper-access-decisions")


def served(doc: dict) -> dict:
    """The object as kube-apiserver returns it: defaults filled in."""
    found = copy.deepcopy(doc)
    for rule in found["spec"]["matchConstraints"]["resourceRules"]:
        rule.setdefault("scope", "*")
    found["spec"]["matchConstraints"].update(matchPolicy="Equivalent", namespaceSelector={},
                                             objectSelector={})
    return found


def bindings() -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in yaml.safe_load_all(rbac.read(rbac.ADMISSION))
            if d and d["kind"] == "ValidatingAdmissionPolicyBinding"}


def test_the_shipped_policies_are_in_force_as_served():
    policies = shipped()
    assert sorted(policies) == sorted(NAMES)
    for name, policy in policies.items():
        assert policy_problem(name, policy, served(policy)) is None
        assert binding_problem(name, bindings()[name]) is None


def _weakened(change):
    policy = served(shipped()["cred-helper-access-identity"])
    change(policy["spec"])
    return policy_problem("cred-helper-access-identity",
                          shipped()["cred-helper-access-identity"], policy)


@pytest.mark.parametrize("change, problem", [
    (lambda s: s.update(failurePolicy="Ignore"), "does not fail closed"),
    (lambda s: s["validations"].pop(1), "checks other things"),
    (lambda s: s["validations"][0].update(expression="true"), "checks other things"),
    (lambda s: s["matchConstraints"]["resourceRules"][0].update(operations=["UPDATE"]),
     "matches other requests"),
    (lambda s: s.update(matchConditions=[{"name": "x", "expression": "false"}]),
     "has match conditions"),
    # The policy's own selectors skip requests as a binding's would: a requester sets her
    # request's labels herself.
    (lambda s: s["matchConstraints"].update(objectSelector={"matchLabels": {"checked": "yes"}}),
     "leaves some requests out"),
    (lambda s: s["matchConstraints"].update(
        excludeResourceRules=[{"apiGroups": ["*"], "apiVersions": ["*"],
                               "operations": ["*"], "resources": ["*"]}]),
     "leaves some requests out"),
    (lambda s: s["matchConstraints"].update(
        namespaceSelector={"matchLabels": {"a": "b"}}), "leaves some requests out"),
    # shapes no kube-apiserver sends (a hostile server or proxy): a difference, never a raise
    (lambda s: s["matchConstraints"]["resourceRules"][0].update(apiGroups=3),
     "matches other requests"),
    (lambda s: s["matchConstraints"]["resourceRules"][0].update(resources=[["x"], 1]),
     "matches other requests"),
    (lambda s: s["matchConstraints"]["resourceRules"][0].update(scope=["*"]),
     "matches other requests"),
    (lambda s: s["matchConstraints"]["resourceRules"].append("*"), "matches other requests"),
])
def test_a_weakened_policy_is_named(change, problem):
    assert problem in _weakened(change)


@pytest.mark.parametrize("change, problem", [
    (lambda s: s.update(validationActions=["Warn"]), "does not deny"),
    # a string is no list: "Deny" in "AuditNoDeny" held before
    (lambda s: s.update(validationActions="AuditNoDeny"), "does not deny"),
    (lambda s: s.update(validationActions=7), "does not deny"),
    (lambda s: s.update(policyName="other"), "does not bind"),
    (lambda s: s.update(paramRef={"name": "x"}), "takes parameters"),
    (lambda s: s.update(matchResources={"namespaceSelector": {"matchLabels": {"a": "b"}}}),
     "leaves some requests out"),
    (lambda s: s.update(matchResources={"excludeResourceRules": [{"resources": ["*"]}]}),
     "leaves some requests out"),
])
def test_a_weakened_binding_is_named(change, problem):
    binding = copy.deepcopy(bindings()["cred-helper-access-identity"])
    change(binding["spec"])
    assert problem in binding_problem("cred-helper-access-identity", binding)


def test_the_last_change_is_the_latest_write():
    from cred_helper.broker.accessguard import last_change

    obj = {"metadata": {"creationTimestamp": "2026-12-07T10:00:00Z", "managedFields": [
        {"time": "2026-12-07T10:05:00Z"}, {"time": "garbage"}, {}]}}
    assert last_change(obj) == 1796637900.0
    assert last_change({"metadata": {}}) == last_change("junk") == 0.0
