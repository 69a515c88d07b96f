"""packaging/kubernetes/gateway/ against the real kube-apiserver: the kustomization (with the two
site files it asks for) passes a server-side dry run, the pod passes the `restricted` Pod
Security level, and the ServiceAccount's RBAC is what the README says: read access requests,
impersonate users and the listed groups, and only for the gateway's own requests."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from cred_helper.errors import ServerError
from cred_helper.gateway.streams import StreamError
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


def as_someone(plane, user: str, token: str, groups: tuple[str, ...] = ()) -> KubeClient:
    """The gateway's token (a stolen one: nothing of the gateway's code in between) acting
    as USER."""
    headers = (("Impersonate-User", user), *(("Impersonate-Group", g) for g in groups))
    return KubeClient(Endpoint(plane.url, plane.ca.cert_pem), BearerAuth(token),
                      extra_headers=headers)


async def exec_as(plane, token: str, user: str, namespace: str, pod: str,
                  argv: list[str], groups: tuple[str, ...] = ()) -> bytes:
    """An exec over WebSocket (as the gateway speaks it) with the token, as USER: stdout."""
    from cred_helper.gateway import streams

    target = streams.Target(Endpoint(plane.url, plane.ca.cert_pem), BearerAuth(token),
                            (("Impersonate-User", user),
                             *(("Impersonate-Group", g) for g in groups)))
    ws = await streams.open_stream(target, f"/api/v1/namespaces/{namespace}/pods/{pod}/exec",
                                   streams.exec_query("", argv, False), streams.EXEC_PROTOCOL)
    out = b""
    try:
        async for message in streams.messages(ws):
            if message[:1] == bytes([streams.STDOUT]):
                out += message[1:]
    finally:
        await ws.close()
    return out


def test_what_a_stolen_token_can_do_with_the_shipped_bindings(installed):
    """Said plainly in the README: whoever holds the gateway's token lists every pod of the
    cluster, specs and all (environment values included), as the built-in users
    system:kube-scheduler and system:kube-controller-manager, whose bootstrap roles list pods
    everywhere; and execs, reads logs and port-forwards wherever a user name (not a group)
    is bound to allow it. It acts as no ServiceAccount, no node, no group beyond those listed."""
    token = gw.gateway_token(installed)
    for user in ("system:kube-scheduler", "system:kube-controller-manager"):
        pods = as_someone(installed, user, token).get("/api/v1/pods")["items"]
        assert {p["metadata"]["namespace"] for p in pods} >= {"payments", "ledger"}
    # A site that binds cluster-admin to a user name (not a group): exec anywhere as them.
    installed.kubectl("create", "clusterrolebinding", "stolen-token-admin",
                      "--clusterrole=cluster-admin", "--user=platform-admin@example.com")
    try:
        out = asyncio.run(exec_as(installed, token, "platform-admin@example.com", "ledger",
                                  "ledger-0", ["echo", "in ledger"]))
        assert out == b"in ledger\n"
        # Never more than the gateway's kinds of request, even as cluster-admin.
        with pytest.raises(ServerError) as caught:
            as_someone(installed, "platform-admin@example.com", token).get(
                "/api/v1/namespaces/ledger/secrets")
        assert caught.value.status == 403
    finally:
        installed.kubectl("delete", "clusterrolebinding", "stolen-token-admin")
    for user, says in [("system:serviceaccount:kube-system:default",
                        "impersonate-on:serviceaccount:list"),
                       ("system:node:node-1", "impersonate-on:arbitrary-node:list")]:
        with pytest.raises(ServerError) as caught:
            as_someone(installed, user, token).get("/api/v1/pods")
        assert caught.value.status == 403 and says in caught.value.status_message


def test_the_as_people_role_bound_per_namespace_keeps_a_stolen_token_there(installed):
    """The README's narrowing: the shipped ClusterRoles, the as-people one bound by a
    RoleBinding in payments alone (here for a second ServiceAccount, so the shared gateway
    keeps its bindings). Its token still does the gateway's work in payments, and nothing
    anywhere else, whoever it acts as."""
    docs = gw.yaml_objects(gw.GATEWAY_MANIFESTS / "rbac.yaml")
    roles = {d["metadata"]["name"] for d in docs if d["kind"] == "ClusterRole"}
    assert roles == {"cred-helper-gateway", "cred-helper-gateway-as-people"}
    sa = "gateway-narrow"
    installed.kubectl("create", "serviceaccount", "-n", "cred-helper", sa)
    installed.kubectl("create", "clusterrolebinding", sa, "--clusterrole=cred-helper-gateway",
                      f"--serviceaccount=cred-helper:{sa}")
    installed.kubectl("create", "rolebinding", sa, "-n", "payments",
                      "--clusterrole=cred-helper-gateway-as-people",
                      f"--serviceaccount=cred-helper:{sa}")
    installed.kubectl("create", "clusterrolebinding", "narrow-token-admin",
                      "--clusterrole=cluster-admin", "--user=platform-admin@example.com")
    try:
        token = installed.kubectl("create", "token", "-n", "cred-helper", sa).strip()
        # The gateway's work, as alice, in payments.
        alice = as_someone(installed, "alice@example.com", token,
                           ("oncall", "system:authenticated"))
        assert alice.get("/api/v1/namespaces/payments/pods")["items"]
        assert asyncio.run(exec_as(installed, token, "alice@example.com", "payments",
                                   "api-1", ["echo", "hi"],
                                   ("oncall", "system:authenticated"))) == b"hi\n"
        # Nothing at cluster scope or in another namespace, as anyone.
        for user, path in [("system:kube-scheduler", "/api/v1/pods"),
                           ("system:kube-scheduler", "/api/v1/namespaces/ledger/pods"),
                           ("platform-admin@example.com", "/api/v1/namespaces/ledger/pods")]:
            with pytest.raises(ServerError) as caught:
                as_someone(installed, user, token).get(path)
            assert caught.value.status == 403
            assert "impersonate-on:user-info:list" in caught.value.status_message
        with pytest.raises(StreamError) as refused:
            asyncio.run(exec_as(installed, token, "platform-admin@example.com", "ledger",
                                "ledger-0", ["echo", "in ledger"]))
        assert refused.value.status == 403
    finally:
        installed.kubectl("delete", "clusterrolebinding", "narrow-token-admin")
