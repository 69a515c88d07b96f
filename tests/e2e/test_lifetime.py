"""The lifetime test: an OpenID provider that issues 5-minute ID tokens (Keycloak's default)
for a 30-minute TTL. Freshness is judged from the token's real lifetime, so real kubectl runs
ten commands on one issuance instead of refreshing on every one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.apiserver import OIDCAuthenticator
from tests.support.harness import CRED_HELPER, as_kubectl_would
from tests.support.needs import needs
from tests.support.oidc_provider import OIDCProvider, provider_clients

pytestmark = needs(bool(shutil.which("node")), "needs Node.js")
BROWSER = f"{sys.executable} {Path(__file__).parents[1] / 'support' / 'browser_command.py'} %s"


def test_five_minute_tokens_serve_ten_kubectl_commands_with_one_issuance(sandbox, kubectl):
    with OIDCProvider(provider_clients(), lifetime=300) as provider:
        sandbox.server.oidc = OIDCAuthenticator(provider.issuer, "public")
        args = ["--issuer=oidc", "--ttl=30m", f"--oidc-issuer-url={provider.issuer}",
                "--oidc-client-id=public", "--oidc-scope=openid", "--oidc-scope=email",
                "--oidc-scope=groups", "--oidc-scope=offline_access"]
        kubeconfig = sandbox.kubeconfig(args)
        login = subprocess.run(
            as_kubectl_would(CRED_HELPER, "login", f"--kubeconfig={kubeconfig}",
                             "--context=test", *args),
            env=dict(sandbox.env, BROWSER=BROWSER), capture_output=True, text=True, timeout=60)
        assert login.returncode == 0, login.stderr
        assert provider.grants == ["authorization_code"]
        (entry,) = sandbox.cache_dir.glob("*.json")
        issued = json.loads(entry.read_text())
        assert 250 < issued["not_after"] - issued["issued_at"] <= 300, "a 5-minute token"

        tokens_before = provider.requests.count("POST /token")
        assert tokens_before >= 1, "the provider logs its token requests"
        for _ in range(10):
            result = sandbox.kubectl(kubectl, kubeconfig, "get", "--raw", "/version")
            assert result.returncode == 0, result.stderr
        assert provider.grants == ["authorization_code"], "no refresh, no second login"
        assert provider.requests.count("POST /token") == tokens_before
        assert json.loads(entry.read_text())["serial"] == issued["serial"]
