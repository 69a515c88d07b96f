"""A user name longer than X.509's 64-byte common name, on the real control plane: Kubernetes
bounds no user name, kube-apiserver takes the CSR, kcm signs it with the name intact, and the
certificate authenticates as that name (DESIGN.md, "Names longer than X.509's 64
characters")."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from cred_helper.x509names import subject_of
from tests.support.controlplane import REQUESTER_RULES, role_and_binding

pytestmark = pytest.mark.realcluster

# An OIDC-style name with its issuer prefix, as an authenticator with `prefix` gives it.
NAME = "oidc:https://login.example.com/tenant#" + "0123456789" * 6 + "ab"
GROUP = "team-" + "x" * 250  # organisation names: no bound in X.509's code or Kubernetes
# An annotation value: free text up to the object's 256 KiB of annotations (a command-line
# argument holds at most 128 KiB).
REASON = "INC-42 café\t" + "r" * 100_000


def _pending_for(plane, username: str) -> dict | None:
    for csr in json.loads(plane.kubectl("get", "csr", "-o", "json"))["items"]:
        if csr["spec"].get("username") == username and not \
                (csr.get("status") or {}).get("conditions"):
            return csr
    return None


# Rights of its own, for this user by name: the session's plane is shared, and another test
# may have rebound the requester role (`setup --apply`).
RBAC = role_and_binding("long-name-requester", REQUESTER_RULES, "User", NAME)


def test_a_100_character_user_name_is_issued_and_authenticates(box, control_plane):
    assert len(NAME) == 100
    control_plane.kubectl("apply", "-f", "-", stdin=RBAC)
    # The bootstrap identity: a client certificate of the plane's client CA naming the person
    # (in the group the requester RBAC binds).
    cert, key = control_plane.client_ca.client_cert(NAME, ["oncall-bootstrap", GROUP])
    boot = control_plane.write_kubeconfig(box.root / "boot.kubeconfig", {
        "client-certificate-data": base64.b64encode(cert).decode(),
        "client-key-data": base64.b64encode(key).decode()})
    kubeconfig = box.kubeconfig(["--issuer=csr", "--ttl=30m",
                                 f"--bootstrap-kubeconfig={boot}", f"--reason={REASON}"])
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(box.root),
           "KUBECONFIG": str(kubeconfig)}
    kubectl = subprocess.Popen([control_plane.kubectl_path, "auth", "whoami", "-o", "json"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    csr = None
    while csr is None and time.monotonic() < deadline and kubectl.poll() is None:
        csr = _pending_for(control_plane, NAME)
        time.sleep(0.2)
    assert csr is not None, kubectl.communicate()
    control_plane.kubectl("certificate", "approve", csr["metadata"]["name"])
    out, err = kubectl.communicate(timeout=60)

    assert kubectl.returncode == 0, err
    assert "Warning" not in err and "UserWarning" not in err, err
    user = json.loads(out)["status"]["userInfo"]
    assert user["username"] == NAME  # authenticated by the certificate kcm signed
    assert {"oncall-bootstrap", GROUP} <= set(user["groups"])
    signed = json.loads(control_plane.kubectl("get", "csr", csr["metadata"]["name"], "-o",
                                              "json"))
    issued = x509.load_pem_x509_certificate(base64.b64decode(signed["status"]["certificate"]))
    assert [a.value for a in subject_of(issued).get_attributes_for_oid(
        NameOID.COMMON_NAME)] == [NAME]
    assert {a.value for a in subject_of(issued).get_attributes_for_oid(
        NameOID.ORGANIZATION_NAME)} == {"oncall-bootstrap", GROUP}
    # The name of the CSR itself stays a DNS subdomain, whatever the user's name.
    assert len(csr["metadata"]["name"]) <= 253
    assert signed["metadata"]["annotations"]["cred-helper/reason"] == REASON
