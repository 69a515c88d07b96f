"""Real kubectl, through a kubeconfig exec entry, against the local API server."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.support.harness import assert_no_secrets, edit_entry

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"


@pytest.mark.parametrize("api_version", [V1, V1BETA1])
@pytest.mark.parametrize("key", ["ed25519", "p256"])
def test_kubectl_issues_once_then_serves_from_cache(sandbox, kubectl, key, api_version):
    kubeconfig = sandbox.kubeconfig(sandbox.base_args(f"--key={key}"), api_version=api_version)

    version = sandbox.kubectl(kubectl, kubeconfig, "get", "--raw", "/version")
    assert version.returncode == 0, version.stderr
    assert json.loads(version.stdout)["gitVersion"].startswith("v1.")
    assert sandbox.server.csr_creations == 1

    whoami = sandbox.kubectl(kubectl, kubeconfig, "auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    user = json.loads(whoami.stdout)["status"]["userInfo"]
    assert user["username"] == "alice@example.com"
    assert set(user["groups"]) == {"oncall", "sre", "system:authenticated"}
    assert sandbox.server.csr_creations == 1, "second kubectl must be served from the cache"

    (csr,) = sandbox.server.csrs.values()
    assert csr["spec"]["expirationSeconds"] == 1800
    assert csr["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client"
    request = x509.load_pem_x509_csr(base64.b64decode(csr["spec"]["request"]))
    expected = ed25519.Ed25519PublicKey if key == "ed25519" else ec.EllipticCurvePublicKey
    assert isinstance(request.public_key(), expected)
    assert_no_secrets(version.stderr + whoami.stderr, sandbox.token)


def _kubectl_while_an_approver_acts(sandbox, kubectl, verb: str):
    """kubectl through cred-helper while `kubectl certificate VERB` runs on its CSR, a moment
    after it appears (long enough for cred-helper to say whom to ask)."""
    sandbox.server.auto_approve = None
    kubeconfig = sandbox.kubeconfig(sandbox.base_args())
    admin = sandbox.admin_kubeconfig()
    acted = {}

    def approver():
        name = sandbox.server.wait_for_csr(timeout=30)
        time.sleep(2.5)
        acted["result"] = sandbox.kubectl(kubectl, admin, "certificate", verb, name)

    thread = threading.Thread(target=approver)
    thread.start()
    result = sandbox.kubectl(kubectl, kubeconfig, "get", "--raw", "/version")
    thread.join()
    assert acted["result"].returncode == 0, acted["result"].stderr
    return result


def test_csr_approved_by_concurrent_kubectl_certificate_approve(sandbox, kubectl):
    result = _kubectl_while_an_approver_acts(sandbox, kubectl, "approve")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("kubectl certificate approve cred-helper-alice") == 1
    (csr,) = sandbox.server.csrs.values()
    assert [c["reason"] for c in csr["status"]["conditions"]] == ["KubectlApprove"]


def test_denied_csr_fails_with_the_reason(sandbox, kubectl):
    result = _kubectl_while_an_approver_acts(sandbox, kubectl, "deny")
    assert result.returncode != 0
    assert "was denied: KubectlDeny" in result.stderr
    assert not list(sandbox.cache_dir.glob("*.json")), "a denied CSR caches nothing"


def test_approval_timeout(sandbox, kubectl):
    sandbox.server.auto_approve = None
    kubeconfig = sandbox.kubeconfig(sandbox.base_args("--approval-timeout=3s"))
    result = sandbox.kubectl(kubectl, kubeconfig, "get", "--raw", "/version")
    assert result.returncode != 0
    assert "was not approved within 3s" in result.stderr
    assert "kubectl certificate approve cred-helper-alice" in result.stderr


def _age_entry(sandbox, seconds: float) -> None:
    (path,) = sandbox.cache_dir.glob("*.json")
    edit_entry(path, lambda doc: doc.update(issued_at=doc["issued_at"] - seconds))


def _issue_then_reject(sandbox, kubectl):
    """One kubectl gets a certificate; then the server stops accepting it (401)."""
    kubeconfig = sandbox.kubeconfig(sandbox.base_args())
    assert sandbox.kubectl(kubectl, kubeconfig, "get", "--raw", "/version").returncode == 0
    (csr,) = sandbox.server.csrs.values()
    cert = x509.load_pem_x509_certificate(base64.b64decode(csr["status"]["certificate"]))
    sandbox.server.revoked_serials.add(cert.serial_number)
    return kubeconfig


def test_rejected_certificate_is_replaced(sandbox, kubectl):
    kubeconfig = _issue_then_reject(sandbox, kubectl)
    _age_entry(sandbox, 120)  # past the once-a-minute limit on re-issuing

    # client-go runs the plugin again in the same process after the 401, and still fails
    # this command; the plugin must issue a new certificate rather than serve the old one.
    rejected = sandbox.kubectl(kubectl, kubeconfig, "get", "--raw", "/version")
    assert rejected.returncode != 0
    assert sandbox.server.csr_creations == 2

    after = sandbox.kubectl(kubectl, kubeconfig, "get", "--raw", "/version")
    assert after.returncode == 0, after.stderr
    assert sandbox.server.csr_creations == 2


def test_rejection_soon_after_issuance_does_not_loop(sandbox, kubectl):
    kubeconfig = _issue_then_reject(sandbox, kubectl)
    assert sandbox.kubectl(kubectl, kubeconfig, "get", "--raw", "/version").returncode != 0
    assert sandbox.server.csr_creations == 1, "issued under a minute ago: no new CSR yet"


def test_interactive_never(sandbox, kubectl):
    kubeconfig = sandbox.kubeconfig(sandbox.base_args(), interactive_mode="Never")
    for _ in range(2):
        result = sandbox.kubectl(kubectl, kubeconfig, "get", "--raw", "/version")
        assert result.returncode == 0, result.stderr
    assert sandbox.server.csr_creations == 1


def test_gcloud_dispatcher_version_switch_is_not_a_401(sandbox):
    """/usr/bin/kubectl (gcloud's dispatcher) runs the plugin, then execs kubectl.1.30 under
    the same PID and start time, which runs it again: that must be a cache hit, not a 401."""
    import os

    dispatcher = "/usr/bin/kubectl"
    if not os.path.exists("/usr/lib/google-cloud-sdk/bin/kubectl.1.30"):
        pytest.skip("no gcloud kubectl dispatcher on this machine")
    sandbox.server.minor = "30"
    kubeconfig = sandbox.kubeconfig(sandbox.base_args())
    result = sandbox.kubectl(dispatcher, kubeconfig, "get", "--raw", "/version")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["minor"] == "30"
    assert sandbox.server.csr_creations == 1
