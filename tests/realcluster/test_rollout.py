"""The rollout as the docs tell a platform engineer to do it, on a real kube-apiserver: the
whole kustomization and the docs' overlays pass a server-side dry run with the image, the
requester group and the policy they name; the approver's probes say what they promise while
the API server comes and goes. No container runtime runs here: nothing is applied for real
(the shared plane's own requester binding must stay as it is), and no pod starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.support import doccommands
from tests.support.controlplane import free_port
from tests.support.harness import BIN, CRED_HELPER

pytestmark = pytest.mark.realcluster

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "packaging" / "kubernetes"
OUR_IMAGE = "registry.example.com/platform/cred-helper:0.1.0"


def overlay(tmp_path: Path, policy: str) -> Path:
    """docs/admin/broker.md's overlay, beside a checkout: `../cred-helper` is this one."""
    deploy = tmp_path / "cred-helper-deploy"
    deploy.mkdir()
    (tmp_path / "cred-helper").symlink_to(ROOT)
    text = doccommands.block("docs/admin/broker.md", "Rolling it out", "yaml").text
    (deploy / "kustomization.yaml").write_text(text)
    (deploy / "policy.yaml").write_text(policy)
    return deploy


def kubectl(plane, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """kubectl as the README runs it, with the admin's kubeconfig."""
    admin = plane.dir / "admin.kubeconfig"
    plane.kubectl("version")  # writes admin.kubeconfig
    return subprocess.run([plane.kubectl_path, *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, stdin=subprocess.DEVNULL,
                          env={"PATH": os.environ.get("PATH", ""), "HOME": str(plane.dir),
                               "KUBECONFIG": str(admin)})


def dry_run(plane, directory: Path) -> list[dict]:
    plane.kubectl("apply", "-f", str(MANIFESTS / "namespace.yaml"))
    done = kubectl(plane, "apply", "--dry-run=server", "-o", "json", "-k", str(directory))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    return doc["items"] if doc.get("kind") == "List" else [doc]


def by_id(items: list[dict]) -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in items}


def pod_spec(doc: dict) -> dict:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def test_the_whole_kustomization_passes_a_server_side_dry_run(control_plane):
    items = by_id(dry_run(control_plane, MANIFESTS))
    for wanted in [("Deployment", "cred-helper-approver"), ("CronJob", "cred-helper-janitor"),
                   ("PodDisruptionBudget", "cred-helper-approver"),
                   ("ClusterRoleBinding", "cred-helper-requester"),
                   ("ClusterRoleBinding", "cred-helper-janitor"),
                   ("NetworkPolicy", "cred-helper-no-ingress")]:
        assert wanted in items, sorted(items)
    # The server kept what the pods rely on (it drops fields it does not know).
    container = pod_spec(items[("Deployment", "cred-helper-approver")])["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["port"] == "health"
    pdb = items[("PodDisruptionBudget", "cred-helper-approver")]["spec"]
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow" and pdb["maxUnavailable"] == 1


def test_the_readmes_overlay(control_plane, tmp_path):
    policy = "default: manual\nrules: []\n"
    deploy = overlay(tmp_path, policy)
    shown = kubectl(control_plane, "kustomize", "cred-helper-deploy", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    checked = kubectl(control_plane, "apply", "--dry-run=server", "-k", "cred-helper-deploy",
                      cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "deployment.apps/cred-helper-approver created (server dry run)" in checked.stdout
    items = by_id(dry_run(control_plane, deploy))
    for workload in (("Deployment", "cred-helper-approver"), ("CronJob", "cred-helper-janitor")):
        assert [c["image"] for c in pod_spec(items[workload])["containers"]] == [OUR_IMAGE]
    assert items[("ClusterRoleBinding", "cred-helper-requester")]["subjects"][0]["name"] == \
        "oncall-bootstrap"
    assert items[("ConfigMap", "cred-helper-approver-policy")]["data"] == {
        "policy.yaml": policy}


def test_the_readmes_some_namespaces_overlay(control_plane, tmp_path):
    deploy = overlay(tmp_path, "default: manual\nrules: []\n")
    loop = doccommands.block("docs/admin/janitor.md", "Running the janitor in the cluster").text
    assert loop.startswith("cd cred-helper-deploy\n")
    done = subprocess.run(["sh", "-c", loop], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    main = yaml.safe_load((deploy / "kustomization.yaml").read_text())
    extra = yaml.safe_load(_janitor_snippet())
    main["resources"] = list(dict.fromkeys(main["resources"] + extra["resources"]))
    main["patches"] = main.get("patches", []) + extra["patches"]
    (deploy / "kustomization.yaml").write_text(yaml.safe_dump(main))
    for ns in ("shop", "payments"):
        subprocess.run([control_plane.kubectl_path, "--kubeconfig",
                        str(control_plane.dir / "admin.kubeconfig"), "create", "namespace", ns],
                       capture_output=True, timeout=60)
    items = dry_run(control_plane, deploy)
    ids = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
           for d in items}
    assert ("ClusterRoleBinding", "", "cred-helper-janitor") not in ids
    assert ("ClusterRole", "", "cred-helper-janitor") not in ids
    assert {("Role", "shop", "cred-helper-janitor"), ("RoleBinding", "payments",
                                                      "cred-helper-janitor")} <= ids
    cronjob = next(d for d in items if d["kind"] == "CronJob")
    args = pod_spec(cronjob)["containers"][0]["args"]
    assert args[-2:] == ["--namespace=shop", "--namespace=payments"]


def _janitor_snippet() -> str:
    """docs/admin/janitor.md's "beside the rest" block of the some-namespaces overlay."""
    return doccommands.block("docs/admin/janitor.md", "Running the janitor in the cluster",
                             "yaml").text


# ---- the approver's probes -------------------------------------------------------------------

def _probe(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode().strip()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode().strip()
    except OSError as exc:
        return 0, str(exc)


def _until(port: int, path: str, status: int, timeout: float = 45) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    seen = _probe(port, path)
    while seen[0] != status and time.monotonic() < deadline:
        time.sleep(0.3)
        seen = _probe(port, path)
    return seen


def test_probes_while_the_api_server_comes_and_goes(own_plane, tmp_path):
    admin = own_plane.write_kubeconfig(tmp_path / "admin.kubeconfig",
                                       {"token": own_plane.admin_token})
    policy = tmp_path / "policy.yaml"
    policy.write_text("default: manual\nrules: []\n")
    ports = [free_port(), free_port()]
    replicas = [subprocess.Popen(
        [CRED_HELPER, "approver", "run", f"--policy={policy}", f"--kubeconfig={admin}",
         "--lease-name=cred-helper-approver", "--lease-namespace=default",
         f"--identity=replica-{i}", "--lease-duration=6", f"--health-address=127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        env={"PATH": f"{BIN}:{os.environ.get('PATH', '')}", "HOME": str(tmp_path)})
        for i, port in enumerate(ports)]
    try:
        for port in ports:  # the leader and the standby: both ready, both live
            assert _until(port, "/readyz", 200) == (200, "ok")
            assert _probe(port, "/livez") == (200, "ok")
        lease = json.loads(own_plane.kubectl("get", "lease", "cred-helper-approver", "-o",
                                             "json"))
        assert lease["spec"]["holderIdentity"] in ("replica-0", "replica-1")

        own_plane.halt("kube-apiserver")
        try:
            for port in ports:
                status, why = _until(port, "/readyz", 503)
                assert status == 503 and "cannot reach" in why, why
                assert _probe(port, "/livez") == (200, "ok")  # no restart for this
        finally:
            own_plane.resume("kube-apiserver")
        for port in ports:
            assert _until(port, "/readyz", 200, timeout=60) == (200, "ok")
    finally:
        for proc in replicas:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=30) for proc in replicas]
    assert codes == [0, 0], [p.stderr.read() for p in replicas]
