"""The debug workflow, as kube-apiserver 1.37 and kubectl 1.37 (both built from the pinned
module) really behave: each fact the README's "The debug workflow" states is shown here.

There is no kubelet or scheduler: debug containers are added with `kubectl debug --attach=false`
or through the `pods/ephemeralcontainers` subresource, and what kubectl created is read back.
Nothing is attached to and nothing runs."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from cred_helper import rbac
from tests.support import controlplane as controlplane_module
from tests.support.controlplane import ControlPlane

pytestmark = pytest.mark.realcluster

RESOURCES_REFUSED = ("spec.ephemeralContainers[{}].resources: Forbidden: "
                     "cannot be set for an Ephemeral Container")
PROFILE = {"resources": {"requests": {"cpu": "250m", "memory": "128Mi"},
                         "limits": {"memory": "256Mi"}}}
PROBE = {"httpGet": {"path": "/healthz", "port": 8080}}


def new_namespace(plane) -> str:
    """A namespace of the test's own, with the `default` ServiceAccount that kcm's
    serviceaccount controller (not running here) would have made."""
    name = f"debug-{uuid.uuid4().hex[:8]}"
    plane.kubectl("create", "namespace", name)
    plane.kubectl("create", "serviceaccount", "default", "-n", name)
    return name


def get_pod(plane, namespace: str, name: str) -> dict:
    return json.loads(plane.kubectl("get", "pod", "-n", namespace, name, "-o", "json"))


def workload_pod(plane, namespace: str, node: str = "") -> dict:
    """A pod as a ReplicaSet makes it: a controller owner, labels its selector matches, an
    annotation, probes, an init container, and (optionally) a node it was scheduled to."""
    rs = json.loads(plane.kubectl("create", "-o", "json", "-f", "-", stdin=json.dumps({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "shop", "namespace": namespace},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "shop"}},
                 "template": {"metadata": {"labels": {"app": "shop"}},
                              "spec": {"containers": [{"name": "app", "image": "shop:1"}]}}}})))
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "shop-x7k2p", "namespace": namespace,
            "labels": {"app": "shop", "pod-template-hash": "x7k2p"},
            "annotations": {"example.com/owner-team": "payments"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "shop",
                                 "uid": rs["metadata"]["uid"], "controller": True,
                                 "blockOwnerDeletion": True}]},
        "spec": {
            "initContainers": [{"name": "migrate", "image": "shop:1", "command": ["true"]}],
            "containers": [{"name": "app", "image": "shop:1",
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                            "livenessProbe": PROBE, "readinessProbe": PROBE,
                            "startupProbe": PROBE}]}}
    if node:
        pod["spec"]["nodeName"] = node
    return json.loads(plane.kubectl("create", "-o", "json", "-f", "-", stdin=json.dumps(pod)))


def refused(plane, *args: str) -> str:
    """kubectl's error text for a command that must fail."""
    with pytest.raises(RuntimeError) as caught:
        plane.kubectl(*args)
    return str(caught.value)


def add_ephemeral(plane, namespace: str, pod: str, container: dict) -> None:
    plane.kubectl("patch", "pod", pod, "-n", namespace, "--subresource=ephemeralcontainers",
                  "--type=strategic", "-p",
                  json.dumps({"spec": {"ephemeralContainers": [container]}}))


def test_kube_apiserver_refuses_resources_on_an_ephemeral_container(control_plane, tmp_path):
    ns = new_namespace(control_plane)
    workload_pod(control_plane, ns)
    pod = "shop-x7k2p"
    # Through the subresource directly: requests, or limits alone, are refused.
    for resources in (PROFILE["resources"], {"limits": {"memory": "64Mi"}}):
        error = refused(control_plane, "patch", "pod", pod, "-n", ns,
                        "--subresource=ephemeralcontainers", "--type=strategic", "-p",
                        json.dumps({"spec": {"ephemeralContainers": [{
                            "name": "netshoot", "image": "nicolaka/netshoot",
                            "resources": resources}]}}))
        assert RESOURCES_REFUSED.format(0) in error
    # Through kubectl debug with a custom profile, as some guides advise: the same answer,
    # at the index the new container would take.
    add_ephemeral(control_plane, ns, pod, {"name": "first", "image": "busybox"})
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(PROFILE))
    error = refused(control_plane, "debug", pod, "-n", ns, "--image=nicolaka/netshoot",
                    "--attach=false", f"--custom={profile}", "-c", "netshoot")
    assert RESOURCES_REFUSED.format(1) in error
    names = [c["name"] for c in get_pod(control_plane, ns, pod)["spec"]["ephemeralContainers"]]
    assert names == ["first"]
    # Without resources the same container is accepted, with none: it shares the pod's.
    control_plane.kubectl("debug", pod, "-n", ns, "--image=nicolaka/netshoot",
                          "--attach=false", "-c", "netshoot")
    ephemeral = get_pod(control_plane, ns, pod)["spec"]["ephemeralContainers"]
    assert [c["name"] for c in ephemeral] == ["first", "netshoot"]
    assert ephemeral[1]["resources"] == {}


def test_copy_to_with_a_custom_profile(control_plane, tmp_path):
    ns = new_namespace(control_plane)
    original = workload_pod(control_plane, ns)
    add_ephemeral(control_plane, ns, "shop-x7k2p", {"name": "earlier", "image": "busybox"})
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(PROFILE))
    control_plane.kubectl("debug", "shop-x7k2p", "-n", ns, "--copy-to=shop-x7k2p-debug",
                          "--image=nicolaka/netshoot", f"--custom={profile}", "-c", "debugger",
                          "--attach=false", "--", "sleep", "1d")
    copy = get_pod(control_plane, ns, "shop-x7k2p-debug")
    spec, meta = copy["spec"], copy["metadata"]
    app, debugger = spec["containers"]
    # The custom profile's resources are on the copy's debug container, a normal container.
    assert debugger["name"] == "debugger" and debugger["image"] == "nicolaka/netshoot"
    assert debugger["resources"] == PROFILE["resources"]
    assert debugger["command"] == ["sleep", "1d"]
    assert debugger["securityContext"] == {"capabilities": {"add": ["SYS_PTRACE"]}}
    assert app["resources"] == original["spec"]["containers"][0]["resources"]
    # No owner, no labels, no annotations: no Service or ReplicaSet selects it.
    assert "ownerReferences" not in meta
    assert "labels" not in meta and "annotations" not in meta
    # Probes are dropped from every container; init containers are kept; the original's
    # ephemeral containers are not copied; processes are shared; no node is carried over.
    for container in spec["containers"]:
        assert not {"livenessProbe", "readinessProbe", "startupProbe"} & set(container)
    assert [c["name"] for c in spec["initContainers"]] == ["migrate"]
    assert "ephemeralContainers" not in spec
    assert spec["shareProcessNamespace"] is True
    assert "nodeName" not in spec
    # The original is untouched.
    assert get_pod(control_plane, ns, "shop-x7k2p")["metadata"]["labels"] == \
        original["metadata"]["labels"]
    # The janitor looks for ephemeral containers and evicts by controller owner: the copy has
    # neither, so it is never its business. It is removed by hand, and goes at once.
    control_plane.kubectl("delete", "pod", "shop-x7k2p-debug", "-n", ns)
    error = refused(control_plane, "get", "pod", "shop-x7k2p-debug", "-n", ns)
    assert "NotFound" in error


def test_copy_to_options_that_change_the_copy(control_plane):
    """--same-node keeps the node, --share-processes=false turns sharing off, --keep-labels
    keeps the labels (and with them the original's traffic), and --replace deletes the
    original outright: a DELETE with grace period 0, not an eviction."""
    ns = new_namespace(control_plane)
    workload_pod(control_plane, ns, node="node-a")
    control_plane.kubectl("debug", "shop-x7k2p", "-n", ns, "--copy-to=same-node",
                          "--image=busybox", "--attach=false", "--same-node",
                          "--share-processes=false")
    spec = get_pod(control_plane, ns, "same-node")["spec"]
    assert spec["nodeName"] == "node-a"
    assert spec["shareProcessNamespace"] is False
    control_plane.kubectl("debug", "shop-x7k2p", "-n", ns, "--copy-to=labelled",
                          "--image=busybox", "--attach=false", "--keep-labels")
    labelled = get_pod(control_plane, ns, "labelled")["metadata"]
    assert labelled["labels"] == {"app": "shop", "pod-template-hash": "x7k2p"}
    assert "ownerReferences" not in labelled
    # A PodDisruptionBudget that forbids any disruption does not stop --replace.
    control_plane.kubectl("create", "poddisruptionbudget", "shop", "-n", ns,
                          "--selector=app=shop", "--max-unavailable=0")
    control_plane.kubectl("debug", "shop-x7k2p", "-n", ns, "--copy-to=replacement",
                          "--image=busybox", "--attach=false", "--replace")
    assert "NotFound" in refused(control_plane, "get", "pod", "shop-x7k2p", "-n", ns)


def test_an_ephemeral_container_is_never_removed_or_changed(control_plane, tmp_path):
    ns = new_namespace(control_plane)
    workload_pod(control_plane, ns)
    pod = "shop-x7k2p"
    control_plane.kubectl("debug", pod, "-n", ns, "--image=busybox", "--attach=false",
                          "-c", "tcpdump", "--", "sleep", "1d")
    sub = ("patch", "pod", pod, "-n", ns, "--subresource=ephemeralcontainers")
    removed = 'existing ephemeral containers "tcpdump" may not be removed'
    changed = 'existing ephemeral containers "tcpdump" may not be changed'
    assert removed in refused(control_plane, *sub, "--type=json", "-p", json.dumps(
        [{"op": "remove", "path": "/spec/ephemeralContainers/0"}]))
    assert removed in refused(control_plane, *sub, "--type=merge", "-p", json.dumps(
        {"spec": {"ephemeralContainers": []}}))
    assert changed in refused(control_plane, *sub, "--type=json", "-p", json.dumps(
        [{"op": "replace", "path": "/spec/ephemeralContainers/0/image", "value": "alpine"}]))
    # A whole replacement through the subresource, and the pod itself, cannot drop it either.
    whole = get_pod(control_plane, ns, pod)
    whole["spec"]["ephemeralContainers"] = []
    path = tmp_path / "pod.json"
    path.write_text(json.dumps(whole))
    assert removed in refused(control_plane, "replace", "--subresource=ephemeralcontainers",
                              "-f", str(path))
    assert "pod updates may not change fields" in refused(
        control_plane, "patch", "pod", pod, "-n", ns, "--type=json", "-p", json.dumps(
            [{"op": "remove", "path": "/spec/ephemeralContainers"}]))
    names = [c["name"] for c in get_pod(control_plane, ns, pod)["spec"]["ephemeralContainers"]]
    assert names == ["tcpdump"]


def kubectl_as(plane, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([plane.kubectl_path, f"--kubeconfig={kubeconfig}", *args],
                          capture_output=True, text=True, timeout=60)


def debug_patches(plane) -> list[dict]:
    return [e for e in plane.audit_events()
            if e.get("objectRef", {}).get("subresource") == "ephemeralcontainers"
            and e.get("verb") == "patch" and e["user"]["username"] == "alice@example.com"]


def oncall_session(plane, tmp_path: Path) -> tuple[str, Path]:
    """The team's RBAC from `setup --print-rbac` in a namespace, a workload pod there, and a
    kubeconfig for alice (group oncall) on her bootstrap token."""
    ns = new_namespace(plane)
    plane.kubectl("apply", "-f", "-", stdin=rbac.api_objects(rbac.Team("oncall", (ns,))))
    workload_pod(plane, ns)
    return ns, plane.write_kubeconfig(tmp_path / f"alice-{ns}.kubeconfig",
                                      {"token": plane.bootstrap_token})


# The README's line, with --attach=false added: there is no kubelet to attach to.
DEBUG_LINE = ("debug", "shop-x7k2p", "-it", "--image=nicolaka/netshoot", "-c", "netshoot",
              "--target=app", "--attach=false", "--", "tcpdump", "-i", "any", "-c", "100")


def test_the_oncall_role_allows_kubectl_debug_and_not_a_copy(control_plane, tmp_path):
    ns, alice = oncall_session(control_plane, tmp_path)
    done = kubectl_as(control_plane, alice, "-n", ns, *DEBUG_LINE)
    assert done.returncode == 0, done.stderr
    (added,) = get_pod(control_plane, ns, "shop-x7k2p")["spec"]["ephemeralContainers"]
    assert added["command"] == ["tcpdump", "-i", "any", "-c", "100"]
    assert added["targetContainerName"] == "app"
    assert added["stdin"] is True and added["tty"] is True
    copy = kubectl_as(control_plane, alice, "-n", ns, "debug", "shop-x7k2p",
                      "--copy-to=shop-debug", "--image=busybox", "--attach=false")
    assert copy.returncode == 1
    assert 'cannot create resource "pods"' in copy.stderr
    # The session plane audits alice at Metadata: who patched which pod, not what ran.
    (event,) = [e for e in debug_patches(control_plane)
                if e["objectRef"]["namespace"] == ns]
    assert event["level"] == "Metadata" and "requestObject" not in event


def test_a_request_level_audit_rule_records_the_image_and_command(control_plane_bin, tmp_path,
                                                                  monkeypatch):
    """cred-helper's audit policy (`setup --print-rbac --audit-policy`) logs
    pods/ephemeralcontainers at Request level: the image and command are in the log."""
    monkeypatch.setattr(controlplane_module, "AUDIT_POLICY", rbac.audit_policy())
    with ControlPlane(control_plane_bin) as plane:
        ns, alice = oncall_session(plane, tmp_path)
        done = kubectl_as(plane, alice, "-n", ns, *DEBUG_LINE)
        assert done.returncode == 0, done.stderr
        (event,) = debug_patches(plane)
    assert event["level"] == "Request"
    assert event["objectRef"]["name"] == "shop-x7k2p"
    (recorded,) = event["requestObject"]["spec"]["ephemeralContainers"]
    assert recorded["image"] == "nicolaka/netshoot"
    assert recorded["command"] == ["tcpdump", "-i", "any", "-c", "100"]
