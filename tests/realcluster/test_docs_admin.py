"""The administrators' pages' commands, typed as an admin types them (`kubectl` and
`cred-helper` on PATH, KUBECONFIG naming an admin's kubeconfig, paths from a checkout), on a
real control plane of this module's own: the objects they create would otherwise meet the
session plane's other tests. What each command is for is checked on the server afterwards."""

from __future__ import annotations

import base64
import json
import os
import select
import signal
import time
from pathlib import Path

import pytest
import yaml

from tests.realcluster.test_approver_runtime import admin_client, create_csr
from tests.realcluster.test_debug_workflow import get_pod, workload_pod
from tests.realcluster.test_rollout import overlay
from tests.support import doccommands, policies
from tests.support.controlplane import ControlPlane
from tests.support.harness import BIN

pytestmark = pytest.mark.realcluster
ROOT = Path(__file__).resolve().parents[2]


class Admin:
    def __init__(self, plane: ControlPlane, tmp: Path) -> None:
        self.plane = plane
        tools = tmp / "tools"
        tools.mkdir()
        (tools / "kubectl").symlink_to(plane.kubectl_path)
        (tools / "cred-helper").symlink_to(BIN / "cred-helper")
        self.env = {"HOME": str(tmp), "LANG": "C.UTF-8",
                    "PATH": f"{tools}{os.pathsep}/usr/bin:/bin",
                    "KUBECONFIG": str(plane.dir / "admin.kubeconfig")}

    def run_all(self, block: doccommands.Block, count: int, cwd: Path) -> list:
        assert len(block.runnable) == count, block.runnable
        done = []
        for command in block.runnable:
            result = doccommands.run(command, cwd=cwd, env=self.env)
            assert result.returncode == 0, f"{command}\n{result.stderr}"
            done.append(result)
        return done


@pytest.fixture(scope="module")
def plane(control_plane_bin):
    with ControlPlane(control_plane_bin) as own:
        for namespace in ("shop", "payments"):  # the namespaces the pages' examples watch
            own.kubectl("create", "namespace", namespace)
            own.kubectl("create", "serviceaccount", "default", "-n", namespace)
        yield own


@pytest.fixture
def admin(plane, tmp_path) -> Admin:
    return Admin(plane, tmp_path)


def settled(plane, *question: str, want: str = "yes") -> None:
    """RBAC reaches the authorizer through an informer: wait until it has."""
    deadline = time.monotonic() + 15
    while True:
        try:
            answer = plane.kubectl("auth", "can-i", *question).strip()
        except RuntimeError:  # `no` exits 1
            answer = "no"
        if answer == want:
            return
        assert time.monotonic() < deadline, f"RBAC never settled: {question}"
        time.sleep(0.2)


def test_the_teams_rbac_then_a_token_for_a_person(admin, plane, tmp_path):
    """docs/admin/rbac.md: print the team's RBAC, apply it, then mint alice's token, which may
    ask for certificates and nothing else."""
    printed, _ = admin.run_all(
        doccommands.block("docs/admin/rbac.md", "The team's RBAC and the audit policy"), 2,
        tmp_path)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in
             yaml.safe_load_all((tmp_path / "cred-helper-rbac.yaml").read_text()) if d}
    assert ("ClusterRole", "cred-helper-requester") in kinds
    assert ("Role", "cred-helper-oncall-debug") in kinds
    assert printed.stdout == ""
    plane.kubectl("get", "clusterrole", "cred-helper-requester")
    plane.kubectl("get", "rolebinding", "-n", "shop", "cred-helper-oncall-debug")

    admin.run_all(doccommands.block("docs/admin/rbac.md", "Tokens for people"), 3, tmp_path)
    token = (tmp_path / "alice.token").read_text().strip()
    alice = plane.write_kubeconfig(tmp_path / "alice.kubeconfig", {"token": token})
    settled(plane, "create", "certificatesigningrequests",
            "--as=system:serviceaccount:cred-helper:alice")
    ask = ["auth", "can-i", f"--kubeconfig={alice}"]
    assert plane.kubectl(*ask, "create", "certificatesigningrequests").strip() == "yes"
    with pytest.raises(RuntimeError):  # `no` exits 1
        plane.kubectl(*ask, "list", "secrets", "-n", "cred-helper")


def test_the_rollout_then_the_janitors_rights_then_a_pass(admin, plane, tmp_path):
    """docs/admin/broker.md's rollout with the page's overlay (kustomize, a server-side dry
    run, the apply; there is no kubelet to wait for), then docs/admin/janitor.md: the
    janitor's rights asked as the page asks, and a pass out of the cluster on its token."""
    overlay(tmp_path, "default: manual\nrules: []\n")
    shown, checked, applied = admin.run_all(
        doccommands.block("docs/admin/broker.md", "Rolling it out", index=1), 3,
        tmp_path)
    assert "kind: Deployment" in shown.stdout
    assert "(server dry run)" in checked.stdout and "created" in applied.stdout
    deployment = json.loads(plane.kubectl("get", "deployment", "-n", "cred-helper",
                                          "cred-helper-approver", "-o", "json"))
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "registry.example.com/platform/cred-helper:0.1.0"
    plane.kubectl("get", "cronjob", "-n", "cred-helper", "cred-helper-janitor")

    janitor = "--as=system:serviceaccount:cred-helper:cred-helper-janitor"
    settled(plane, "create", "pods", "--subresource=eviction", "-n", "shop", janitor)
    may, may_not = doccommands.block("docs/admin/janitor.md",
                                     "Running the janitor in the cluster", index=1).runnable
    assert doccommands.run(may, cwd=tmp_path, env=admin.env).stdout.strip() == "yes"
    refused = doccommands.run(may_not, cwd=tmp_path, env=admin.env)
    assert (refused.returncode, refused.stdout.strip()) == (1, "no")

    token = plane.kubectl("create", "token", "-n", "cred-helper", "cred-helper-janitor",
                          "--duration=1h").strip()
    plane.write_kubeconfig(tmp_path / "janitor.kubeconfig", {"token": token})
    dry, once = admin.run_all(doccommands.block("docs/admin/janitor.md", "Running it"), 2,
                              tmp_path)
    assert "nothing to do" in dry.stderr and "nothing to do" in once.stderr


def test_the_broker_outside_the_cluster(admin, plane, tmp_path):
    """docs/admin/broker.md: `approver run` with a policy file and a kubeconfig; with the
    starter policy a CSR stays pending for a person, and the decision line says so."""
    (tmp_path / "policy.yaml").write_text(policies.starter())
    plane.write_kubeconfig(tmp_path / "approver.kubeconfig", {"token": plane.admin_token})
    (command,) = doccommands.block("docs/admin/broker.md", "Run it outside the cluster").runnable
    broker = doccommands.start(command, cwd=tmp_path, env=admin.env)
    try:
        time.sleep(2)  # listed and watching
        csr = create_csr(admin_client(plane), "docs-broker-manual-1")
        ready, _, _ = select.select([broker.stdout], [], [], 30)
        assert ready, "no decision line"
        line = json.loads(broker.stdout.readline())
        assert (line["csr"], line["decision"]) == ("docs-broker-manual-1", "manual")
        assert csr["metadata"]["name"] == "docs-broker-manual-1"
    finally:
        os.killpg(broker.pid, signal.SIGTERM)
        broker.wait(15)


def test_a_copy_with_a_custom_profile_then_its_removal(admin, plane, tmp_path):
    """docs/admin/debug-workflow.md: the profile written as the page writes it is what
    `kubectl debug --custom` takes (here with --attach=false: no kubelet), and the page's
    delete removes the copy."""
    write, delete = doccommands.block("docs/admin/debug-workflow.md",
                                      "What a team can do instead: a copy").runnable
    assert doccommands.run(write, cwd=tmp_path, env=admin.env).returncode == 0
    profile = json.loads((tmp_path / "profile.json").read_text())
    workload_pod(plane, "shop")
    plane.kubectl("debug", "-n", "shop", "shop-x7k2p", "--copy-to=shop-x7k2p-debug",
                  "--image=nicolaka/netshoot", f"--custom={tmp_path / 'profile.json'}",
                  "-c", "debugger", "--attach=false", "--", "sh")
    debugger = get_pod(plane, "shop", "shop-x7k2p-debug")["spec"]["containers"][-1]
    assert debugger["resources"] == profile["resources"]
    removed = doccommands.run(delete, cwd=tmp_path, env=admin.env)
    assert removed.returncode == 0, removed.stderr
    with pytest.raises(RuntimeError, match="NotFound"):
        plane.kubectl("get", "pod", "-n", "shop", "shop-x7k2p-debug")


def test_access_requests_installed_as_the_admin_page_says(admin, plane, tmp_path):
    """docs/access-requests.md, "For the admin": the kustomization, the people's RBAC from
    setup, the SSH user CA made and kept in its Secret; then the CRD serves requests, the
    people's roles exist, and the Secret holds the CA's private key."""
    (tmp_path / "packaging").symlink_to(ROOT / "packaging")  # paths from a checkout
    admin.run_all(doccommands.block("docs/access-requests.md", "For the admin"), 4, tmp_path)
    deadline = time.monotonic() + 15
    while True:  # a new CRD is served once it is established
        try:
            plane.kubectl("get", "accessrequests")
            break
        except RuntimeError:
            assert time.monotonic() < deadline, "the AccessRequest CRD is not served"
            time.sleep(0.2)
    for role in ("cred-helper-access-requester", "cred-helper-access-decider"):
        plane.kubectl("get", "clusterrole", role)
    secret = json.loads(plane.kubectl("get", "secret", "-n", "cred-helper",
                                      "cred-helper-ssh-ca", "-o", "json"))
    assert "OPENSSH PRIVATE KEY" in base64.b64decode(secret["data"]["ssh-ca"]).decode()
    assert (tmp_path / "ssh-ca.pub").read_text().startswith("ssh-ed25519 ")



def test_the_gateway_installed_as_its_page_says(admin, plane, tmp_path):
    """docs/ssh-gateway.md, "Running the gateway in the cluster": in a copy of the checkout's
    packaging (the host key is written beside the kustomization), the four lines as one shell
    runs them, after the base; the Deployment, its Secret and ConfigMap are then there."""
    import shutil

    shutil.copytree(ROOT / "packaging", tmp_path / "packaging")
    user_ca = tmp_path / "ssh_user_ca.pub"
    user_ca.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG8pXKf1i8dl2QmUJ2e1EelfQbVtJvTn"
                       "fIf1ZcQXoOdy ssh-user-ca\n")
    plane.kubectl("apply", "-k", str(ROOT / "packaging" / "kubernetes"))
    block = doccommands.block("docs/ssh-gateway.md", "Running the gateway in the cluster")
    assert len(block.runnable) == 4, block.runnable
    script = "\n".join(block.runnable)  # `cd` holds for the lines after it, as in a shell
    done = doccommands.run(script, cwd=tmp_path, env=admin.env,
                           replace={"/path/to/ssh_user_ca.pub": str(user_ca)})
    assert done.returncode == 0, done.stderr
    plane.kubectl("get", "deployment", "-n", "cred-helper", "cred-helper-gateway")
    secrets = plane.kubectl("get", "secrets", "-n", "cred-helper", "-o", "name")
    assert "secret/cred-helper-gateway-host-key-" in secrets
    config = plane.kubectl("get", "configmaps", "-n", "cred-helper", "-o", "name")
    assert "configmap/cred-helper-gateway-user-ca-" in config
