"""OIDC identities as the real kube-apiserver's own JWT authenticator maps them: the session's
OpenID provider (oidc-provider over https with a test CA) is trusted through the structured
authentication configuration (tests/support/controlplane.py, `authentication_config`), and
real kubectl runs cred-helper with its ID token, or with a certificate whose CSR that token
created."""

from __future__ import annotations

import base64
import json
import os
import threading
import time

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.support.harness import CRED_HELPER, Sandbox, as_kubectl_would, one_error
from tests.support.needs import missing
from tests.support.oidc_provider import device_login

pytestmark = pytest.mark.realcluster

SCOPES = ["--oidc-scope=openid", "--oidc-scope=email", "--oidc-scope=groups",
          "--oidc-scope=offline_access"]
OIDC_GROUPS = {"oncall", "sre", "system:authenticated"}

# The provider's people need the CSR requester role too; the plane binds it only to the static
# token's group (oncall-bootstrap). The names are prefix-free, so bind her group as it comes.
OIDC_REQUESTER = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: cred-helper-requester-oidc}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cred-helper-requester}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: oncall}
"""


@pytest.fixture
def plane(control_plane):
    if control_plane.oidc is None:
        missing("Node.js is missing: no OpenID provider for the real control plane")
    return control_plane


@pytest.fixture
def box(tmp_path, plane) -> Sandbox:
    os.chmod(tmp_path, 0o700)
    sandbox = Sandbox(tmp_path, plane, "")  # type: ignore[arg-type]
    sandbox.env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
                   "XDG_CACHE_HOME": str(tmp_path / "cache"),
                   "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return sandbox


def oidc_args(provider, *extra: str, client: str = "public") -> list[str]:
    return [f"--oidc-issuer-url={provider.issuer}", f"--oidc-client-id={client}",
            "--oidc-grant=device", f"--oidc-certificate-authority={provider.ca_file}",
            *SCOPES, *extra]


def login(box, provider, kubeconfig, args) -> str:
    """`cred-helper login` for kubectl's context; alice confirms the device code."""
    argv = as_kubectl_would(CRED_HELPER, "login", f"--kubeconfig={kubeconfig}",
                            "--context=test", *args)
    return device_login(argv, box.env, ca_file=provider.ca_file, timeout=120)


def whoami(box, plane, kubeconfig) -> dict:
    done = box.kubectl(plane.kubectl_path, kubeconfig, "auth", "whoami", "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["status"]["userInfo"]


def test_the_id_token_is_mapped_by_kube_apiservers_authenticator(box, plane, oidc_provider):
    args = ["--issuer=oidc", *oidc_args(oidc_provider)]
    kubeconfig = box.kubeconfig(args)
    assert "logged in as alice@example.com" in login(box, oidc_provider, kubeconfig, args)

    user = whoami(box, plane, kubeconfig)
    assert user["username"] == "alice@example.com"  # `email`, no prefix
    assert set(user["groups"]) == OIDC_GROUPS  # `groups`, no prefix; not oncall-bootstrap
    assert "extra" not in user, "a bearer ID token, not the certificate"


class Approver:
    """The admin, in the background: approves the first pending CSR whose requester is not the
    static bootstrap token's identity (that one carries oncall-bootstrap), and keeps it."""

    def __init__(self, plane) -> None:
        self.plane = plane
        self.csr: dict | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set() and self.csr is None:
            for csr in json.loads(self.plane.kubectl("get", "csr", "-o", "json"))["items"]:
                # Only a CSR this test made: the plane is shared, and others may be pending.
                if not (csr.get("status") or {}).get("conditions") \
                        and csr["metadata"]["name"] not in self.before \
                        and set(csr["spec"].get("groups", [])) == OIDC_GROUPS:
                    self.plane.kubectl("certificate", "approve", csr["metadata"]["name"])
                    self.csr = csr
                    return
            time.sleep(0.2)

    def __enter__(self) -> Approver:
        self.before = {c["metadata"]["name"] for c in
                       json.loads(self.plane.kubectl("get", "csr", "-o", "json"))["items"]}
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


def test_an_oidc_login_creates_the_csr_as_the_mapped_identity(box, plane, oidc_provider):
    plane.kubectl("apply", "-f", "-", stdin=OIDC_REQUESTER)
    args = ["--issuer=csr", "--bootstrap=oidc", "--ttl=30m", *oidc_args(oidc_provider)]
    kubeconfig = box.kubeconfig(args)
    with Approver(plane) as admin:
        said = login(box, oidc_provider, kubeconfig, args)
    # SelfSubjectReview, as kube-apiserver answered it for the ID token.
    assert "logged in as alice@example.com (oncall, sre)" in said, said
    assert admin.csr is not None, said

    # The CSR as the API server recorded it: the requester is the OIDC identity it mapped.
    csr = json.loads(plane.kubectl("get", "csr", admin.csr["metadata"]["name"], "-o", "json"))
    assert csr["spec"]["username"] == "alice@example.com"
    assert set(csr["spec"]["groups"]) == OIDC_GROUPS
    assert csr["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client"
    assert csr["status"].get("certificate"), "kcm signed it"
    assert "extra" not in csr["spec"] and "uid" not in csr["spec"], "no jti, no uid mapping"

    # kubectl now authenticates with the certificate: the identity is its subject (CN and O),
    # which carries the same name and groups, and kube-apiserver names the credential by the
    # certificate's SHA-256 (an ID token gets no such extra: it has no `jti`). No second CSR.
    user = whoami(box, plane, kubeconfig)
    assert user["username"] == "alice@example.com"
    assert set(user["groups"]) == OIDC_GROUPS
    cert = x509.load_pem_x509_certificate(base64.b64decode(csr["status"]["certificate"]))
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    assert user["extra"] == {"authentication.kubernetes.io/credential-id":
                             [f"X509SHA256={fingerprint}"]}
    names = [c["metadata"]["name"] for c in
             json.loads(plane.kubectl("get", "csr", "-o", "json"))["items"]
             if set(c["spec"].get("groups", [])) == OIDC_GROUPS]
    assert names == [admin.csr["metadata"]["name"]], names


def test_a_token_for_another_audience_is_refused(box, plane, oidc_provider):
    """An ID token the provider issued to a client kube-apiserver does not list as an audience:
    the provider's signature is good, the audience is not."""
    secret = box.root / "client.secret"
    secret.write_text("s3cret-basic\n")
    secret.chmod(0o600)
    provider = oidc_args(oidc_provider, f"--oidc-client-secret-file={secret}",
                         client="confidential")
    args = ["--issuer=oidc", *provider]
    kubeconfig = box.kubeconfig(args)
    assert "logged in as alice@example.com" in login(box, oidc_provider, kubeconfig, args)

    # kube-apiserver answers 401 with a bare Status; the reason is only in its log.
    got = box.run("get", *args, exec_info=box.exec_info())
    assert got.returncode == 0, got.stderr
    token = json.loads(got.stdout)["status"]["token"]
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == "confidential"
    answer = requests.post(
        plane.url + "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        headers={"Authorization": f"Bearer {token}"}, verify=str(plane.dir / "ca.crt"),
        timeout=30)
    assert answer.status_code == 401
    assert {k: answer.json().get(k) for k in ("status", "reason", "message", "code")} == {
        "status": "Failure", "reason": "Unauthorized", "message": "Unauthorized", "code": 401}
    assert 'oidc: expected audience \\"public\\" got [\\"confidential\\"]' \
        in plane.log("kube-apiserver")

    # Through kubectl (cred-helper serves the token, client-go runs it again on the 401 and gets
    # the same one within a minute of issuance): kubectl's own line, nothing from cred-helper.
    done = box.kubectl(plane.kubectl_path, kubeconfig, "get", "--raw", "/version")
    assert done.returncode == 1
    assert done.stderr == "error: You must be logged in to the server (Unauthorized)\n"

    # As the CSR bootstrap, cred-helper's SelfSubjectReview meets the 401 and says so; no CSR.
    before = len(json.loads(plane.kubectl("get", "csr", "-o", "json"))["items"])
    bootstrap = ["--issuer=csr", "--bootstrap=oidc", "--ttl=30m", *provider]
    kubeconfig = box.kubeconfig(bootstrap, name="bootstrap.kubeconfig")
    argv = as_kubectl_would(CRED_HELPER, "login", f"--kubeconfig={kubeconfig}",
                            "--context=test", *bootstrap)
    said = device_login(argv, box.env, ca_file=oidc_provider.ca_file, timeout=120, check=False)
    error = one_error(said.split("\n", 1)[1])  # after the device-code line
    assert error == (f"cred-helper: error: the API server at {plane.url} did not accept the "
                     "OIDC login of alice@example.com (401 Unauthorized)")
    assert "JWT authenticator (issuer URL, audience = --oidc-client-id" in said
    assert "bootstrap token" not in said
    assert len(json.loads(plane.kubectl("get", "csr", "-o", "json"))["items"]) == before


def test_an_unverified_email_is_no_name(box, plane, oidc_provider):
    """carol's `email_verified` is false: the provider signs her token for the right audience,
    and kube-apiserver still refuses it."""
    args = ["--issuer=oidc", *oidc_args(oidc_provider)]
    kubeconfig = box.kubeconfig(args)
    argv = as_kubectl_would(CRED_HELPER, "login", f"--kubeconfig={kubeconfig}",
                            "--context=test", *args)
    said = device_login(argv, box.env, person="carol", ca_file=oidc_provider.ca_file,
                        timeout=120)
    assert "logged in as carol@example.com" in said
    done = box.kubectl(plane.kubectl_path, kubeconfig, "auth", "whoami")
    assert done.returncode == 1
    assert done.stderr == "error: You must be logged in to the server (Unauthorized)\n"
    # The authenticator's own rule for a `claim: email` mapping, before the plane's claim rule.
    assert "oidc: email not verified" in plane.log("kube-apiserver")
