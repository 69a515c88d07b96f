"""packaging/kubernetes/ as kubectl's kustomize renders it, checked without a cluster: every
manifest is in the kustomization, nothing clashes, one image at the package's version, the
probes and the budget fit the Deployment, and what it shares with `setup --print-rbac` is the
same object. The server's side is tests/realcluster/test_rollout.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

import cred_helper
from tests.support import doccommands
from tests.support.harness import BIN, CRED_HELPER

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "packaging" / "kubernetes"
IMAGE = "ghcr.io/example/cred-helper-approver"
ALTERNATIVES = {"janitor-rbac-namespace.yaml"}  # instead of janitor-rbac-cluster.yaml
PATCHES = {"ssh-ca-patch.yaml"}  # an overlay's `patches:`, not a resource


def render(kubectl: str, directory: Path) -> list[dict]:
    done = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def ident(doc: dict) -> tuple[str, str, str]:
    return doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]


def containers(doc: dict) -> list[dict]:
    spec = doc["spec"]
    pod = spec["jobTemplate"]["spec"]["template"] if doc["kind"] == "CronJob" \
        else spec["template"]
    return pod["spec"]["containers"]


@pytest.fixture(scope="module")
def rendered(kubectl) -> list[dict]:
    return render(kubectl, MANIFESTS)


def test_every_manifest_is_in_the_kustomization():
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    files = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    # Before: the janitor's manifests and the requesters' RBAC were left out.
    assert set(kustomization["resources"]) == files - ALTERNATIVES - PATCHES


def test_no_two_objects_share_a_name(rendered):
    ids = [ident(d) for d in rendered]
    assert len(ids) == len(set(ids))
    kinds = {kind for kind, _, _ in ids}
    assert {"Deployment", "CronJob", "PodDisruptionBudget", "NetworkPolicy"} <= kinds


def test_one_image_at_the_package_version(rendered):
    """The manifests, each on its own (`kubectl apply -f`) and through the kustomization's
    `images:` (the one place an overlay changes), run the image of this version."""
    wanted = f"{IMAGE}:{cred_helper.__version__}"
    workloads = [d for d in rendered if d["kind"] in ("Deployment", "CronJob")]
    assert len(workloads) == 2
    assert {c["image"] for d in workloads for c in containers(d)} == {wanted}
    for path in MANIFESTS.glob("*.yaml"):
        if path.name in PATCHES:
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") in ("Deployment", "CronJob"):
                assert {c["image"] for c in containers(doc)} == {wanted}, path.name
    (entry,) = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["images"]
    assert entry == {"name": IMAGE, "newName": IMAGE, "newTag": cred_helper.__version__}
    assert ":latest" not in (ROOT / "packaging" / "Containerfile").read_text()


def test_probes_budget_and_network_policy_fit_the_pods(rendered):
    by_kind = {d["kind"]: d for d in rendered if d["kind"] in (
        "Deployment", "PodDisruptionBudget", "NetworkPolicy", "CronJob")}
    deployment = by_kind["Deployment"]
    (container,) = containers(deployment)
    assert "--health-address=:8081" in container["args"]
    assert container["ports"] == [{"name": "health", "containerPort": 8081, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    pdb = by_kind["PodDisruptionBudget"]["spec"]
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["maxUnavailable"] == 1 and deployment["spec"]["replicas"] == 2
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    janitor_labels = by_kind["CronJob"]["spec"]["jobTemplate"]["spec"]["template"][
        "metadata"]["labels"]
    (selects,) = by_kind["NetworkPolicy"]["spec"]["podSelector"]["matchExpressions"]
    assert selects["key"] == "app.kubernetes.io/name" and selects["operator"] == "In"
    assert {pod_labels[selects["key"]], janitor_labels[selects["key"]]} == set(
        selects["values"])
    assert by_kind["NetworkPolicy"]["spec"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in by_kind["NetworkPolicy"]["spec"]


def test_what_it_shares_with_print_rbac_is_the_same_object(rendered, tmp_path):
    """Applying both must never replace one's subjects or rules with the other's."""
    done = subprocess.run([CRED_HELPER, "setup", "--print-rbac",
                           f"--audit-policy={tmp_path / 'audit.yaml'}"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    printed = {ident(d): d for d in yaml.safe_load_all(done.stdout) if d}
    ours = {ident(d): d for d in rendered}
    shared = set(printed) & set(ours)
    assert ("ClusterRoleBinding", "", "cred-helper-requester") in shared
    assert ("ClusterRoleBinding", "", "cred-helper-approver") in shared
    for key in shared:
        a, b = printed[key], ours[key]
        for field in ("rules", "roleRef", "subjects"):
            assert a.get(field) == b.get(field), (key, field)


def test_the_readmes_version_line(tmp_path):
    """The build step's shell lines that run here (not podman's: no container runtime), as
    one shell runs them: the tag is the version."""
    block = doccommands.block("docs/admin/broker.md", "Rolling it out")
    assert [c.split("=")[0] for c in block.runnable] == ["VERSION", "IMAGE"]
    script = "\n".join([*block.runnable, 'echo "$IMAGE:$VERSION"'])
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{BIN}:/usr/bin:/bin"})
    assert done.stdout.strip() == \
        f"registry.example.com/platform/cred-helper:{cred_helper.__version__}", done.stderr


def test_the_ssh_ca_patch_keeps_every_arg_of_the_deployment(kubectl, tmp_path):
    """A strategic-merge patch replaces the container's args whole: applied as its comment
    says, the broker must keep its probes' address and every other flag, and gain --ssh-ca."""
    import shutil

    base = [d for d in render(kubectl, MANIFESTS) if d["kind"] == "Deployment"]
    overlay = tmp_path / "overlay"
    shutil.copytree(MANIFESTS, overlay)
    with (overlay / "kustomization.yaml").open("a") as fh:
        fh.write("patches:\n- path: ssh-ca-patch.yaml\n")
    patched = [d for d in render(kubectl, overlay) if d["kind"] == "Deployment"]
    ((before,),), ((after,),) = [containers(d) for d in base], [containers(d) for d in patched]
    assert after["args"] == [*before["args"], "--ssh-ca=/etc/cred-helper-ssh-ca/ssh-ca"]
    assert {"name": "ssh-ca", "mountPath": "/etc/cred-helper-ssh-ca", "readOnly": True} in \
        after["volumeMounts"]
    assert after["livenessProbe"] == before["livenessProbe"]
