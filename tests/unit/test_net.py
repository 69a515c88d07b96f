"""The network edge's pure rules: which proxy a request takes, which header values may be sent,
what trust a context holds."""

import os
import ssl
import subprocess

import pytest

from cred_helper import net
from cred_helper.errors import ServerError
from cred_helper.urls import parse
from tests.support.pki import CA

PEER = net.Peer("the API server", ServerError, tls_hint="pass --certificate-authority")
ENV = {"HTTPS_PROXY": "http://proxy.corp:3128", "HTTP_PROXY": "http://plain.corp:8080"}


def _proxy(url: str, env: dict) -> str | None:
    return net.proxy_from_env(parse(url, "test"), env)


@pytest.mark.parametrize(("url", "env", "proxy"), [
    # the scheme picks the variable; no ALL_PROXY
    ("https://k8s.example.com", ENV, "http://proxy.corp:3128"),
    ("http://idp.example.com", ENV, "http://plain.corp:8080"),
    ("https://k8s.example.com", {"HTTP_PROXY": "http://plain.corp:8080"}, None),
    ("https://k8s.example.com", {"ALL_PROXY": "socks5://all.corp:1080"}, None),
    ("https://k8s.example.com", {"https_proxy": "http://lower.corp:1"}, "http://lower.corp:1"),
    ("https://k8s.example.com", {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://l:1"},
     "http://upper:1"),
    ("https://k8s.example.com", {"HTTPS_PROXY": "proxy.corp:3128"}, "http://proxy.corp:3128"),
    ("https://k8s.example.com", {"HTTPS_PROXY": "socks5://s.corp:1080"}, "socks5://s.corp:1080"),
    # loopback is never proxied, NO_PROXY or not
    ("https://127.0.0.1:6443", ENV, None),
    ("https://127.3.4.5:6443", ENV, None),
    ("https://localhost:6443", ENV, None),
    ("https://[::1]:6443", ENV, None),
    # NO_PROXY: names and their subdomains
    ("https://k8s.example.com", {**ENV, "NO_PROXY": "example.com"}, None),
    ("https://example.com", {**ENV, "NO_PROXY": "example.com"}, None),
    ("https://notexample.com", {**ENV, "NO_PROXY": "example.com"}, "http://proxy.corp:3128"),
    ("https://k8s.example.com", {**ENV, "no_proxy": "example.com"}, None),
    # .name and *.name: subdomains only
    ("https://k8s.example.com", {**ENV, "NO_PROXY": ".example.com"}, None),
    ("https://example.com", {**ENV, "NO_PROXY": ".example.com"}, "http://proxy.corp:3128"),
    ("https://k8s.example.com", {**ENV, "NO_PROXY": "*.example.com"}, None),
    ("https://example.com", {**ENV, "NO_PROXY": "*.example.com"}, "http://proxy.corp:3128"),
    # case, spaces, empty entries
    ("https://K8S.Example.COM", {**ENV, "NO_PROXY": " , other.org ,EXAMPLE.com "}, None),
    # *
    ("https://anything.example", {**ENV, "NO_PROXY": "*"}, None),
    ("https://anything.example", {**ENV, "NO_PROXY": "a.org,*"}, None),
    # IPs and CIDRs
    ("https://10.1.2.3:6443", {**ENV, "NO_PROXY": "10.0.0.0/8"}, None),
    ("https://11.1.2.3:6443", {**ENV, "NO_PROXY": "10.0.0.0/8"}, "http://proxy.corp:3128"),
    ("https://10.1.2.3:6443", {**ENV, "NO_PROXY": "10.1.2.3"}, None),
    ("https://10.1.2.4:6443", {**ENV, "NO_PROXY": "10.1.2.3"}, "http://proxy.corp:3128"),
    ("https://[fd00::5]:6443", {**ENV, "NO_PROXY": "fd00::/8"}, None),
    ("https://[fd00::5]:6443", {**ENV, "NO_PROXY": "fd00::5"}, None),
    ("https://[fd00::5]:6443", {**ENV, "NO_PROXY": "[fd00::5]:6443"}, None),
    ("https://10.1.2.3", {**ENV, "NO_PROXY": "not-a-cidr/99,10.1.2.3"}, None),
    # an IP entry never matches a name, nor a name an IP
    ("https://k8s.example.com", {**ENV, "NO_PROXY": "10.0.0.0/8,10.1.2.3"},
     "http://proxy.corp:3128"),
    # ports
    ("https://k8s.example.com:6443", {**ENV, "NO_PROXY": "example.com:6443"}, None),
    ("https://k8s.example.com:443", {**ENV, "NO_PROXY": "example.com:6443"},
     "http://proxy.corp:3128"),
    ("https://k8s.example.com", {**ENV, "NO_PROXY": "example.com:443"}, None),
    ("https://10.1.2.3:6443", {**ENV, "NO_PROXY": "10.1.2.3:443"}, "http://proxy.corp:3128"),
])
def test_environment_proxy_rule(url, env, proxy):
    assert _proxy(url, env) == proxy


def test_a_fixed_proxy_url_takes_every_request_loopback_included():
    rule = net.Proxy(fixed="http://proxy.corp:3128", environ={"NO_PROXY": "*"})
    for url in ("https://127.0.0.1:6443", "https://k8s.example.com", "http://localhost"):
        assert rule.for_url(parse(url, "t")) == "http://proxy.corp:3128"
    assert net.Proxy(environ={}).for_url(parse("https://k8s.example.com", "t")) is None


@pytest.mark.parametrize("proxy", ["ftp://p:21", "http://p:99999", "http://", "socks4://p:1080",
                                   "http://p a:1"])
def test_a_bad_proxy_url_is_one_error(proxy):
    with pytest.raises(ServerError, match="proxy"):
        net.Client(PEER, net.os_trust_without_env(), net.Proxy(fixed=proxy))


@pytest.mark.parametrize("value", ["tok\r\nX-Evil: 1", "tok\n", "tok\x00", "tok\x7f",
                                   "tök€n", "😀"])
def test_header_values_that_cannot_be_sent(value):
    with pytest.raises(ServerError) as info:
        net.check_header(value, "token", PEER)
    assert value not in info.value.message


def test_latin1_header_values_pass():
    assert net.check_header("abc.DEF-_~+/=", "token", PEER) == "abc.DEF-_~+/="


def _impostor_dir(tmp_path):
    """(a directory OpenSSL can look CAs up in: the impostor's under its hashed name, as
    `openssl rehash` makes it; the impostor's server certificate and key, for 127.0.0.1)."""
    impostor = CA("impostor")
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "impostor.pem").write_bytes(impostor.cert_pem)
    subprocess.run(["openssl", "rehash", str(certs)], check=True, capture_output=True)
    assert any(name.endswith(".0") for name in os.listdir(certs)), "no hashed name"
    return certs, impostor.server_cert()


def _accepts(client: ssl.SSLContext, server_cert: tuple[bytes, bytes], tmp_path) -> bool:
    """Whether `client` completes a TLS handshake with a server presenting `server_cert`
    (in memory: two SSL objects and their buffers, no socket)."""
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    cert.write_bytes(server_cert[0])
    key.write_bytes(server_cert[1])
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    c_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls_client = client.wrap_bio(c_in, to_server, server_hostname="127.0.0.1")
    tls_server = server_ctx.wrap_bio(to_client, s_out, server_side=True)
    for _ in range(10):
        for side in (tls_client, tls_server):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                return False
        to_client.write(to_server.read())
        c_in.write(s_out.read())
        try:
            tls_client.do_handshake()
            return True
        except ssl.SSLWantReadError:
            continue
        except ssl.SSLError:
            return False
    return False


def test_exact_trust_holds_the_given_ca_and_nothing_else(monkeypatch, tmp_path):
    certs, impostor_server = _impostor_dir(tmp_path)
    bundle = certs / "impostor.pem"
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, str(bundle))
    monkeypatch.setenv("SSL_CERT_DIR", str(certs))
    ca = CA("cluster")
    ctx = net.exact_trust(ca.cert_pem, PEER, "test")
    subjects = [dict(x[0] for x in c["subject"])["commonName"] for c in ctx.get_ca_certs()]
    assert subjects == ["cluster"]
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    # The directory's CAs are looked up only while verifying, never listed: so verify.
    monkeypatch.delenv("SSL_CERT_FILE")
    assert _accepts(ssl.create_default_context(), impostor_server, tmp_path), \
        "the hashed directory must work where SSL_CERT_DIR is honoured"
    assert not _accepts(ctx, impostor_server, tmp_path)
    assert _accepts(ctx, ca.server_cert(), tmp_path)


def test_os_trust_for_a_cluster_ignores_the_ca_variables(monkeypatch, tmp_path):
    certs, impostor_server = _impostor_dir(tmp_path)
    monkeypatch.setenv("SSL_CERT_DIR", str(certs))
    assert _accepts(ssl.create_default_context(), impostor_server, tmp_path), \
        "the hashed directory must work where SSL_CERT_DIR is honoured"
    assert not _accepts(net.os_trust_without_env(), impostor_server, tmp_path)
    monkeypatch.delenv("SSL_CERT_DIR")
    monkeypatch.setenv("SSL_CERT_FILE", str(certs / "impostor.pem"))
    assert _accepts(ssl.create_default_context(), impostor_server, tmp_path)
    ctx = net.os_trust_without_env()
    subjects = [dict(x[0] for x in c["subject"]).get("commonName") for c in ctx.get_ca_certs()]
    assert "impostor" not in subjects
    assert not _accepts(ctx, impostor_server, tmp_path)


@pytest.mark.parametrize("data", [b"not a certificate", b"-----BEGIN CERTIFICATE-----\n\x00",
                                  b"\xff\xfe", b"-----BEGIN CERTIFICATE-----\nAAAA\n"
                                  b"-----END CERTIFICATE-----\n"])
def test_bad_ca_data_is_one_error(data):
    with pytest.raises(ServerError, match="certificate authority data from the kubeconfig"):
        net.exact_trust(data, PEER, "the kubeconfig")


def test_client_key_is_loaded_without_a_file_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    ca = CA()
    cert, key = ca.client_cert("alice", [])
    ctx = net.exact_trust(ca.cert_pem, PEER, "test")
    net.load_client_cert(ctx, cert, key, PEER, "test", spill_dir=str(tmp_path / "spill"))
    assert os.listdir(tmp_path) == []  # neither $TMPDIR nor the spill directory was used


def test_client_key_fallback_file_is_private_and_removed(tmp_path, monkeypatch):
    monkeypatch.delattr(os, "memfd_create")
    ca = CA()
    cert, key = ca.client_cert("alice", [])
    modes = []
    real = ssl.SSLContext.load_cert_chain

    def spy(self, certfile, *a, **kw):
        modes.append(os.stat(certfile).st_mode & 0o777)
        return real(self, certfile, *a, **kw)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    spill = tmp_path / "cache"
    net.load_client_cert(net.exact_trust(ca.cert_pem, PEER, "t"), cert, key, PEER, "t",
                         spill_dir=str(spill))
    assert modes == [0o600] and os.listdir(spill) == []


def test_a_key_that_is_not_the_certificates_is_one_error(tmp_path):
    ca = CA()
    cert, _ = ca.client_cert("alice", [])
    _, other_key = ca.client_cert("bob", [])
    with pytest.raises(ServerError, match="cannot be loaded"):
        net.load_client_cert(net.exact_trust(ca.cert_pem, PEER, "t"), cert, other_key, PEER,
                             "the kubeconfig", str(tmp_path))


def test_the_fallback_file_is_one_the_cache_sweep_removes_after_a_kill(tmp_path, monkeypatch):
    from cred_helper.cache.private import TMP_PREFIX

    monkeypatch.delattr(os, "memfd_create")
    ca = CA()
    cert, key = ca.client_cert("alice", [])
    seen = []
    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain",
                        lambda self, certfile, *a, **kw: seen.append(os.path.basename(certfile)))
    net.load_client_cert(net.exact_trust(ca.cert_pem, PEER, "t"), cert, key, PEER, "t",
                         str(tmp_path))
    assert seen[0].startswith(f"{TMP_PREFIX}{os.getpid()}-")


@pytest.mark.parametrize("name", ["\x00", "a b", "k8s\n", "bücher.example", "*.example.com", ""])
def test_an_unusable_tls_server_name_is_one_error(name):
    if not name:  # empty means "not set": the URL's host is checked
        net.Client(PEER, net.os_trust_without_env(), tls_server_name=name)
        return
    with pytest.raises(ServerError, match="tls-server-name"):
        net.Client(PEER, net.os_trust_without_env(), tls_server_name=name)


# ---- plain http to this machine only ----

@pytest.mark.parametrize(("addresses", "foreign"), [
    (["127.0.0.1"], None),
    (["127.0.0.1", "::1", "127.9.9.9"], None),
    (["192.0.2.1"], ["192.0.2.1"]),
    (["127.0.0.1", "192.0.2.1"], ["192.0.2.1"]),  # one foreign address is enough
    (["::1", "fe80::1%eth0"], ["fe80::1%eth0"]),
    (["0.0.0.0"], ["0.0.0.0"]),
    ([], []),
])
def test_a_name_for_plain_http_must_resolve_to_loopback_alone(addresses, foreign):
    if foreign is None:
        assert net.loopback_addresses("idp.localhost", addresses) == addresses
    else:
        with pytest.raises(net.NotLoopback) as refused:
            net.loopback_addresses("idp.localhost", addresses)
        assert refused.value.addresses == foreign


def test_plain_http_elsewhere_is_refused_before_connecting():
    from cred_helper.issuers.oidc import PROVIDER, OIDCError

    client = net.Client(PROVIDER, ssl.create_default_context(), net.Proxy(environ={}),
                        plain_http_loopback_only=True)
    with pytest.raises(OIDCError, match="plain http:// and not on this machine"):
        client.request("GET", "http://192.0.2.1:9/x")


def test_plain_http_to_localhost_connects_to_its_loopback_address():
    """`localhost` resolves (through /etc/hosts) to loopback: the request goes there, with the
    name in the Host header. (tests/integration/test_oidc_hostile_provider.py points a name
    elsewhere in a private /etc/hosts.)"""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    from cred_helper.issuers.oidc import PROVIDER

    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        client = net.Client(PROVIDER, ssl.create_default_context(), net.Proxy(environ={}),
                            plain_http_loopback_only=True)
        assert client.request("GET", f"http://localhost:{port}/x").status_code == 204
        server.shutdown()
    assert seen == [f"localhost:{port}"]


def test_a_header_name_given_twice_is_sent_twice():
    """Kubernetes reads one Impersonate-Group header per group: pairs keep them apart."""
    import http.server
    import threading

    seen: list[list[str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get_all("Impersonate-Group") or [])
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    client = net.Client(net.Peer("the test server", ServerError, "-"), ssl.create_default_context())
    resp = client.request("GET", f"http://127.0.0.1:{server.server_address[1]}/", headers=[
        ("Impersonate-User", "alice"), ("Impersonate-Group", "oncall"),
        ("Impersonate-Group", "system:authenticated")])
    server.server_close()
    assert resp.status_code == 200
    assert seen == [["oncall", "system:authenticated"]]
