"""Servers that misbehave: each failure is one error line naming the server, stdout stays
empty, nothing is cached, and no traceback. Also: a kubeconfig cluster's proxy-url is used
end to end, loopback included."""

from __future__ import annotations

import base64
import json

import pytest

from cred_helper import net
from cred_helper.errors import ServerError
from cred_helper.issuers.oidc import NoClientAuth, OIDCError, OIDCProvider, http_client
from cred_helper.kube import BearerAuth, Endpoint, KubeClient
from tests.support import hostile
from tests.support.connect_proxy import ConnectProxy
from tests.support.harness import one_error

API_CASES = {
    "redirect loop": (hostile.redirect_loop(), "answered 302 with a redirect"),
    "redirect elsewhere": (hostile.redirect("https://evil.example/steal", 307),
                           "answered 307 with a redirect to 'https://evil.example/steal'"),
    "broken chunked encoding": (hostile.broken_chunked(), "cannot reach"),
    "truncated body": (hostile.truncated(), "the answer was cut short"),
    "html instead of json": (hostile.html(), "not a JSON object"),
    "json list instead of object": (hostile.json_answer([1, 2, 3]), "not a JSON object"),
    "deeply nested json": (hostile.body_answer(b"[" * 100_000 + b"]" * 100_000),
                           "not a JSON object"),
    "connection reset": (hostile.reset(), "cannot reach"),
    "not http at all": (hostile.not_http(), "cannot reach"),
    "a body of 24 MiB": (hostile.huge_line(24 << 20), "larger than 4 MiB"),
    "html error page": (hostile.html(502), "failed (502)"),
}


@pytest.mark.parametrize("case", API_CASES)
def test_a_misbehaving_api_server_is_one_error(sandbox, case):
    answer, expected = API_CASES[case]
    with hostile.HostileServer(answer) as srv:
        ca = sandbox.root / "hostile-ca.pem"
        ca.write_bytes(srv.ca_pem)
        result = sandbox.run(*sandbox.base_args(f"--server={srv.url}",
                                                f"--certificate-authority={ca}",
                                                "--approval-timeout=10s"),
                             exec_info=sandbox.exec_info(cluster=False))
    assert result.returncode == 1 and result.stdout == ""
    line = one_error(result.stderr)
    assert srv.url in line and expected in line, line
    assert sandbox.token not in result.stderr
    assert not list(sandbox.cache_dir.glob("*.json"))


def _client(srv: hostile.HostileServer, timeout: float = 30) -> KubeClient:
    return KubeClient(Endpoint(srv.url, srv.ca_pem), BearerAuth("t0ken", "test"), timeout)


def test_a_24_mib_watch_line_fails_fast_with_one_error():
    with hostile.HostileServer(hostile.huge_line(24 << 20)) as srv, \
            pytest.raises(ServerError, match=r"sent a line longer than 4 MiB") as info:
        list(_client(srv).watch("/apis/x", {}, 30))
    assert srv.url in info.value.message


def test_a_server_that_never_answers_times_out():
    with hostile.HostileServer(hostile.slow(30)) as srv, \
            pytest.raises(ServerError, match="did not answer in time") as info:
        _client(srv, timeout=1).get("/api")
    assert srv.url in info.value.message


def test_malformed_watch_events_are_one_error():
    events = b'{"type": "ADDED", "object": {}}\n[1, 2]\n'
    with hostile.HostileServer(hostile.body_answer(events)) as srv:
        stream = _client(srv).watch("/apis/x", {}, 30)
        assert next(stream)["type"] == "ADDED"
        with pytest.raises(ServerError, match="malformed watch event"):
            next(stream)


def test_a_watch_that_breaks_just_ends():
    """A reset mid-watch ends the watch (the caller reads the object afresh)."""
    with hostile.HostileServer(hostile.raw(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"20\r\n{\"type\": \"ADDED\", \"object\": {}}\n\r\nzz\r\n")) as srv:
        assert [e["type"] for e in _client(srv).watch("/apis/x", {}, 30)] == ["ADDED"]


def test_a_refused_connection_names_the_server():
    with hostile.HostileServer(hostile.reset()) as srv:
        url, ca = srv.url, srv.ca_pem
    with pytest.raises(ServerError, match=f"cannot reach the API server at {url}"):
        KubeClient(Endpoint(url, ca), None).get("/api")


@pytest.mark.parametrize("token", ["t\u00f6k\u20acn", "tok\r\nX-Injected: 1"])
def test_a_token_that_cannot_be_sent_is_one_error_before_connecting(token):
    with hostile.HostileServer(hostile.json_answer({})) as srv:
        with pytest.raises(ServerError, match=r"cannot be sent|control characters") as info:
            KubeClient(Endpoint(srv.url, srv.ca_pem), BearerAuth(token, "the token file"), 5)
        assert srv.connections == 0
    assert token not in info.value.message


def test_a_non_latin1_token_file_via_the_command(sandbox):
    sandbox.token_file.write_text("t\u00f6k\u20acn\n")
    sandbox.token_file.chmod(0o600)
    result = sandbox.run(*sandbox.base_args(), exec_info=sandbox.exec_info())
    assert result.returncode == 1 and result.stdout == ""
    assert "cannot be sent in an HTTP header" in one_error(result.stderr)


# ---- the OpenID provider ----------------------------------------------------------------------

def _provider_script(srv, discovery: dict | None = None, **paths: hostile.Answer):
    doc = {"issuer": srv.url, "token_endpoint": srv.url + "/token",
           "jwks_uri": srv.url + "/jwks", **(discovery or {})}
    script = {"/.well-known/openid-configuration": hostile.json_answer(doc),
              "/jwks": hostile.json_answer({"keys": []})}
    script.update({"/" + k: v for k, v in paths.items()})
    return script


OIDC_CASES = {
    "token endpoint over plain http": (
        {"token_endpoint": "http://idp.example.com/token"}, {}, "token_endpoint is not an https"),
    "jwks_uri is a number": ({"jwks_uri": 5}, {}, "jwks_uri is not a string"),
    "device endpoint elsewhere in clear": (
        {"device_authorization_endpoint": "http://evil.example/device"}, {},
        "device_authorization_endpoint is not an https"),
    "discovery redirects": (None, {}, "answered 302 with a redirect"),
    "token answer redirects": ({}, {"token": hostile.redirect("https://evil.example/")},
                               "answered 302 with a redirect"),
    "expires_in is a string": ({}, {"token": hostile.json_answer(
        {"access_token": "a", "expires_in": "3600"})}, "expires_in that is not a positive"),
    "expires_in is negative": ({}, {"token": hostile.json_answer(
        {"access_token": "a", "expires_in": -5})}, "expires_in that is not a positive"),
    "expires_in is NaN": ({}, {"token": hostile.body_answer(
        b'{"access_token": "a", "expires_in": NaN}')}, "expires_in that is not a positive"),
    "id_token is a list": ({}, {"token": hostile.json_answer(
        {"access_token": "a", "id_token": ["x"]})}, "id_token is not a string"),
    "error is an object": ({}, {"token": hostile.json_answer(
        {"error": {"x": 1}}, 400)}, "refused the request: 400"),
    "token answer cut short": ({}, {"token": hostile.truncated()}, "cut short"),
    "token answer reset": ({}, {"token": hostile.reset()}, "cannot reach"),
    "jwks keys not a list": ({}, {"token": hostile.json_answer(
        {"access_token": "a", "id_token": "e30.e30.e30"}),
        "jwks": hostile.json_answer({"keys": "nope"})}, "no list of keys"),
}


@pytest.mark.parametrize("case", OIDC_CASES)
def test_a_misbehaving_provider_is_one_error(sandbox, case):
    discovery, paths, expected = OIDC_CASES[case]
    with hostile.HostileServer(hostile.json_answer({})) as srv:
        srv.script = hostile.redirect_loop() if discovery is None else \
            _provider_script(srv, discovery, **paths)
        ca = sandbox.root / "idp-ca.pem"
        ca.write_bytes(srv.ca_pem)
        secret = sandbox.root / "secret"
        secret.write_text("s\n")
        secret.chmod(0o600)
        result = sandbox.run("--issuer=oidc", f"--oidc-issuer-url={srv.url}",
                             "--oidc-client-id=svc", f"--oidc-client-secret-file={secret}",
                             "--oidc-grant=client-credentials",
                             f"--oidc-certificate-authority={ca}",
                             exec_info=sandbox.exec_info(cluster=False))
    assert result.returncode == 1 and result.stdout == ""
    line = one_error(result.stderr)
    assert expected in line, line
    assert srv.url in line or "discovery document" in line, line
    assert not list(sandbox.cache_dir.glob("*.json"))


def test_device_authorization_answer_of_the_wrong_shape():
    with hostile.HostileServer(hostile.json_answer({})) as srv:
        srv.script = _provider_script(
            srv, {"device_authorization_endpoint": srv.url + "/device"},
            device=hostile.json_answer({"device_code": 1, "user_code": "A",
                                        "verification_uri": srv.url + "/v"}))
        provider = OIDCProvider(srv.url, "c", NoClientAuth(), http_client_for(srv))
        with pytest.raises(OIDCError, match="has no device_code"):
            provider.device_authorize(["openid"])


def http_client_for(srv) -> net.Client:
    return net.Client(http_client().peer, net.exact_trust(srv.ca_pem, http_client().peer, "t"))


# ---- proxies ----------------------------------------------------------------------------------

def test_spec_cluster_proxy_url_is_used_even_for_loopback(sandbox):
    with ConnectProxy() as proxy:
        info = sandbox.exec_info()
        info["spec"]["cluster"]["proxy-url"] = proxy.url
        result = sandbox.run(*sandbox.base_args(), exec_info=info,
                             extra_env={"NO_PROXY": "*"})
        assert result.returncode == 0, result.stderr
        port = sandbox.server.url.rsplit(":", 1)[1]
        assert proxy.targets and set(proxy.targets) == {f"127.0.0.1:{port}"}
        assert json.loads(result.stdout)["status"]["clientCertificateData"]


def test_a_dead_proxy_url_is_one_error(sandbox):
    with ConnectProxy() as proxy:
        dead = proxy.url
    info = sandbox.exec_info()
    info["spec"]["cluster"]["proxy-url"] = dead
    result = sandbox.run(*sandbox.base_args(), exec_info=info)
    assert result.returncode == 1
    line = one_error(result.stderr)
    assert "through the proxy" in line or "cannot reach" in line, line


def test_environment_proxies_skip_loopback(sandbox):
    with ConnectProxy() as proxy:
        result = sandbox.run(*sandbox.base_args(), exec_info=sandbox.exec_info(),
                             extra_env={"HTTPS_PROXY": proxy.url, "HTTP_PROXY": proxy.url})
        assert result.returncode == 0, result.stderr
        assert proxy.targets == []


def test_bootstrap_kubeconfig_proxy_url_and_client_certificate(sandbox, tmp_path):
    cert, key = sandbox.server.client_cert("alice@example.com", ["oncall"])
    kubeconfig = tmp_path / "bootstrap.kubeconfig"
    with ConnectProxy() as proxy:
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "b",
            "clusters": [{"name": "c", "cluster": {
                "server": sandbox.server.url, "proxy-url": proxy.url,
                "certificate-authority-data": base64.b64encode(
                    sandbox.server.ca.cert_pem).decode()}}],
            "users": [{"name": "u", "user": {
                "client-certificate-data": base64.b64encode(cert).decode(),
                "client-key-data": base64.b64encode(key).decode()}}],
            "contexts": [{"name": "b", "context": {"cluster": "c", "user": "u"}}]}))
        kubeconfig.chmod(0o600)
        tmp = tmp_path / "tmpdir"
        tmp.mkdir()
        result = sandbox.run("--issuer=csr", "--ttl=30m", f"--bootstrap-kubeconfig={kubeconfig}",
                             exec_info=sandbox.exec_info(cluster=False),
                             extra_env={"TMPDIR": str(tmp)})
        assert result.returncode == 0, result.stderr
        assert proxy.targets
    assert list(tmp.iterdir()) == []  # the client key never went to $TMPDIR
