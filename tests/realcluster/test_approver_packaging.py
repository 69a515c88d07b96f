"""packaging/kubernetes/ against the real kube-apiserver: every manifest passes a server-side
dry run, and the approver runs with exactly the ServiceAccount's rights (a token from
`kubectl create token`): enough to approve, deny, announce and hold its Lease, and no more."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.realcluster.test_approver_runtime import (
    Proc,
    admin_client,
    create_csr,
    events_for,
    prefix,
    verdicts,
    wait_decided,
)

pytestmark = pytest.mark.realcluster

MANIFESTS = Path(__file__).resolve().parents[2] / "packaging" / "kubernetes"
SA = "system:serviceaccount:cred-helper:cred-helper-approver"


@pytest.fixture(scope="module")
def installed(control_plane):
    """The namespace, ServiceAccount and RBAC applied for real (the Deployment cannot run
    without a container runtime), and a token for the ServiceAccount."""
    for name in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml"):
        control_plane.kubectl("apply", "-f", str(MANIFESTS / name))
    return control_plane.kubectl("create", "token", "-n", "cred-helper",
                                 "cred-helper-approver", "--duration=1h").strip()


def test_every_manifest_passes_a_server_side_dry_run(control_plane, installed):
    out = control_plane.kubectl("apply", "--dry-run=server", "-k", str(MANIFESTS))
    for kind in ("namespace/cred-helper", "serviceaccount/cred-helper-approver",
                 "clusterrole.rbac.authorization.k8s.io/cred-helper-approver",
                 "configmap/cred-helper-approver-policy",
                 "deployment.apps/cred-helper-approver"):
        assert kind in out, out
    deployment = json.loads(control_plane.kubectl(
        "apply", "--dry-run=server", "-o", "json", "-f", str(MANIFESTS / "deployment.yaml")))
    assert deployment["spec"]["replicas"] == 2
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--lease-name=cred-helper-approver" in args


def can_i(plane, verb: str, resource: str, namespace: str = "", name: str = "",
          subresource: str = "", user: str = SA) -> bool:
    """A SubjectAccessReview for the ServiceAccount (exact, where `kubectl auth can-i`
    splits a signer's name at its slash); `user`: another ServiceAccount of cred-helper's
    namespace."""
    group, _, res = resource.rpartition("/") if "/" in resource else ("", "", resource)
    review = admin_client(plane).post(
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
         "spec": {"user": user, "groups": ["system:serviceaccounts",
                                         "system:serviceaccounts:cred-helper",
                                         "system:authenticated"],
                  "resourceAttributes": {"verb": verb, "group": group, "resource": res,
                                         "namespace": namespace, "name": name,
                                         "subresource": subresource}}})
    return review["status"].get("allowed") is True


CSRS = "certificates.k8s.io/certificatesigningrequests"
SIGNERS = "certificates.k8s.io/signers"
LEASES = "coordination.k8s.io/leases"
CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"


def test_rbac_is_least_privilege(control_plane, installed):
    allowed = [
        dict(verb="get", resource=CSRS, name="any"),
        dict(verb="list", resource=CSRS),
        dict(verb="watch", resource=CSRS),
        dict(verb="update", resource=CSRS, name="any", subresource="approval"),
        dict(verb="approve", resource=SIGNERS, name=CLIENT_SIGNER),
        dict(verb="create", resource="events", namespace="default"),
        dict(verb="create", resource=LEASES, namespace="cred-helper"),
        dict(verb="get", resource=LEASES, namespace="cred-helper",
             name="cred-helper-approver"),
        dict(verb="update", resource=LEASES, namespace="cred-helper",
             name="cred-helper-approver"),
    ]
    refused = [
        dict(verb="update", resource=CSRS, name="any"),
        dict(verb="patch", resource=CSRS, name="any", subresource="approval"),
        dict(verb="delete", resource=CSRS, name="any"),
        dict(verb="create", resource=CSRS),
        dict(verb="update", resource=CSRS, name="any", subresource="status"),
        dict(verb="approve", resource=SIGNERS, name="kubernetes.io/kubelet-serving"),
        dict(verb="approve", resource=SIGNERS,
             name="kubernetes.io/kube-apiserver-client-kubelet"),
        dict(verb="approve", resource=SIGNERS, name="kubernetes.io/*"),
        dict(verb="sign", resource=SIGNERS, name=CLIENT_SIGNER),
        dict(verb="create", resource="events", namespace="kube-system"),
        dict(verb="delete", resource="events", namespace="default", name="any"),
        dict(verb="update", resource=LEASES, namespace="cred-helper",
             name="kube-controller-manager"),
        dict(verb="update", resource=LEASES, namespace="default",
             name="cred-helper-approver"),
        dict(verb="delete", resource=LEASES, namespace="cred-helper",
             name="cred-helper-approver"),
        dict(verb="get", resource="secrets", namespace="cred-helper", name="any"),
        dict(verb="get", resource="configmaps", namespace="cred-helper", name="any"),
    ]
    assert [w for w in allowed if not can_i(control_plane, **w)] == []
    assert [w for w in refused if can_i(control_plane, **w)] == []


def test_the_service_account_is_enough_to_run_the_approver(tmp_path, control_plane,
                                                           installed, procs):
    client, p = admin_client(control_plane), prefix()
    approver = Proc(tmp_path, control_plane, p, "--lease-name", "cred-helper-approver",
                    "--lease-namespace", "cred-helper", "--identity", "sa-replica",
                    "--lease-duration", "3", token=installed, tag="sa")
    procs.append(approver)
    time.sleep(2)
    names = [f"{p}approve-1", f"{p}deny-1"]
    manual = create_csr(client, f"{p}manual-1")
    for name in names:
        create_csr(client, name)
    wait_decided(client, names)
    approver.wait_lines(3, timeout=20)
    assert verdicts(client, names[0]) == ["Approved"]
    assert verdicts(client, names[1]) == ["Denied"]
    assert sorted(line["decision"] for line in approver.lines()) == ["approve", "deny",
                                                                    "manual"]
    assert len(events_for(control_plane, manual["metadata"]["uid"])) == 1
    lease = json.loads(control_plane.kubectl("get", "lease", "-n", "cred-helper",
                                             "cred-helper-approver", "-o", "json"))
    assert lease["spec"]["holderIdentity"] == "sa-replica"
    assert "forbidden" not in approver.stderr().lower(), approver.stderr()


def test_the_readmes_human_approvers_and_the_brokers_binding_both_stay(control_plane,
                                                                       installed):
    """Issue 25: the README's ClusterRoleBinding for people who approve by hand and the
    broker's ServiceAccount binding were both cred-helper-approver, so applying one replaced
    the other's subjects. Applied one after the other, in either order, both keep theirs, and
    both the ServiceAccount and a person of the group may approve."""
    from cred_helper import rbac

    people = rbac.human_approvers("oncall-leads")
    for _ in range(2):  # README after the packaging, then the packaging after the README
        control_plane.kubectl("apply", "-f", "-", stdin=people)
        control_plane.kubectl("apply", "-f", str(MANIFESTS / "rbac.yaml"))
    subjects = {
        name: [(s["kind"], s["name"]) for s in json.loads(control_plane.kubectl(
            "get", "clusterrolebinding", name, "-o", "json"))["subjects"]]
        for name in ("cred-helper-approver", "cred-helper-human-approvers")}
    assert subjects == {"cred-helper-approver": [("ServiceAccount", "cred-helper-approver")],
                        "cred-helper-human-approvers": [("Group", "oncall-leads")]}
    review = admin_client(control_plane).post(
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
         "spec": {"user": "lead@example.com", "groups": ["oncall-leads"],
                  "resourceAttributes": {"verb": "approve", "group": "certificates.k8s.io",
                                         "resource": "signers", "name": CLIENT_SIGNER}}})
    assert review["status"].get("allowed") is True
    assert can_i(control_plane, "approve", SIGNERS, name=CLIENT_SIGNER)
