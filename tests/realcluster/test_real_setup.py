"""`cred-helper setup` against the real control plane: then real kubectl (1.37) works with no
hand-editing; `--print-rbac --apply` (a server-side dry run, then apply) lets the on-call
group read pods in its namespace; kube-apiserver starts with the audit policy it writes."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest
import yaml

import tests.support.controlplane as controlplane_module
from cred_helper import rbac
from tests.realcluster.test_real_kubectl import pending_csrs
from tests.support.controlplane import ControlPlane
from tests.support.harness import BIN, CRED_HELPER, as_kubectl_would

pytestmark = pytest.mark.realcluster


def cred_helper(box, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(as_kubectl_would(CRED_HELPER, *args), env=dict(box.env, **(env or {})),
                          capture_output=True, text=True, timeout=120)


def kubectl_env(box) -> dict:
    return {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(box.root),
            **{k: v for k, v in box.env.items() if k.startswith("XDG_")}}


def kubectl_approving(box, plane, *args: str) -> subprocess.CompletedProcess:
    """Real kubectl as set up (the person's kubeconfig), while the admin approves its CSR."""
    proc = subprocess.Popen([plane.kubectl_path, *args], env=kubectl_env(box),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        found = pending_csrs(plane)
        if found:
            plane.kubectl("certificate", "approve", found[0]["metadata"]["name"])
            break
        time.sleep(0.2)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_setup_then_real_kubectl(box, control_plane):
    done = cred_helper(box, "setup", "--cluster=real", f"--server={control_plane.url}",
                       f"--certificate-authority={control_plane.dir / 'ca.crt'}",
                       "--issuer=csr", f"--bootstrap-token-file={box.token_file}",
                       "--command=cred-helper")
    assert done.returncode == 0, done.stderr
    assert "checked: the bootstrap identity is alice@example.com" in done.stderr
    out = kubectl_approving(box, control_plane, "--context=real", "auth", "whoami", "-o",
                            "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"]["userInfo"]["username"] == "alice@example.com"
    config = box.root / ".kube" / "config"
    before = config.read_bytes()
    again = cred_helper(box, "setup", "--cluster=real", f"--server={control_plane.url}",
                        f"--certificate-authority={control_plane.dir / 'ca.crt'}",
                        "--issuer=csr", f"--bootstrap-token-file={box.token_file}",
                        "--command=cred-helper")
    assert again.returncode == 0 and "nothing to change" in again.stderr
    assert config.read_bytes() == before


def test_a_kubeconfig_kubectl_137_wrote_keeps_every_entry(box, control_plane):
    """Issue 21's corpus, written and read back by kubectl 1.37 itself (go.yaml.in/yaml/v2
    v2.4.4): every entry as before, then setup's context used against kube-apiserver."""
    from tests.integration.test_kubeconfig_fidelity import assert_kept, kubectl_written, view

    kubectl = control_plane.kubectl_path
    config = box.root / ".kube" / "config"
    kubectl_written(kubectl, config, box.root)
    before = view(kubectl, config, box.root)
    done = cred_helper(box, "setup", "--cluster=real", f"--server={control_plane.url}",
                       f"--certificate-authority={control_plane.dir / 'ca.crt'}",
                       "--issuer=csr", f"--bootstrap-token-file={box.token_file}")
    assert done.returncode == 0, done.stderr
    assert_kept(before, view(kubectl, config, box.root),
                {"clusters": {"real"}, "users": {"cred-helper-real"}, "contexts": {"real"}})
    out = kubectl_approving(box, control_plane, "--context=real", "auth", "whoami", "-o",
                            "jsonpath={.status.userInfo.username}")
    assert out.returncode == 0 and out.stdout == "alice@example.com", out.stderr


def test_print_rbac_apply_lets_the_group_read_pods(box, control_plane):
    namespace = f"debug-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", namespace)
    admin = control_plane.dir / "admin.kubeconfig"
    policy = box.root / "audit.yaml"
    done = cred_helper(box, "setup", "--print-rbac", "--group=oncall",
                       f"--namespace={namespace}", "--bootstrap-group=oncall-bootstrap",
                       f"--audit-policy={policy}", "--apply",
                       f"--kubectl={control_plane.kubectl_path}",
                       env={"KUBECONFIG": str(admin)})
    assert done.returncode == 0, done.stderr
    assert "role.rbac.authorization.k8s.io/cred-helper-oncall-debug" in done.stderr
    assert policy.read_text() == rbac.audit_policy()
    assert "--audit-policy-file=" in done.stderr
    # as alice's certificate (groups oncall, sre, oncall-bootstrap) through cred-helper
    assert cred_helper(box, "setup", "--cluster=real", f"--server={control_plane.url}",
                       f"--certificate-authority={control_plane.dir / 'ca.crt'}",
                       "--issuer=csr", f"--bootstrap-token-file={box.token_file}"
                       ).returncode == 0
    out = kubectl_approving(box, control_plane, "--context=real", "get", "pods", "-n",
                            namespace)
    assert out.returncode == 0, out.stderr
    denied = subprocess.run([control_plane.kubectl_path, "--context=real", "get", "pods",
                             "-n", "default"], env=kubectl_env(box), capture_output=True,
                            text=True, timeout=60)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    can = subprocess.run([control_plane.kubectl_path, "--context=real", "auth", "can-i",
                          "create", "pods", "--subresource=exec", "-n", namespace],
                         env=kubectl_env(box), capture_output=True, text=True, timeout=60)
    assert can.stdout.strip() == "yes", can.stderr


def test_a_failing_dry_run_applies_nothing(box, control_plane):
    namespace = f"missing-{uuid.uuid4().hex[:8]}"  # no such namespace: the dry run fails
    admin = control_plane.dir / "admin.kubeconfig"
    control_plane.kubectl("get", "ns")  # makes the admin kubeconfig
    done = cred_helper(box, "setup", "--print-rbac", f"--namespace={namespace}",
                       f"--audit-policy={box.root / 'audit.yaml'}", "--apply",
                       f"--kubectl={control_plane.kubectl_path}",
                       env={"KUBECONFIG": str(admin)})
    assert done.returncode == 1
    assert "server-side dry run" in done.stderr and "were not applied" in done.stderr
    roles = json.loads(control_plane.kubectl("get", "rolebindings", "-A", "-o", "json"))
    assert not [r for r in roles["items"] if r["metadata"]["namespace"] == namespace]


def test_kube_apiserver_starts_with_the_audit_policy(control_plane_bin, monkeypatch):
    policy = rbac.audit_policy()
    assert yaml.safe_load(policy)["kind"] == "Policy"
    monkeypatch.setattr(controlplane_module, "AUDIT_POLICY", policy)
    with ControlPlane(control_plane_bin) as plane:
        assert (plane.dir / "audit-policy.yaml").read_text() == policy
        plane.kubectl("get", "--raw", "/readyz")
