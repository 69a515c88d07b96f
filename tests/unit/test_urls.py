"""URL parsing at the network edge: every unusable URL is one clean error, never a traceback."""

import pytest

from cred_helper.errors import ServerError, UsageError
from cred_helper.urls import check_issuer_url, is_loopback, parse, provider_url_ok


@pytest.mark.parametrize(("url", "why"), [
    ("https://127.0.0.1:99999", "cannot be parsed"),
    ("https://127.0.0.1:-1", "cannot be parsed"),
    ("https://127.0.0.1:0", "no usable port"),
    ("https://host:port", "cannot be parsed"),
    ("https://", "names no host"),
    ("https:///api", "names no host"),
    ("https://:6443", "names no host"),
    ("https://exa mple.com", "spaces or control characters"),
    ("https://example.com/\nHost: evil", "spaces or control characters"),
    ("https://example.com\r", "spaces or control characters"),
    ("https://example.com\x00", "spaces or control characters"),
    ("https://[::1", "cannot be parsed"),
    ("https://[fe80::1%25eth0", "cannot be parsed"),
    ("https://[not-an-ip]:443", "cannot be parsed"),
    ("https://a]b:443", "cannot be parsed"),
    ("https://a%20b/", "malformed host"),
    ("https://a@b@c/", "user name or password"),
    ("ftp://example.com", "is not https:// or http://"),
    ("example.com:6443", "is not https:// or http://"),
    ("", "empty"),
    ("https://bücher.example", "non-ASCII"),
    ("https://user:hunter2@example.com", "user name or password"),
])
def test_unusable_urls_are_one_clean_error(url, why):
    with pytest.raises(ServerError, match=why) as info:
        parse(url, "API server", ServerError)
    assert "hunter2" not in info.value.message


def test_non_text_is_an_error():
    with pytest.raises(UsageError, match="empty or not text"):
        parse(None, "API server")


@pytest.mark.parametrize(("url", "origin", "port", "target"), [
    ("https://127.0.0.1:6443", "https://127.0.0.1:6443", 6443, "/"),
    ("https://Example.COM/base?x=1", "https://example.com", 443, "/base?x=1"),
    ("http://[::1]:8080/p", "http://[::1]:8080", 8080, "/p"),
    ("https://k8s.example:443", "https://k8s.example", 443, "/"),
])
def test_good_urls(url, origin, port, target):
    parsed = parse(url, "API server")
    assert (parsed.origin, parsed.port, parsed.target) == (origin, port, target)


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost", True), ("LOCALHOST", True), ("127.0.0.1", True), ("127.8.9.1", True),
    ("::1", True), ("[::1]", True), ("app.localhost", True),
    ("10.0.0.1", False), ("example.com", False), ("localhost.example.com", False),
    ("::ffff:10.0.0.1", False),
])
def test_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(("url", "ok"), [
    ("https://idp.example.com/token", True),
    ("http://127.0.0.1:8080/token", True),
    ("http://localhost/jwks", True),
    ("http://[::1]:9/jwks", True),
    ("http://idp.example.com/token", False),
    ("javascript:alert(1)", False),
    ("file:///etc/passwd", False),
    ("https://idp.example.com:99999/", False),
    (42, False),
])
def test_provider_scheme_rule(url, ok):
    assert provider_url_ok(url) is ok


def test_issuer_url():
    # A trailing slash is part of an issuer's identifier: kept, for tokens to match exactly.
    assert check_issuer_url("https://idp.example.com/") == "https://idp.example.com/"
    with pytest.raises(UsageError, match="not an https:// URL"):
        check_issuer_url("http://idp.example.com")
    with pytest.raises(UsageError, match="cannot be parsed"):
        check_issuer_url("https://idp.example.com:70000")
