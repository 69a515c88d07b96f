"""The manifests an on-call team needs (`setup --print-rbac`), from the one copy in package data
(cred_helper/manifests/). packaging/kubernetes/rbac.yaml is generated from approver-rbac.yaml,
requester-rbac.yaml from requester-rbac.yaml (for the default group), and the access requests'
CRD, admission and broker RBAC likewise (`python -m cred_helper.rbac`); tests check that they
match.

Pure apart from reading package data: names are checked, then put into the templates as JSON
strings (valid YAML double-quoted scalars), so a hostile group name cannot add YAML.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

MANIFESTS = Path(__file__).resolve().parent / "manifests"
APPROVER, REQUESTER, DEBUG, AUDIT = ("approver-rbac.yaml", "requester-rbac.yaml",
                                     "oncall-debug.yaml", "audit-policy.yaml")
HUMAN_APPROVERS = "human-approvers.yaml"  # docs/admin/rbac.md's, for people who approve by hand
# Access requests: the CRD, the admission that binds a request to its creator, the broker's
# rights, and people's (requesters, deciders: bound to groups by --print-rbac).
CRD, ADMISSION, ACCESS_BROKER, ACCESS_PEOPLE = (
    "accessrequest-crd.yaml", "access-admission.yaml", "access-broker-rbac.yaml",
    "access-people-rbac.yaml")
# packaging/kubernetes/<name> -> the manifest it is a generated copy of.
PACKAGED = {"rbac.yaml": APPROVER, CRD: CRD, ADMISSION: ADMISSION,
            ACCESS_BROKER: ACCESS_BROKER}
PACKAGING_HEADER = ("# Generated: a copy of cred_helper/manifests/{name} "
                    "(tests check that they match).\n")
APPROVER_NAMESPACE = "cred-helper"
# RFC 1123 label, as Kubernetes checks namespace names.
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class Team:
    group: str = "oncall"  # who may debug in the namespaces
    namespaces: tuple[str, ...] = ("debug",)
    bootstrap_group: str = ""  # who may ask for certificates; empty: the group itself
    approver_group: str = ""  # who may decide access requests; empty: the group itself


def read(name: str) -> str:
    return (MANIFESTS / name).read_text(encoding="utf-8")


def packaging_copy(name: str = "rbac.yaml") -> str:
    """packaging/kubernetes/<name>, exactly."""
    return PACKAGING_HEADER.format(name=PACKAGED[name]) + read(PACKAGED[name])


def packaging_requester_copy() -> str:
    """packaging/kubernetes/requester-rbac.yaml, exactly: the requester role bound to
    `setup --print-rbac`'s default group, so that applying both writes the same object."""
    header = ("# Generated: cred_helper/manifests/requester-rbac.yaml for the group "
              f"{Team().group} (tests check that\n# they match). Bind another group with a "
              "patch in your overlay (docs/admin/broker.md: Rolling it out),\n# and give "
              "`setup --print-rbac` the same --bootstrap-group.\n")
    return header + _fill(read(REQUESTER), {"BOOTSTRAP_GROUP": check_group(Team().group,
                                                                           "--group")})


def check_group(value: str, flag: str) -> str:
    if not value or len(value) > 253 or not value.isprintable() or value != value.strip():
        raise UsageError(f"{flag}: {value!r} is not a group name",
                         "name the group as the API server reports it (e.g. oncall)")
    return value


def check_namespace(value: str) -> str:
    if not _NAMESPACE.fullmatch(value):
        raise UsageError(f"--namespace: {value!r} is not a namespace name",
                         "lower-case letters, digits and '-', at most 63")
    return value


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(f'"${{{key}}}"', json.dumps(value))
    return template


def api_objects(team: Team) -> str:
    """Every API object, as one multi-document YAML stream for `kubectl apply -f -`."""
    namespaces, rest = api_parts(team)
    return namespaces + "---\n" + rest


def api_parts(team: Team) -> tuple[str, str]:
    """(the Namespace, everything else): a server-side dry run of a Role fails while its
    namespace does not exist, so `--apply` makes the namespace first."""
    group = check_group(team.group, "--group")
    bootstrap = check_group(team.bootstrap_group or group, "--bootstrap-group")
    deciders = check_group(team.approver_group or group, "--approver-group")
    if not team.namespaces:
        raise UsageError("--print-rbac needs at least one --namespace")
    approver_ns = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {APPROVER_NAMESPACE}\n"
    parts = [_fill(read(REQUESTER), {"BOOTSTRAP_GROUP": bootstrap}),
             read(APPROVER), read(CRD), read(ADMISSION), read(ACCESS_BROKER),
             _fill(read(ACCESS_PEOPLE), {"GROUP": group, "APPROVER_GROUP": deciders})]
    for namespace in dict.fromkeys(team.namespaces):  # in order, once each
        parts.append(_fill(read(DEBUG), {"NAMESPACE": check_namespace(namespace),
                                         "GROUP": group}))
    return approver_ns, "---\n".join(part if part.endswith("\n") else part + "\n"
                                    for part in parts)


def human_approvers(group: str) -> str:
    """The ClusterRole and binding for people in `group` who approve CSRs by hand."""
    return _fill(read(HUMAN_APPROVERS), {"APPROVER_GROUP": check_group(group, "group")})


def audit_policy() -> str:
    return read(AUDIT)


def audit_howto(path: str) -> str:
    """How to use the audit policy: it is a kube-apiserver file, never applied."""
    return (f"wrote the audit policy to {path}: it is a kube-apiserver file, not an API "
            "object. Merge its rules ahead of your policy's catch-all and start kube-apiserver "
            f"with --audit-policy-file={path} --audit-log-path=/var/log/kubernetes/audit.log "
            "(on kubeadm: mount it in the static pod manifest)")


def main() -> None:
    """Regenerate packaging/kubernetes's copies from the package data."""
    target = Path(__file__).resolve().parents[1] / "packaging" / "kubernetes"
    for name in PACKAGED:
        (target / name).write_text(packaging_copy(name), encoding="utf-8")
    (target / "requester-rbac.yaml").write_text(packaging_requester_copy(), encoding="utf-8")


if __name__ == "__main__":
    main()
