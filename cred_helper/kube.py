"""Talking to a Kubernetes API server: verified TLS, bearer or client-certificate auth, and
`Status` errors turned into one-line messages with hints.

Only this module (and the issuers, through it) makes HTTP requests. TLS is always verified:
against the CA the user named, or the cluster's CA from the kubeconfig, or the system's trust
store; there is no way to switch verification off.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from . import __version__
from .errors import ServerError

USER_AGENT = f"cred-helper/{__version__}"


@dataclass(frozen=True)
class Endpoint:
    server: str
    ca_pem: bytes = b""  # empty: the system trust store
    tls_server_name: str = ""


@dataclass(frozen=True)
class BearerAuth:
    token: str = field(repr=False)
    source: str = ""


@dataclass(frozen=True)
class ClientCertAuth:
    cert_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)
    source: str = ""


Auth = BearerAuth | ClientCertAuth | None


def ssl_context(endpoint: Endpoint, auth: Auth) -> ssl.SSLContext:
    if endpoint.ca_pem:
        try:
            ctx = ssl.create_default_context(cadata=endpoint.ca_pem.decode("ascii", "replace"))
        except ssl.SSLError:
            raise ServerError(
                "the certificate authority data is not a PEM certificate",
                "check --certificate-authority or the kubeconfig's certificate-authority-data",
            ) from None
    else:
        ctx = ssl.create_default_context()
    if isinstance(auth, ClientCertAuth):
        _load_client_cert(ctx, auth)
    return ctx


def _load_client_cert(ctx: ssl.SSLContext, auth: ClientCertAuth) -> None:
    # ssl can only load a key from a file: a private directory, removed straight after.
    tmp = tempfile.mkdtemp(prefix="cred-helper-")
    try:
        cert_file, key_file = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        for path, data in ((cert_file, auth.cert_pem), (key_file, auth.key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        ctx.load_cert_chain(cert_file, key_file)
    except ssl.SSLError:
        raise ServerError(
            f"the client certificate or key from {auth.source} cannot be loaded",
            "check that the certificate and key are PEM and belong together",
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _PinnedTLSAdapter(HTTPAdapter):
    """Uses our SSLContext as it is; requests would otherwise add certifi's roots to it."""

    def __init__(self, ctx: ssl.SSLContext, server_name: str) -> None:
        self._ctx = ctx
        self._server_name = server_name
        super().__init__()

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, _ = super().build_connection_pool_key_attributes(request, True, None)
        pool_kwargs: dict[str, Any] = {"ssl_context": self._ctx, "cert_reqs": "CERT_REQUIRED"}
        if self._server_name:
            pool_kwargs["server_hostname"] = self._server_name
            pool_kwargs["assert_hostname"] = self._server_name
        return host_params, pool_kwargs


class KubeClient:
    def __init__(self, endpoint: Endpoint, auth: Auth, timeout: float = 30) -> None:
        if urlsplit(endpoint.server).scheme != "https":
            raise ServerError(f"API server {endpoint.server!r} is not an https:// URL",
                              "cred-helper only talks to API servers over verified TLS")
        self.endpoint = endpoint
        self.auth = auth
        self.timeout = timeout
        self._session = requests.Session()
        self._session.mount("https://", _PinnedTLSAdapter(ssl_context(endpoint, auth),
                                                          endpoint.tls_server_name))
        self._session.headers["User-Agent"] = USER_AGENT
        self._session.headers["Accept"] = "application/json"
        if isinstance(auth, BearerAuth):
            self._session.headers["Authorization"] = f"Bearer {auth.token}"

    def url(self, path: str) -> str:
        return self.endpoint.server.rstrip("/") + path

    def request(self, method: str, path: str, body: dict | None = None,
                params: dict | None = None, stream: bool = False,
                timeout: float | tuple[float, float] | None = None) -> requests.Response:
        try:
            resp = self._session.request(
                method, self.url(path), json=body, params=params, stream=stream,
                timeout=timeout or self.timeout,
            )
        except requests.exceptions.SSLError as exc:
            raise ServerError(
                f"TLS verification of {self.endpoint.server} failed: {_ssl_reason(exc)}",
                "pass --certificate-authority, or set certificate-authority-data on the "
                "kubeconfig cluster together with provideClusterInfo: true",
            ) from None
        except requests.exceptions.Timeout:
            raise ServerError(f"the API server at {self.endpoint.server} did not answer in time",
                              "check the server address and your network") from None
        except requests.exceptions.ConnectionError:
            raise ServerError(f"cannot reach the API server at {self.endpoint.server}",
                              "check the server address and your network") from None
        if resp.status_code >= 400:
            raise status_error(resp, self.auth)
        return resp

    def get(self, path: str, params: dict | None = None) -> dict:
        return _json_body(self.request("GET", path, params=params))

    def post(self, path: str, body: dict) -> dict:
        return _json_body(self.request("POST", path, body=body))

    def watch(self, path: str, params: dict, timeout: float) -> Iterator[dict]:
        """Watch events until the server ends the stream (it is told to after `timeout`)."""
        params = {**params, "watch": "true", "timeoutSeconds": str(max(1, int(timeout)))}
        resp = self.request("GET", path, params=params, stream=True,
                            timeout=(self.timeout, timeout + 15))
        try:
            for line in resp.iter_lines():
                if line:
                    try:
                        yield json.loads(line)
                    except ValueError:
                        raise ServerError("the API server sent a malformed watch event") from None
        except requests.exceptions.RequestException:
            return  # a broken stream ends this watch; the caller re-reads the object
        finally:
            resp.close()


def _json_body(resp: requests.Response) -> dict:
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise ServerError(f"the API server sent a response that is not a JSON object "
                          f"({resp.request.method} {urlsplit(resp.url).path})")
    return doc


def _ssl_reason(exc: BaseException) -> str:
    """OpenSSL's own words (`self-signed certificate in certificate chain`, a hostname
    mismatch), found through the layers requests and urllib3 wrap around them."""
    seen: BaseException | None = exc
    for _ in range(8):
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or "the server's certificate is not trusted"
        if seen is None:
            break
        inner = getattr(seen, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in seen.args if isinstance(a, BaseException)), None)
        seen = inner or seen.__context__
    return "the server's certificate is not trusted"


def status_error(resp: requests.Response, auth: Auth) -> ServerError:
    """A Kubernetes `Status` error as one line and a hint."""
    try:
        doc = resp.json()
        message = doc.get("message") if isinstance(doc, dict) else None
    except ValueError:
        message = None
    message = message or resp.reason or "error"
    what = f"{resp.request.method} {urlsplit(resp.url).path}"
    who = getattr(auth, "source", "") or "the bootstrap credential"
    if resp.status_code == 401:
        return ServerError(f"the API server did not accept {who} (401 Unauthorized)",
                           "check that the bootstrap token or certificate is current")
    if resp.status_code == 403:
        return ServerError(f"forbidden: {message}",
                           "the bootstrap identity needs RBAC to create and watch "
                           "certificatesigningrequests (see the README's RBAC section)")
    return ServerError(f"{what} failed ({resp.status_code}): {message}")
