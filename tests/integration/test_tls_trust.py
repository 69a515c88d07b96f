"""Whom cred-helper trusts, with each CA environment variable pointing at an impostor's CA.

The cluster connection trusts exactly its own CA: an impostor on the cluster's address gets no
request at all (so no bootstrap token), whatever REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE,
SSL_CERT_FILE or SSL_CERT_DIR say. The OpenID provider honours SSL_CERT_FILE / SSL_CERT_DIR by
design (as Go programs do), never REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, and only its own CA once
--oidc-certificate-authority is set. These machines export all four variables, so every run
here sets exactly the ones it means.
"""

from __future__ import annotations

import base64
import subprocess

import pytest

from tests.support.harness import one_error
from tests.support.hostile import HostileServer, json_answer
from tests.support.pki import CA

CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture
def impostor():
    with HostileServer(json_answer({"kind": "Status", "code": 500, "message": "gotcha"}, 500),
                       ca=CA("impostor-ca")) as srv:
        yield srv


def _impostor_env(tmp_path, impostor, variable: str) -> dict[str, str]:
    """`variable` pointing at the impostor's CA (a file, or a hashed directory)."""
    bundle = tmp_path / "impostor-ca.pem"
    bundle.write_bytes(impostor.ca_pem)
    if variable != "SSL_CERT_DIR":
        return {variable: str(bundle)}
    certs = tmp_path / "impostor-certs"
    certs.mkdir()
    digest = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", str(bundle)],
                            capture_output=True, text=True, check=True).stdout.strip()
    (certs / f"{digest}.0").write_bytes(impostor.ca_pem)
    return {variable: str(certs)}


def _cluster_exec_info(server_url: str, ca_pem: bytes) -> dict:
    return {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
            "spec": {"interactive": False, "cluster": {
                "server": server_url,
                "certificate-authority-data": base64.b64encode(ca_pem).decode()}}}


@pytest.mark.parametrize("variable", CA_VARIABLES)
def test_the_cluster_trusts_its_own_ca_only(sandbox, impostor, tmp_path, variable):
    """spec.cluster names the real cluster CA; the variable names the impostor's."""
    result = sandbox.run(*sandbox.base_args(), extra_env=_impostor_env(tmp_path, impostor,
                                                                        variable),
                         exec_info=_cluster_exec_info(impostor.url, sandbox.server.ca.cert_pem))
    assert result.returncode == 1 and result.stdout == ""
    line = one_error(result.stderr)
    assert f"TLS verification of the API server at {impostor.url} failed" in line
    assert impostor.connections >= 1 and impostor.requests == []  # TLS only, nothing sent
    assert sandbox.token not in result.stderr
    assert not list(sandbox.cache_dir.glob("*.json"))


@pytest.mark.parametrize("variable", CA_VARIABLES)
def test_a_named_certificate_authority_is_exact_too(sandbox, impostor, tmp_path, variable):
    result = sandbox.run(*sandbox.base_args(f"--server={impostor.url}",
                                            f"--certificate-authority={sandbox.ca_file}"),
                         extra_env=_impostor_env(tmp_path, impostor, variable),
                         exec_info=sandbox.exec_info(cluster=False))
    assert result.returncode == 1 and "TLS verification" in one_error(result.stderr)
    assert impostor.requests == []


def test_the_impostor_would_get_the_token_if_trusted(sandbox, impostor):
    """The control: trusting the impostor's CA on purpose, it does receive the bearer token,
    so the tests above would see it if the variables widened trust."""
    ca = sandbox.root / "impostor-ca.pem"
    ca.write_bytes(impostor.ca_pem)
    result = sandbox.run(*sandbox.base_args(f"--server={impostor.url}",
                                            f"--certificate-authority={ca}"),
                         exec_info=sandbox.exec_info(cluster=False))
    assert result.returncode == 1
    assert impostor.requests
    assert impostor.requests[0].headers["authorization"] == f"Bearer {sandbox.token}"


def test_without_any_ca_the_cluster_is_checked_against_the_os_store_not_the_variables(
        sandbox, impostor, tmp_path):
    env: dict[str, str] = {}
    for variable in CA_VARIABLES:
        sub = tmp_path / variable
        sub.mkdir()
        env.update(_impostor_env(sub, impostor, variable))
    result = sandbox.run(*sandbox.base_args(f"--server={impostor.url}"), extra_env=env,
                         exec_info=sandbox.exec_info(cluster=False))
    assert result.returncode == 1 and "TLS verification" in one_error(result.stderr)
    assert impostor.requests == []


def test_tls_server_name_is_the_name_checked(sandbox):
    """The local API server's certificate names localhost and 127.0.0.1, not k8s.internal:
    with tls-server-name set to another name, kubectl (and cred-helper) refuse it."""
    info = sandbox.exec_info()
    info["spec"]["cluster"]["tls-server-name"] = "k8s.internal"
    result = sandbox.run(*sandbox.base_args(), exec_info=info)
    assert result.returncode == 1
    assert "TLS verification" in one_error(result.stderr)
    info["spec"]["cluster"]["tls-server-name"] = "localhost"
    assert sandbox.run(*sandbox.base_args(), exec_info=info).returncode == 0


# ---- the OpenID provider ----------------------------------------------------------------------

@pytest.fixture
def provider_impostor():
    with HostileServer(json_answer({}), ca=CA("impostor-ca")) as srv:
        srv.script = json_answer({"issuer": srv.url, "token_endpoint": srv.url + "/token",
                                  "jwks_uri": srv.url + "/jwks"})
        yield srv


def _oidc(sandbox, provider, env: dict[str, str], *extra: str):
    secret = sandbox.root / "secret"
    secret.write_text("s\n")
    secret.chmod(0o600)
    return sandbox.run("--issuer=oidc", f"--oidc-issuer-url={provider.url}",
                       "--oidc-client-id=svc", f"--oidc-client-secret-file={secret}",
                       "--oidc-grant=client-credentials", *extra, extra_env=env,
                       exec_info=sandbox.exec_info(cluster=False))


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "SSL_CERT_DIR"])
def test_the_provider_honours_ssl_cert_file_and_dir(sandbox, provider_impostor, tmp_path,
                                                    variable):
    result = _oidc(sandbox, provider_impostor,
                   _impostor_env(tmp_path, provider_impostor, variable))
    assert result.returncode == 1 and result.stdout == ""
    assert provider_impostor.requests  # trusted, by design
    assert provider_impostor.requests[0].path == "/.well-known/openid-configuration"


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_the_provider_ignores_requests_and_curl_bundles(sandbox, provider_impostor, tmp_path,
                                                        variable):
    result = _oidc(sandbox, provider_impostor,
                   _impostor_env(tmp_path, provider_impostor, variable))
    assert result.returncode == 1 and result.stdout == ""
    line = one_error(result.stderr)
    assert f"TLS verification of the OpenID provider at {provider_impostor.url}" in line
    assert provider_impostor.requests == []


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "SSL_CERT_DIR"])
def test_oidc_certificate_authority_is_exact(sandbox, provider_impostor, tmp_path, variable):
    real = tmp_path / "real-idp-ca.pem"
    real.write_bytes(CA("real-idp-ca").cert_pem)
    result = _oidc(sandbox, provider_impostor,
                   _impostor_env(tmp_path, provider_impostor, variable),
                   f"--oidc-certificate-authority={real}")
    assert result.returncode == 1
    assert "TLS verification of the OpenID provider" in one_error(result.stderr)
    assert provider_impostor.requests == []


def test_oidc_certificate_authority_trusts_a_private_provider(sandbox, provider_impostor,
                                                              tmp_path):
    ca = tmp_path / "idp-ca.pem"
    ca.write_bytes(provider_impostor.ca_pem)
    result = _oidc(sandbox, provider_impostor, {}, f"--oidc-certificate-authority={ca}")
    assert result.returncode == 1  # the stand-in answers no token, but it was reached
    assert [r.path for r in provider_impostor.requests][:1] == [
        "/.well-known/openid-configuration"]
