"""Real kubectl with OIDC: the local API server trusts the real OpenID provider (as
kube-apiserver's --oidc-* flags would), and cred-helper gets the token, or a certificate whose
CSR the OIDC login created."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.support.apiserver import OIDCAuthenticator
from tests.support.harness import CRED_HELPER, as_kubectl_would, edit_entry
from tests.support.needs import needs
from tests.support.oidc_provider import OIDCProvider, provider_clients

pytestmark = needs(bool(shutil.which("node")), "needs Node.js")
BROWSER = f"{sys.executable} {Path(__file__).parents[1] / 'support' / 'browser_command.py'} %s"
SCOPES = ["--oidc-scope=openid", "--oidc-scope=email", "--oidc-scope=groups",
          "--oidc-scope=offline_access"]


@pytest.fixture(scope="module")
def provider():
    with OIDCProvider(provider_clients()) as op:
        yield op


def _login(sandbox, kubeconfig, args):
    """`cred-helper login` for kubectl's context; the scripted browser signs alice in."""
    env = dict(sandbox.env, BROWSER=BROWSER)
    result = subprocess.run(as_kubectl_would(CRED_HELPER, "login", f"--kubeconfig={kubeconfig}",
                                             "--context=test", *args),
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stderr


def _expire(sandbox) -> None:
    (entry,) = sandbox.cache_dir.glob("*.json")
    edit_entry(entry, lambda doc: doc.update(not_after=time.time() - 1))  # expired


def _whoami(sandbox, kubectl, kubeconfig) -> dict:
    result = sandbox.kubectl(kubectl, kubeconfig, "auth", "whoami", "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["status"]["userInfo"]


def test_kubectl_with_the_providers_id_token(sandbox, kubectl, provider):
    sandbox.server.oidc = OIDCAuthenticator(provider.issuer, "public")
    args = ["--issuer=oidc", f"--oidc-issuer-url={provider.issuer}", "--oidc-client-id=public",
            *SCOPES]
    kubeconfig = sandbox.kubeconfig(args)

    before = sandbox.kubectl(kubectl, kubeconfig, "get", "--raw", "/version")
    assert before.returncode != 0, "no terminal and no login yet: no prompt, a hint"
    assert "run `cred-helper login` with the exec entry's arguments in a terminal first" \
        in before.stderr

    assert "logged in as alice@example.com" in _login(sandbox, kubeconfig, args)
    user = _whoami(sandbox, kubectl, kubeconfig)
    assert user["username"] == "alice@example.com"
    assert set(user["groups"]) == {"oncall", "sre", "system:authenticated"}

    _expire(sandbox)
    grants = len(provider.grants)
    assert _whoami(sandbox, kubectl, kubeconfig)["username"] == "alice@example.com"
    assert provider.grants[grants:] == ["refresh_token"], "kubectl refreshed without a person"


def test_oidc_login_bootstraps_certificates(sandbox, kubectl, provider):
    sandbox.server.oidc = OIDCAuthenticator(provider.issuer, "public")
    args = ["--issuer=csr", "--bootstrap=oidc", f"--oidc-issuer-url={provider.issuer}",
            "--oidc-client-id=public", *SCOPES]
    kubeconfig = sandbox.kubeconfig(args)
    assert "logged in as alice@example.com (oncall, sre)" in _login(sandbox, kubeconfig, args)
    assert sandbox.server.csr_creations == 1

    user = _whoami(sandbox, kubectl, kubeconfig)
    assert user["username"] == "alice@example.com"
    assert set(user["groups"]) == {"oncall", "sre", "system:authenticated"}
    assert sandbox.server.csr_creations == 1, "kubectl used the certificate login made"
    (csr,) = sandbox.server.csrs.values()
    assert csr["spec"]["username"] == "alice@example.com", "the OIDC login created the CSR"
    cert = x509.load_pem_x509_certificate(base64.b64decode(csr["status"]["certificate"]))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        "alice@example.com"

    # The certificate's time is up: kubectl (no terminal) gets the next one with the refresh
    # token, with no person involved.
    _expire(sandbox)
    grants = len(provider.grants)
    assert _whoami(sandbox, kubectl, kubeconfig)["username"] == "alice@example.com"
    assert sandbox.server.csr_creations == 2
    assert provider.grants[grants:] == ["refresh_token"]
