"""Real kubectl, through cred-helper, against a real kube-apiserver whose real
kube-controller-manager signs the certificates: what only the real thing settles."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Collection

import pytest
from cryptography import x509

pytestmark = pytest.mark.realcluster


def csr_names(plane) -> set[str]:
    return {c["metadata"]["name"] for c in
            json.loads(plane.kubectl("get", "csr", "-o", "json"))["items"]}


def pending_csrs(plane, ignore: Collection[str] = ()) -> list[dict]:
    """alice's pending CSRs, less those named in `ignore`: the session's plane is shared, and
    a CSR another test left pending must not be taken for this test's."""
    items = json.loads(plane.kubectl("get", "csr", "-o", "json"))["items"]
    return [c for c in items if not (c.get("status") or {}).get("conditions")
            and c["spec"].get("username") == "alice@example.com"
            and c["metadata"]["name"] not in ignore]


def run_approving(box, plane, kubeconfig, *args, decide: str = "approve",
                  timeout: float = 60) -> tuple[subprocess.CompletedProcess, dict]:
    """Run real kubectl while the admin approves (or denies) the CSR it makes."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(box.root),
           "KUBECONFIG": str(kubeconfig)}
    before = csr_names(plane)
    proc = subprocess.Popen([plane.kubectl_path, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    csr = None
    while csr is None and time.monotonic() < deadline and proc.poll() is None:
        found = pending_csrs(plane, before)
        csr = found[0] if found else None
        time.sleep(0.2)
    assert csr is not None, proc.communicate()
    plane.kubectl("certificate", decide, csr["metadata"]["name"])
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), csr


@pytest.mark.parametrize("key", ["ed25519", "p256"])
def test_a_certificate_from_the_real_signer_names_the_person(box, control_plane, key):
    kubeconfig = box.kubeconfig(box.base_args(f"--key={key}"))
    done, csr = run_approving(box, control_plane, kubeconfig, "auth", "whoami", "-o", "json")
    assert done.returncode == 0, done.stderr
    user = json.loads(done.stdout)["status"]["userInfo"]
    assert user["username"] == "alice@example.com"
    assert {"oncall", "sre", "oncall-bootstrap"} <= set(user["groups"])

    signed = json.loads(control_plane.kubectl("get", "csr", csr["metadata"]["name"], "-o",
                                              "json"))
    cert = x509.load_pem_x509_certificate(base64.b64decode(signed["status"]["certificate"]))
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    # kcm backdates NotBefore by 5 minutes and honours expirationSeconds (30m here).
    assert 34 * 60 <= lifetime.total_seconds() <= 36 * 60

    # Served from the cache: no second CSR.
    before = csr_names(control_plane)
    again = box.kubectl(control_plane.kubectl_path, kubeconfig, "auth", "whoami")
    assert again.returncode == 0, again.stderr
    assert csr_names(control_plane) == before


def test_a_denied_csr_says_why(box, control_plane):
    kubeconfig = box.kubeconfig(box.base_args("--cache=none"))
    done, _ = run_approving(box, control_plane, kubeconfig, "get", "--raw", "/version",
                            decide="deny")
    assert done.returncode != 0
    assert "was denied" in done.stderr


ONCALL_RBAC = """
apiVersion: v1
kind: Namespace
metadata: {name: debug}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: oncall-read-pods, namespace: debug}
rules:
- {apiGroups: [""], resources: ["pods", "pods/log"], verbs: ["get", "list", "watch"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: oncall-read-pods, namespace: debug}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: oncall-read-pods}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: oncall}
"""


def test_oncall_rbac_applies_to_the_certificates_groups(box, control_plane):
    control_plane.kubectl("apply", "-f", "-", stdin=ONCALL_RBAC)
    kubeconfig = box.kubeconfig(box.base_args())
    done, _ = run_approving(box, control_plane, kubeconfig, "get", "pods", "-n", "debug")
    assert done.returncode == 0, done.stderr
    secrets = box.kubectl(control_plane.kubectl_path, kubeconfig, "get", "secrets", "-n",
                          "debug")
    assert secrets.returncode != 0 and "forbidden" in secrets.stderr.lower()
    assert 'User "alice@example.com" cannot list resource "secrets"' in secrets.stderr


def test_sixteen_cold_kubectl_commands_make_one_csr(box, control_plane):
    before = csr_names(control_plane)
    kubeconfig = box.kubeconfig(box.base_args())
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(box.root),
           "KUBECONFIG": str(kubeconfig)}
    procs = [subprocess.Popen([control_plane.kubectl_path, "get", "--raw", "/version"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL) for _ in range(16)]
    deadline = time.monotonic() + 60
    while not pending_csrs(control_plane, before) and time.monotonic() < deadline:
        time.sleep(0.2)
    (csr,) = pending_csrs(control_plane, before)
    control_plane.kubectl("certificate", "approve", csr["metadata"]["name"])
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert json.loads(out)["gitVersion"] == "v1.37.2"
    assert len(csr_names(control_plane) - before) == 1
