"""packaging/kubernetes/gateway/ against the real kube-apiserver: the kustomization (with the two
site files it asks for) passes a server-side dry run, the pod passes the `restricted` Pod
Security level, and the ServiceAccount's RBAC is what the README says: read access requests,
impersonate users and the listed groups, and only for the gateway's own requests."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from cred_helper.errors import ServerError
from cred_helper.kube import BearerAuth, Endpoint, KubeClient
from tests.realcluster.test_approver_packaging import can_i
from tests.support import gateway as gw

pytestmark = pytest.mark.realcluster


@pytest.fixture(scope="module")
def installed(gateway_world):
    return gateway_world.plane


@pytest.fixture
def site_copy(tmp_path):
    """The kustomization with the files a site puts beside it."""
    copy = tmp_path / "gateway"
    shutil.copytree(gw.GATEWAY_MANIFESTS, copy)
    key = ed25519.Ed25519PrivateKey.generate()
    (copy / "ssh_host_ed25519_key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()))
    (copy / "user_ca.pub").write_text(gw.UserCA().public_line + "\n")
    return copy


def test_the_kustomization_passes_a_server_side_dry_run(installed, site_copy):
    out = installed.kubectl("apply", "--dry-run=server", "-k", str(site_copy))
    for kind in ("serviceaccount/cred-helper-gateway",
                 "clusterrole.rbac.authorization.k8s.io/cred-helper-gateway",
                 "clusterrolebinding.rbac.authorization.k8s.io/cred-helper-gateway",
                 "secret/cred-helper-gateway-host-key-", "configmap/cred-helper-gateway-user-ca-",
                 "persistentvolumeclaim/cred-helper-gateway-recordings",
                 "service/cred-helper-gateway", "deployment.apps/cred-helper-gateway"):
        assert kind in out, out
    built = subprocess.run([installed.kubectl_path, "kustomize", str(site_copy)],
                           capture_output=True, text=True, check=True).stdout
    docs = {d["kind"]: d for d in yaml.safe_load_all(built)}
    deployment = docs["Deployment"]["spec"]
    assert deployment["replicas"] == 2
    pod = deployment["template"]["spec"]
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # kustomize points the volumes at the generated (hashed) names.
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["host-key"]["secret"]["secretName"] == docs["Secret"]["metadata"]["name"]
    assert volumes["user-ca"]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]


def test_the_pod_passes_the_restricted_pod_security_level(installed, site_copy):
    ns = gw.namespace(installed, "gateway-restricted", oncall_group=None)
    installed.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    built = subprocess.run([installed.kubectl_path, "kustomize", str(site_copy)],
                           capture_output=True, text=True, check=True).stdout
    template = next(d for d in yaml.safe_load_all(built)
                    if d["kind"] == "Deployment")["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "gateway", "namespace": ns, **template["metadata"]},
           "spec": {**template["spec"], "serviceAccountName": "default"}}
    done = subprocess.run([installed.kubectl_path, f"--kubeconfig={installed.dir}/"
                           "admin.kubeconfig", "create", "--dry-run=server", "-f", "-"],
                          input=json.dumps(pod), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "PodSecurity" not in done.stderr
    # The same pod as root is refused there: the check is real.
    pod["spec"]["securityContext"] = {**pod["spec"]["securityContext"], "runAsNonRoot": False,
                                      "runAsUser": 0}
    done = subprocess.run([installed.kubectl_path, f"--kubeconfig={installed.dir}/"
                           "admin.kubeconfig", "create", "--dry-run=server", "-f", "-"],
                          input=json.dumps(pod), capture_output=True, text=True)
    assert done.returncode == 1 and 'violates PodSecurity "restricted' in done.stderr


AUTHN = "authentication.k8s.io"
AR = "access.cred-helper.dev"


@pytest.mark.parametrize(("verb", "group", "resource", "name", "subresource", "allowed"), [
    ("get", AR, "accessrequests", "any", "", True),
    ("list", AR, "accessrequests", "", "", True),
    ("watch", AR, "accessrequests", "", "", True),
    ("update", AR, "accessrequests", "any", "status", False),
    ("delete", AR, "accessrequests", "any", "", False),
    ("impersonate:user-info", AUTHN, "users", "anyone@example.com", "", True),
    ("impersonate:user-info", AUTHN, "groups", "oncall", "", True),
    ("impersonate:user-info", AUTHN, "groups", "system:authenticated", "", True),
    ("impersonate:user-info", AUTHN, "groups", "system:masters", "", False),
    ("impersonate:user-info", AUTHN, "groups", "cluster-admins", "", False),
    ("impersonate:serviceaccount", AUTHN, "serviceaccounts", "any", "", False),
    ("impersonate", "", "users", "anyone@example.com", "", False),  # legacy, unconstrained
    ("impersonate", "", "groups", "oncall", "", False),
    ("impersonate-on:user-info:get", "", "pods", "", "exec", True),
    ("impersonate-on:user-info:create", "", "pods", "", "exec", True),
    ("impersonate-on:user-info:get", "", "pods", "", "portforward", True),
    ("impersonate-on:user-info:get", "", "pods", "", "log", True),
    ("impersonate-on:user-info:list", "", "pods", "", "", True),
    ("impersonate-on:user-info:delete", "", "pods", "", "", False),
    ("impersonate-on:user-info:get", "", "secrets", "", "", False),
    ("impersonate-on:user-info:patch", "", "pods", "", "ephemeralcontainers", False),
    ("impersonate-on:user-info:create", "", "pods", "", "attach", False),
    ("get", "", "secrets", "", "", False),
    ("create", "", "pods", "", "exec", False),  # as itself, nothing on pods
    ("list", "", "pods", "", "", False),
])
def test_rbac_is_what_the_readme_says(installed, verb, group, resource, name, subresource,
                                      allowed):
    namespace = "payments" if group == "" else ""
    assert can_i(installed, verb, f"{group}/{resource}" if group else resource, namespace,
                 name, subresource, user=gw.GATEWAY_SA) is allowed


@pytest.mark.parametrize(("group", "path", "says"), [
    ("system:masters", "/api/v1/namespaces/payments/pods",
     'cannot impersonate:user-info resource "groups"'),
    # A listed person, on something outside the gateway's request set.
    ("oncall", "/api/v1/namespaces/payments/secrets", "impersonate-on:user-info:list"),
])
def test_the_api_server_refuses_impersonation_outside_the_rbac(installed, group, path, says):
    client = KubeClient(Endpoint(installed.url, installed.ca.cert_pem),
                        BearerAuth(gw.gateway_token(installed)),
                        extra_headers=(("Impersonate-User", "alice@example.com"),
                                       ("Impersonate-Group", group)))
    with pytest.raises(ServerError) as caught:
        client.get(path)
    assert caught.value.status == 403 and says in caught.value.status_message
