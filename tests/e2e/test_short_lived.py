"""60-second ID tokens from the tests' OpenID provider, through real kubectl and the local API
server that trusts that provider (issue 15): a short-lived credential is still a credential.
It is served (announced to kubectl a tenth of its life early, not refused as expired), renewed
with the refresh token inside its margin, and served with one warning while the provider is
down; expired with the provider down, the command fails."""

from __future__ import annotations

import datetime
import json
import shutil
import time
from pathlib import Path

from cred_helper.cache.entrydoc import unseal
from tests.support.apiserver import OIDCAuthenticator
from tests.support.harness import CRED_HELPER, as_kubectl_would, edit_entry, one_error
from tests.support.needs import needs
from tests.support.oidc_provider import OIDCProvider, device_login, provider_clients

pytestmark = needs(bool(shutil.which("node")), "needs Node.js")


def _entry(sandbox) -> tuple[Path, dict]:
    (path,) = sandbox.cache_dir.glob("*.json")
    return path, json.loads(unseal(path.read_bytes()))


def _into_the_margin(sandbox) -> None:
    """25 s left of its minute: inside the refresh margin (half of it), still valid."""
    path, _ = _entry(sandbox)
    now = time.time()
    edit_entry(path, lambda doc: doc.update(issued_at=now - 35, not_after=now + 25))


def _cred_helper_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith(("cred-helper:", "hint:"))]


def test_sixty_second_tokens(sandbox, kubectl):
    provider = OIDCProvider(provider_clients(), lifetime=60).start()
    try:
        sandbox.server.oidc = OIDCAuthenticator(provider.issuer, "public")
        args = ["--issuer=oidc", "--ttl=30m", f"--oidc-issuer-url={provider.issuer}",
                "--oidc-client-id=public", "--oidc-grant=device", "--oidc-scope=openid",
                "--oidc-scope=email", "--oidc-scope=groups", "--oidc-scope=offline_access"]
        kubeconfig = sandbox.kubeconfig(args)
        login = device_login(as_kubectl_would(CRED_HELPER, "login", f"--kubeconfig={kubeconfig}",
                                              "--context=test", *args), sandbox.env)
        assert "logged in as alice@example.com" in login and "expired" not in login
        _, issued = _entry(sandbox)
        assert 50 < issued["not_after"] - issued["issued_at"] <= 60, "a 60-second token"

        # Served, and kept: the next commands need no token request.
        tokens = provider.requests.count("POST /token")
        for _ in range(2):
            done = sandbox.kubectl(kubectl, kubeconfig, "auth", "whoami", "-o", "json")
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["status"]["userInfo"]["username"] == \
                "alice@example.com"
            assert _cred_helper_lines(done.stderr) == [], done.stderr
        assert provider.requests.count("POST /token") == tokens

        # kubectl is told it ends a tenth of its life early, not a whole minute (which would
        # be its start, or before).
        got = sandbox.run(*args, exec_info=sandbox.exec_info(interactive=False))
        assert got.returncode == 0, got.stderr
        told = datetime.datetime.fromisoformat(
            json.loads(got.stdout)["status"]["expirationTimestamp"].replace("Z", "+00:00"))
        _, entry = _entry(sandbox)
        assert entry["serial"] == issued["serial"], "the same token, not a new login"
        shave = entry["not_after"] - told.timestamp()
        assert 4 < shave <= 7, shave

        # Inside its margin: renewed with the refresh token, no person, no warning.
        _into_the_margin(sandbox)
        renewed = sandbox.kubectl(kubectl, kubeconfig, "get", "--raw", "/version")
        assert renewed.returncode == 0, renewed.stderr
        assert _cred_helper_lines(renewed.stderr) == [], renewed.stderr
        assert provider.grants == ["urn:ietf:params:oauth:grant-type:device_code",
                                   "refresh_token"]
        path, entry = _entry(sandbox)
        assert entry["serial"] != issued["serial"]
        token = entry["status"]["token"]

        # Inside its margin with the provider down: the still-valid token, one warning.
        _into_the_margin(sandbox)
    finally:
        provider.stop()
    down = sandbox.kubectl(kubectl, kubeconfig, "auth", "whoami", "-o", "json")
    assert down.returncode == 0, down.stderr
    assert json.loads(down.stdout)["status"]["userInfo"]["username"] == "alice@example.com"
    lines = _cred_helper_lines(down.stderr)
    assert len(lines) == 1, down.stderr
    assert lines[0].startswith("cred-helper: warning: could not renew the credential")
    assert provider.issuer.split("//")[1] in lines[0], "the warning names the provider"
    assert "serving the cached one until it expires" in lines[0]
    assert _entry(sandbox)[1]["status"]["token"] == token

    # Expired, the provider still down: renew or fail.
    edit_entry(path, lambda doc: doc.update(not_after=time.time() - 1))
    failed = sandbox.run(*args, exec_info=sandbox.exec_info(interactive=False))
    assert failed.returncode == 1 and failed.stdout == ""
    assert "could not renew" not in failed.stderr
    one_error(failed.stderr)
