"""The one network edge: every HTTP request cred-helper makes goes through `Client`.

Why urllib3 and not requests: requests widens trust behind the caller's back (its
`HTTPAdapter.cert_verify` loads certifi or `REQUESTS_CA_BUNDLE` even into a custom SSLContext,
those variables override `Session.verify`, and `trust_env=False` drops proxies too). Here:

- Trust is exactly the SSLContext built below: for a cluster, the CA it was given and nothing
  else (only without one, the OS store, read without any environment variable); for an OpenID
  provider, `--oidc-certificate-authority`, else the OS store through truststore (which on Linux
  honours SSL_CERT_FILE / SSL_CERT_DIR, as Go programs do). certifi is never read.
- Proxies as kubectl uses them (`Proxy`): a kubeconfig cluster's proxy-url for every request,
  else HTTPS_PROXY / HTTP_PROXY with NO_PROXY, loopback never proxied.
- No redirect is followed, timeouts on connect and read, bodies and watch lines are capped.
- Where plain http is allowed only to this machine (an OpenID provider), a name such as
  `idp.localhost` is resolved once, every address must be loopback, and the connection goes to
  those addresses (`LoopbackHTTPConnection`): DNS must not carry a secret off the machine.
- Every transport failure is one error of the caller's kind, naming the server.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import ssl
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3 import exceptions as u3
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.util import connection as u3_connection

from . import __version__
from .errors import CredHelperError, os_reason
from .urls import URL, is_loopback, parse

USER_AGENT = f"cred-helper/{__version__}"
# Where distributions keep the OS trust store, for an OpenSSL built with paths that do not
# exist here (as Go's crypto/x509 looks for them).
CA_BUNDLE_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Gentoo, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # CentOS, RHEL 7
    "/etc/ssl/cert.pem",  # Alpine, macOS
)
MAX_BODY = 4 << 20  # an API object or a provider's JSON answer is kilobytes
MAX_LINE = 4 << 20  # one watch event: a CSR with its certificate is a few kilobytes
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
_CHUNK = 64 << 10


# ---- who we talk to -------------------------------------------------------------------------

@dataclass(frozen=True)
class Peer:
    """How errors about one kind of server read: its name, its error class and hints."""

    name: str  # "the API server", "the OpenID provider"
    error: type[CredHelperError]
    tls_hint: str
    reach_hint: str = "check the server address and your network"

    def fail(self, message: str, hint: str | None = None) -> CredHelperError:
        return self.error(message, hint)


# ---- trust ----------------------------------------------------------------------------------

def exact_trust(ca_pem: bytes, peer: Peer, source: str) -> ssl.SSLContext:
    """A context that trusts exactly the certificates in `ca_pem` (PEM, or one DER)."""
    ctx = _base_context()
    try:
        if b"-----BEGIN" in ca_pem:
            ctx.load_verify_locations(cadata=ca_pem.decode("ascii"))
        else:
            ctx.load_verify_locations(cadata=ca_pem)
    except (ssl.SSLError, ValueError):  # UnicodeDecodeError and "embedded null" are ValueErrors
        raise peer.fail(f"the certificate authority data from {source} is not a PEM "
                        "certificate", peer.tls_hint) from None
    if not ctx.cert_store_stats().get("x509_ca"):
        raise peer.fail(f"the certificate authority data from {source} holds no CA "
                        "certificate", peer.tls_hint)
    return ctx


def os_trust_without_env() -> ssl.SSLContext:
    """The OS trust store, as OpenSSL was built to find it; SSL_CERT_FILE / SSL_CERT_DIR are not
    read (for a cluster, no environment variable may replace its trust)."""
    if sys.platform != "linux":
        import truststore  # the OS verifier (Keychain, CryptoAPI) reads no CA variables

        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx = _base_context()
    paths = ssl.get_default_verify_paths()
    cafile, capath = paths.openssl_cafile, paths.openssl_capath
    cafile = cafile if cafile and os.path.isfile(cafile) else None
    capath = capath if capath and os.path.isdir(capath) else None
    if cafile or capath:
        ctx.load_verify_locations(cafile=cafile, capath=capath)
        return ctx
    for candidate in CA_BUNDLE_FILES:
        if os.path.isfile(candidate):
            ctx.load_verify_locations(cafile=candidate)
            break
    return ctx


def provider_trust(ca_pem: bytes, peer: Peer, source: str) -> ssl.SSLContext:
    """An OpenID provider's trust: its own CA when given, else the OS store via truststore."""
    if ca_pem:
        return exact_trust(ca_pem, peer, source)
    import truststore

    ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _base_context() -> ssl.SSLContext:
    # Not ssl.create_default_context(): without cadata it calls load_default_certs(), which
    # honours SSL_CERT_FILE / SSL_CERT_DIR. PROTOCOL_TLS_CLIENT verifies certificate and host.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # as client-go
    return ctx


def load_client_cert(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes, peer: Peer,
                     source: str, spill_dir: str) -> None:
    """Give `ctx` a client certificate. ssl reads keys only from a path: on Linux an anonymous
    memory file (`memfd`), so the key never touches a disk; elsewhere a 0600 file in
    `spill_dir` (the cache directory), removed as soon as it is loaded."""
    blob = key_pem.rstrip(b"\n") + b"\n" + cert_pem
    try:
        if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
            fd = os.memfd_create("cred-helper-client", os.MFD_CLOEXEC)
            try:
                _write_all(fd, blob)
                ctx.load_cert_chain(f"/proc/self/fd/{fd}")
            finally:
                os.close(fd)
        else:
            from .cache.private import temp_path  # the cache's sweep removes it after a kill

            if not spill_dir:  # never $TMPDIR: only the cache directory is swept and private
                raise peer.fail(f"no cache directory to load the client key from {source}",
                                "pass --cache-dir")
            os.makedirs(spill_dir, mode=0o700, exist_ok=True)
            path = temp_path(spill_dir)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                try:
                    _write_all(fd, blob)
                finally:
                    os.close(fd)
                ctx.load_cert_chain(path)
            finally:
                os.unlink(path)
    except (ssl.SSLError, ValueError):
        raise peer.fail(f"the client certificate or key from {source} cannot be loaded",
                        "check that the certificate and key are PEM and belong together") \
            from None
    except OSError as exc:
        raise peer.fail(f"cannot load the client key from {source}: {os_reason(exc)}") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# ---- plain http to this machine only ---------------------------------------------------------

class NotLoopback(Exception):
    """A name that plain http may use only on loopback resolved to another address."""

    def __init__(self, host: str, addresses: list[str]) -> None:
        super().__init__(host)
        self.host = host
        self.addresses = addresses


def loopback_addresses(host: str, addresses: list[str]) -> list[str]:
    """`addresses` (what `host` resolved to), if every one is a loopback address; else
    NotLoopback naming the others. One foreign address is enough to refuse: a connection
    may go to any of them."""
    foreign = [a for a in addresses if not _is_loopback_address(a)]
    if foreign or not addresses:
        raise NotLoopback(host, foreign)
    return addresses


def _is_loopback_address(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # a scoped or unparsable address is not loopback
        return False


class LoopbackHTTPConnection(HTTPConnection):
    """Plain http whose host must be this machine: the name is resolved once, checked, and
    connected to by address, so a second lookup cannot send the connection elsewhere."""

    def _new_conn(self) -> socket.socket:
        try:
            infos = socket.getaddrinfo(self._dns_host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise u3.NameResolutionError(self.host, self, exc) from exc
        addresses = loopback_addresses(self.host, list(dict.fromkeys(
            str(info[4][0]) for info in infos)))
        failure: OSError | None = None
        for address in addresses:
            try:
                return u3_connection.create_connection(
                    (address, self.port), self.timeout, source_address=self.source_address,
                    socket_options=self.socket_options)
            except OSError as exc:  # as urllib3 itself: try the next address
                failure = exc
        if isinstance(failure, TimeoutError):
            raise u3.ConnectTimeoutError(self, f"Connection to {self.host} timed out")
        raise u3.NewConnectionError(self, f"Failed to establish a new connection: {failure}")


class LoopbackHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = LoopbackHTTPConnection


# ---- proxies --------------------------------------------------------------------------------

PROXY_SCHEMES = ("http", "https", "socks5")
ENV_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def proxy_from_env(url: URL, environ: Mapping[str, str]) -> str | None:
    """The proxy for `url` by the environment, as Go's net/http reads it (kubectl, kubelogin):
    HTTPS_PROXY for https, HTTP_PROXY for http (upper case first), never ALL_PROXY; no proxy for
    localhost and loopback addresses, nor for hosts NO_PROXY matches."""
    names = ("HTTPS_PROXY", "https_proxy") if url.scheme == "https" else \
        ("HTTP_PROXY", "http_proxy")
    proxy = next((environ[n] for n in names if environ.get(n)), "")
    if not proxy or is_loopback(url.host):
        return None
    no_proxy = next((environ[n] for n in ("NO_PROXY", "no_proxy") if environ.get(n)), "")
    if no_proxy_matches(url.host, url.port, no_proxy):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def no_proxy_matches(host: str, port: int, no_proxy: str) -> bool:
    """NO_PROXY as Go reads it: `*`; IP addresses and CIDR ranges; `name` (the name and its
    subdomains), `.name` and `*.name` (subdomains only); any entry may end in `:port`."""
    host = host.lower().strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            try:
                if ip is not None and ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name, entry_port = _split_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        try:
            entry_ip = ipaddress.ip_address(name)
        except ValueError:
            entry_ip = None
        if entry_ip is not None:  # an IP entry matches that address only, never a name
            if ip == entry_ip:
                return True
            continue
        if name.startswith("*."):
            name = name[1:]
        if name.startswith("."):
            if host.endswith(name):
                return True
        elif host == name or host.endswith("." + name):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [v6]:port or [v6]
        name, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        name, _, port = entry.partition(":")
    else:
        return entry, None  # a name, or a bare IPv6 address
    return name, int(port) if port.isdigit() else None


@dataclass(frozen=True)
class Proxy:
    """Which proxy a request goes through. `fixed`: a kubeconfig cluster's proxy-url, used for
    every request to that cluster, loopback included, NO_PROXY ignored (as kubectl does).
    Without it, the environment rule of `proxy_from_env`."""

    fixed: str = ""
    environ: Mapping[str, str] | None = None

    def for_url(self, url: URL) -> str | None:
        if self.fixed:
            return self.fixed
        return proxy_from_env(url, self.environ if self.environ is not None else os.environ)


# ---- responses ------------------------------------------------------------------------------

class Response:
    """A finished answer (`content` read, capped), or with `stream=True` one to read by lines."""

    def __init__(self, raw: urllib3.BaseHTTPResponse, method: str, url: URL, client: Client,
                 content: bytes | None) -> None:
        self._raw = raw
        self._client = client
        self.method = method
        self.url = url.text
        self.path = url.target.partition("?")[0]
        self.origin = url.origin
        self.status_code = raw.status
        self.reason = raw.reason or ""
        self.headers = raw.headers
        self.content = content if content is not None else b""

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not (deep nesting included)."""
        try:
            return json.loads(self.content)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None

    def iter_lines(self, max_line: int = MAX_LINE, end_on_break: bool = False
                   ) -> Iterator[bytes]:
        """Lines of a streamed body as they arrive, in linear time; a line longer than
        `max_line` is one error. A transport failure midway is one error too, or, with
        `end_on_break` (a watch, which the caller follows with a fresh read), the end."""
        buf = bytearray()
        scanned = 0
        try:
            while True:
                try:
                    chunk = self._raw.read1(_CHUNK)
                except (u3.HTTPError, OSError, ValueError) as exc:
                    if end_on_break:
                        return
                    raise self._client.failure(exc, self.origin) from None
                if not chunk:
                    break
                buf += chunk
                while True:
                    end = buf.find(b"\n", scanned)  # only the bytes not yet searched
                    if end < 0:
                        scanned = len(buf)
                        break
                    line = bytes(buf[:end]).rstrip(b"\r")
                    del buf[:end + 1]
                    scanned = 0
                    if line:
                        yield line
                if len(buf) > max_line:
                    raise self._client.peer.fail(
                        f"{self._client.peer.name} at {self.origin} sent a line longer than "
                        f"{max_line >> 20} MiB")
            if buf.strip():
                yield bytes(buf)
        finally:
            self.close()

    def close(self) -> None:
        if self._raw.closed:
            self._raw.release_conn()
            self._raw.close()
            return
        # A stream left before its end (a watch we stopped following): the connection still
        # carries the rest of it, so it must not go back to the pool for the next request.
        self._raw.close()  # closes the connection too; the pool opens a new one
        self._raw.release_conn()


# ---- the client -----------------------------------------------------------------------------

class Client:
    """HTTP(S) to one kind of server with fixed trust and proxy rules."""

    def __init__(self, peer: Peer, ssl_context: ssl.SSLContext, proxy: Proxy | None = None,
                 tls_server_name: str = "", connect_timeout: float = CONNECT_TIMEOUT,
                 read_timeout: float = READ_TIMEOUT,
                 plain_http_loopback_only: bool = False) -> None:
        self.peer = peer
        self.plain_http_loopback_only = plain_http_loopback_only
        self.ssl_context = ssl_context
        self.proxy = proxy or Proxy()
        self.tls_server_name = tls_server_name
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._managers: dict[str | None, urllib3.PoolManager] = {}
        if tls_server_name and not _host_name_ok(tls_server_name):
            raise peer.fail(f"the tls-server-name {tls_server_name[:100]!r} is not a host name",
                            "fix tls-server-name on the kubeconfig cluster")
        if self.proxy.fixed:  # a bad proxy-url is an error before anything is sent
            _parse_proxy(self.proxy.fixed, "proxy-url", peer.error, PROXY_SCHEMES)

    def request(self, method: str, url: str, *,
                headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
                body: bytes | None = None, read_timeout: float | None = None,
                stream: bool = False, max_body: int = MAX_BODY) -> Response:
        """`headers` as a mapping, or as (name, value) pairs where a name repeats
        (Kubernetes' Impersonate-Group: one header per group)."""
        target = parse(url, _short(self.peer.name), self.peer.error)
        if self.plain_http_loopback_only and target.scheme == "http" and \
                not is_loopback(target.host):
            raise self.peer.fail(f"{self.peer.name} at {target.origin} is plain http:// and "
                                 "not on this machine", "use its https:// URL")
        all_headers = urllib3.HTTPHeaderDict({"User-Agent": USER_AGENT})
        pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
        for name, value in pairs:
            all_headers.add(name, check_header(value, f"the {name} header", self.peer))
        timeout = urllib3.Timeout(connect=self.connect_timeout,
                                  read=read_timeout or self.read_timeout)
        manager = self._manager(target)
        raw = self._guard(
            manager.urlopen, target.origin, method, _request_url(target), body=body,
            headers=all_headers, redirect=False, retries=False, timeout=timeout,
            preload_content=False, assert_same_host=False)
        if 300 <= raw.status < 400:
            location = raw.headers.get("Location", "")
            raw.release_conn()
            raw.close()
            where = f" to {location[:200]!r}" if location else ""
            raise self.peer.fail(
                f"{self.peer.name} at {target.origin} answered {raw.status} with a redirect"
                f"{where}; cred-helper follows no redirects",
                "use the server's final address")
        resp = Response(raw, method, target, self, None)
        if stream:
            return resp
        try:
            resp.content = self._read_capped(raw, target.origin, max_body)
        finally:
            resp.close()
        return resp

    def _read_capped(self, raw: urllib3.BaseHTTPResponse, origin: str, cap: int) -> bytes:
        out = bytearray()
        while True:
            chunk = self._guard(raw.read, origin, _CHUNK)
            if not chunk:
                return bytes(out)
            out += chunk
            if len(out) > cap:
                error = self.peer.fail(f"{self.peer.name} at {origin} sent an answer larger "
                                       f"than {cap >> 20} MiB")
                error.too_large = True
                raise error

    def _manager(self, target: URL) -> urllib3.PoolManager:
        proxy = self.proxy.for_url(target)
        if proxy in self._managers:
            return self._managers[proxy]
        pool_kw: dict[str, Any] = {"ssl_context": self.ssl_context, "cert_reqs": "CERT_REQUIRED"}
        if self.tls_server_name:  # SNI and the name checked, as kubectl's tls-server-name
            pool_kw["server_hostname"] = self.tls_server_name
            pool_kw["assert_hostname"] = self.tls_server_name
        if proxy is None:
            manager: urllib3.PoolManager = urllib3.PoolManager(**pool_kw)
            if self.plain_http_loopback_only:
                manager.pool_classes_by_scheme = {**manager.pool_classes_by_scheme,
                                                  "http": LoopbackHTTPConnectionPool}
        else:
            where = "proxy-url" if self.proxy.fixed else "HTTPS_PROXY / HTTP_PROXY"
            schemes = PROXY_SCHEMES if self.proxy.fixed else ENV_PROXY_SCHEMES
            parsed = _parse_proxy(proxy, where, self.peer.error, schemes)
            manager = _proxy_manager(parsed, pool_kw)
        self._managers[proxy] = manager
        return manager

    def _guard(self, call: Callable[..., Any], origin: str, *args: Any, **kw: Any) -> Any:
        """Run one urllib3 step; any transport failure becomes the peer's one error."""
        try:
            return call(*args, **kw)
        except CredHelperError:
            raise
        except NotLoopback as exc:
            shown = ", ".join(exc.addresses[:4]) or "no address"
            raise self.peer.fail(
                f"{self.peer.name} at {origin} is plain http://, and {exc.host} resolves to "
                f"{shown}, not to this machine: nothing was sent",
                "plain http goes only to loopback addresses: fix the name's resolution (e.g. "
                "/etc/hosts), or use the provider's https:// URL") from None
        except (u3.HTTPError, OSError, ValueError) as exc:
            raise self.failure(exc, origin) from None

    def failure(self, exc: BaseException, origin: str) -> CredHelperError:
        """The one error for a transport failure: refused, reset, cut short, bad chunking,
        an answer that is not HTTP, a TLS failure, a timeout, a proxy that failed."""
        error = self._failure(exc, origin)
        # No connection was made: the request cannot have been seen (a write did not happen).
        error.unsent = isinstance(exc, u3.ConnectTimeoutError)
        return error

    def _failure(self, exc: BaseException, origin: str) -> CredHelperError:
        name = self.peer.name
        if isinstance(exc, u3.SSLError):
            return self.peer.fail(f"TLS verification of {name} at {origin} failed: "
                                  f"{ssl_reason(exc)}", self.peer.tls_hint)
        # NewConnectionError subclasses ConnectTimeoutError: a refused connection is no timeout.
        if isinstance(exc, (u3.ConnectTimeoutError, u3.ReadTimeoutError, TimeoutError)) and \
                not isinstance(exc, u3.NewConnectionError):
            error = self.peer.fail(f"{name} at {origin} did not answer in time",
                                   self.peer.reach_hint)
        elif isinstance(exc, u3.ProxyError):
            return self.peer.fail(f"cannot reach {name} at {origin} through the proxy: "
                                  f"{_reason(exc)}", "check the proxy settings")
        else:
            error = self.peer.fail(f"cannot reach {name} at {origin}: {_reason(exc)}",
                                   self.peer.reach_hint)
        error.transient = True  # refused, reset, cut short, timed out: a peer restarting
        return error


def check_header(value: str, what: str, peer: Peer) -> str:
    """A header value that http.client can send as it is: Latin-1, no control characters (a
    CR or LF would start another header; anything else in a token is a broken file)."""
    if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
        raise peer.fail(f"{what} contains control characters",
                        "check the token or secret file for stray characters")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise peer.fail(f"{what} contains characters that cannot be sent in an HTTP header",
                        "check the token or secret file for stray "
                        "characters") from None
    return value


def _host_name_ok(name: str) -> bool:
    """A name OpenSSL can send as SNI and check: ASCII letters, digits, dots, dashes (or an
    IP address), nothing that would turn into a TypeError deep inside ssl."""
    return 0 < len(name) <= 253 and name.isascii() and all(
        c.isalnum() or c in ".-_:" for c in name)


def _short(peer_name: str) -> str:
    return peer_name.removeprefix("the ")


def _request_url(target: URL) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"{target.scheme}://{host}:{target.port}{target.target}"


def _parse_proxy(proxy: str, where: str, error: type[CredHelperError],
                 schemes: tuple[str, ...]) -> tuple[URL, str]:
    """The proxy URL checked, and its user:password (Go sends it as Proxy-Authorization)."""
    from urllib.parse import unquote, urlsplit

    try:
        parts = urlsplit(proxy)
        userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
        bare = proxy.replace(userinfo + "@", "", 1) if userinfo else proxy
    except ValueError:
        userinfo, bare = "", proxy
    return parse(bare, f"proxy ({where})", error, schemes), unquote(userinfo)


def _proxy_manager(proxy: tuple[URL, str], pool_kw: dict[str, Any]) -> urllib3.PoolManager:
    url, userinfo = proxy
    host = f"[{url.host}]" if ":" in url.host else url.host
    if url.scheme.startswith("socks"):
        from urllib3.contrib.socks import SOCKSProxyManager

        user, _, password = userinfo.partition(":")
        # socks5h: the proxy resolves names; socks5 as Go's client does it also sends names.
        return SOCKSProxyManager(f"socks5h://{host}:{url.port}", username=user or None,
                                 password=password or None, **pool_kw)
    headers = urllib3.make_headers(proxy_basic_auth=userinfo) if userinfo else None
    # An https proxy is itself verified against the OS store (never the environment's CAs).
    return urllib3.ProxyManager(f"{url.scheme}://{host}:{url.port}", proxy_headers=headers,
                                proxy_ssl_context=os_trust_without_env()
                                if url.scheme == "https" else None, **pool_kw)


def ssl_reason(exc: BaseException) -> str:
    """OpenSSL's own words (`self-signed certificate in certificate chain`, a hostname
    mismatch), found through the layers urllib3 wraps around them."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or "the server's certificate is not trusted"
        if type(seen).__name__ == "CertificateError":  # urllib3 checking tls-server-name
            return f"the certificate does not name this host ({seen})"[:200]
        inner = next((a for a in seen.args if isinstance(a, BaseException)), None)
        seen = inner or seen.__cause__ or seen.__context__
    text = str(exc)
    if "verify failed" in text or "certificate" in text.lower():
        return "the server's certificate is not trusted"
    return "the TLS handshake failed"


def _reason(exc: BaseException) -> str:
    """A short, secret-free reason for a transport failure."""
    checks: list[tuple[type[BaseException] | tuple[type[BaseException], ...], str]] = [
        (ConnectionRefusedError, "connection refused"),
        (ConnectionResetError, "connection reset"),
        (u3.IncompleteRead, "the answer was cut short"),
        (u3.InvalidChunkLength, "the answer's chunked encoding is broken"),
        (u3.DecodeError, "the answer's content encoding is broken"),
        (u3.NameResolutionError, "the name does not resolve"),
    ]
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        for kind, text in checks:
            if isinstance(seen, kind):
                return text
        if type(seen).__name__ in ("BadStatusLine", "RemoteDisconnected", "LineTooLong"):
            return "the answer is not HTTP, or was cut off"
        inner = next((a for a in seen.args if isinstance(a, BaseException)), None)
        seen = inner or seen.__cause__ or seen.__context__
    if isinstance(exc, u3.ProtocolError):
        return "the connection broke"
    if isinstance(exc, u3.NewConnectionError):
        return "cannot connect"
    return "the connection failed"
