"""`--oidc-client-auth private-key-jwt --oidc-client-key pkcs11:...`: the real OpenID provider
accepts a client assertion signed on the token (SoftHSM2)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.support.harness import CRED_HELPER, as_kubectl_would, one_error
from tests.support.needs import needs
from tests.support.oidc_provider import OIDCProvider
from tests.support.softhsm import MODULE, USER_PIN, SoftHSM, available, spy_module

pytestmark = [
    needs(available(), "softhsm2 is installed by scripts/setup"),
    needs(bool(shutil.which("node")), "needs Node.js"),
]


def _run(hsm, *args, env_extra=None, module=MODULE):
    env = {"PATH": os.environ["PATH"], "HOME": str(hsm.root), "PIN": USER_PIN,
           "XDG_CACHE_HOME": str(hsm.root / "cache"), **hsm.env, **(env_extra or {})}
    return subprocess.run(as_kubectl_would(CRED_HELPER, *args, f"--pkcs11-module={module}"),
                          env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("kind", ["p256", "ed25519", "rsa2048"])
def test_provider_accepts_an_assertion_signed_on_the_token(tmp_path, kind):
    hsm = SoftHSM(tmp_path / "hsm")
    hsm.new_token("ci")
    uri = _run(hsm, "keys", "generate", "pkcs11:token=ci;object=robot", f"--type={kind}",
               "--pin-source=env:PIN").stdout.strip()
    jwk = json.loads(_run(hsm, "keys", "public", uri, "--format=jwk").stdout)
    client = {"client_id": "robot", "token_endpoint_auth_method": "private_key_jwt",
              "jwks": {"keys": [jwk]}, "grant_types": ["client_credentials"],
              "response_types": [], "redirect_uris": []}
    args = ["--issuer=oidc", "--oidc-client-id=robot", "--oidc-grant=client-credentials",
            "--oidc-use-access-token", f"--oidc-client-key={uri}", "--pin-source=env:PIN"]
    spy = spy_module()
    with OIDCProvider([client]) as provider:
        got = _run(hsm, f"--oidc-issuer-url={provider.issuer}", *args,
                   env_extra=hsm.spy_env() if spy else None, module=spy or MODULE)
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["status"]["token"]
        assert provider.grants == ["client_credentials"]
        if spy:
            assert hsm.calls("C_Login") == 1

        # The same client, a wrong PIN: one try, a clear error, nothing cached.
        fresh = _run(hsm, f"--oidc-issuer-url={provider.issuer}", *args,
                     env_extra={"PIN": "999999", "XDG_CACHE_HOME": str(tmp_path / "c2")})
        assert fresh.returncode == 1
        assert "rejected the PIN" in one_error(fresh.stderr)
        assert provider.grants == ["client_credentials"]
        assert not list((tmp_path / "c2").glob("cred-helper/*.json"))
