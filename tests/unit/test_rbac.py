"""The manifests' one copy: packaging's generated copy matches, names cannot inject YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cred_helper import rbac
from cred_helper.errors import UsageError
from tests.support import doccommands

ROOT = Path(__file__).resolve().parents[2]


def test_packaging_rbac_is_the_generated_copy():
    assert (ROOT / "packaging" / "kubernetes" / "rbac.yaml").read_text() == \
        rbac.packaging_copy(), "run: python -m cred_helper.rbac"
    assert (ROOT / "packaging" / "kubernetes" / "requester-rbac.yaml").read_text() == \
        rbac.packaging_requester_copy(), "run: python -m cred_helper.rbac"


def test_api_objects_carry_the_names_given():
    docs = list(yaml.safe_load_all(rbac.api_objects(rbac.Team("sre: x", ("a", "b"), "boot"))))
    kinds = [(d["kind"], d["metadata"].get("namespace", "")) for d in docs]
    assert ("Role", "a") in kinds and ("RoleBinding", "b") in kinds
    bindings = {d["metadata"]["name"] + d["metadata"].get("namespace", ""): d["subjects"]
                for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")}
    assert bindings["cred-helper-requester"][0]["name"] == "boot"
    assert bindings["cred-helper-oncall-debuga"][0]["name"] == "sre: x"
    assert all(d["kind"] != "Policy" for d in docs)  # the audit policy is not applied


@pytest.mark.parametrize("group", ["", "a\nkind: ClusterRole", " x"])
def test_bad_group_names_are_refused(group):
    with pytest.raises(UsageError):
        rbac.api_objects(rbac.Team(group))


@pytest.mark.parametrize("ns", ["", "Debug", "a_b", 'x"\ny', "a" * 64])
def test_bad_namespaces_are_refused(ns):
    with pytest.raises(UsageError):
        rbac.api_objects(rbac.Team("oncall", (ns,)))


def test_audit_policy_levels():
    policy = yaml.safe_load(rbac.audit_policy())
    assert policy["kind"] == "Policy"
    full = policy["rules"][0]
    assert full["level"] == "RequestResponse"
    assert set(full["resources"][0]["resources"]) == {"pods/exec", "pods/attach",
                                                      "pods/portforward"}
    meta = {r["resources"][0]["resources"][0]: r["level"] for r in policy["rules"][1:]}
    assert meta == {"pods/ephemeralcontainers": "Request",
                    "certificatesigningrequests/approval": "Metadata"}


def _identities(text: str) -> set[tuple[str, str, str]]:
    return {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"].get("name", ""))
            for d in yaml.safe_load_all(text) if isinstance(d, dict) and "metadata" in d}


def _readme_objects() -> list[str]:
    """Every YAML block of the documentation that holds API objects."""
    blocks = [b.text for page in doccommands.pages() for b in doccommands.blocks(page)
              if b.lang == "yaml"]
    return [b for b in blocks if "apiVersion:" in b and "\nkind:" in "\n" + b]


def test_the_readme_shows_the_human_approvers_manifest():
    shown = [b for b in _readme_objects() if "cred-helper-human-approvers" in b]
    assert len(shown) == 1
    manifest = rbac.human_approvers("oncall-leads")
    assert shown[0] == manifest[manifest.index("apiVersion"):]


def test_no_other_object_takes_the_brokers_names():
    """Applying the README's objects (or any other manifest) never replaces one of the broker's
    (packaging/kubernetes/rbac.yaml): issue 25 found the people's ClusterRoleBinding and the
    ServiceAccount's both named cred-helper-approver."""
    brokers = _identities(rbac.read(rbac.APPROVER))
    others = [rbac.human_approvers("oncall-leads"), *_readme_objects(),
              *(p.read_text() for p in (ROOT / "packaging" / "kubernetes").glob("*.yaml")
                if p.name != "rbac.yaml")]
    for text in others:
        taken = brokers & _identities(text.replace("${", "x{"))
        assert not taken, taken


def test_human_approvers_group_cannot_inject_yaml():
    with pytest.raises(UsageError):
        rbac.human_approvers("a\nkind: ClusterRole")
    doc = list(yaml.safe_load_all(rbac.human_approvers("sre: leads")))[1]
    assert doc["subjects"][0]["name"] == "sre: leads"


def test_the_oncall_role_lets_websocket_clients_exec_attach_and_forward():
    """A WebSocket upgrade is a GET, checked as get and (1.35+) create: both verbs, on each
    streaming subresource (the SSH gateway speaks only WebSocket)."""
    docs = yaml.safe_load_all(rbac.api_objects(rbac.Team("oncall", ("shop",))))
    (role,) = [d for d in docs if d["kind"] == "Role"
               and d["metadata"]["name"] == "cred-helper-oncall-debug"]
    verbs: dict[str, set[str]] = {}
    for rule in role["rules"]:
        for resource in rule["resources"]:
            verbs.setdefault(resource, set()).update(rule["verbs"])
    for resource in ("pods/exec", "pods/attach", "pods/portforward"):
        assert verbs[resource] == {"get", "create"}, resource
    assert "secrets" not in verbs and verbs["pods"] == {"get", "list", "watch"}
