"""Talking to a Kubernetes API server: bearer or client-certificate auth on top of the network
edge (net.py), and `Status` errors turned into one-line messages with hints.

TLS is always verified, against exactly the CA the cluster was given (see net.py); there is no
way to switch verification off.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

from . import net
from .errors import BadShape, ServerError, server_text

API_SERVER = net.Peer(
    "the API server", ServerError,
    tls_hint="pass --certificate-authority, or set certificate-authority-data on the "
             "kubeconfig cluster together with provideClusterInfo: true",
)


@dataclass(frozen=True)
class Endpoint:
    server: str
    ca_pem: bytes = b""  # empty: the OS trust store
    tls_server_name: str = ""
    proxy_url: str = ""  # the kubeconfig cluster's proxy-url; empty: HTTPS_PROXY / NO_PROXY


@dataclass(frozen=True)
class BearerAuth:
    token: str = field(repr=False)
    source: str = ""
    # What to check when the API server answers 401; empty: the bootstrap token's hint.
    refused_hint: str = ""


@dataclass(frozen=True)
class ClientCertAuth:
    cert_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)
    source: str = ""
    # Where the key may sit for a moment where memfd is missing: the cache directory, never
    # $TMPDIR (see net.load_client_cert).
    spill_dir: str = field(default="")


class TokenFileAuth:
    """A bearer token read from a file that is replaced while we run (a pod's projected service
    account token rotates hourly): read again once a minute, as client-go does, and at once
    after a 401."""

    def __init__(self, path: str, source: str = "", refused_hint: str = "",
                 clock: Callable[[], float] = time.monotonic, period: float = 60.0) -> None:
        self.path = path
        self.source = source or f"the token in {path}"
        self.refused_hint = refused_hint
        self._clock = clock
        self._period = period
        self._token = ""
        self._read_at: float | None = None

    def token(self, fresh: bool = False) -> str:
        now = self._clock()
        if fresh or self._read_at is None or now - self._read_at >= self._period:
            from .kubeconfig import read_file

            data = read_file(self.path, "service account token", "the token file")
            try:
                token = data.decode("ascii").strip()
            except UnicodeDecodeError:
                token = ""
            self._token = net.check_header(token, self.source, API_SERVER)
            self._read_at = now
        return self._token


Auth = BearerAuth | ClientCertAuth | TokenFileAuth | None

Response = net.Response


def ssl_context(endpoint: Endpoint, auth: Auth):
    """Trust exactly the endpoint's CA (else the OS store, never the environment's)."""
    if endpoint.ca_pem:
        ctx = net.exact_trust(endpoint.ca_pem, API_SERVER, "the cluster's certificate-authority")
    else:
        ctx = net.os_trust_without_env()
    if isinstance(auth, ClientCertAuth):
        net.load_client_cert(ctx, auth.cert_pem, auth.key_pem, API_SERVER,
                             auth.source or "the kubeconfig", auth.spill_dir)
    return ctx


class KubeClient:
    def __init__(self, endpoint: Endpoint, auth: Auth, timeout: float = 30,
                 extra_headers: tuple[tuple[str, str], ...] = ()) -> None:
        url = net.parse(endpoint.server, "API server", ServerError)
        if url.scheme != "https":
            raise ServerError(f"API server {endpoint.server!r} is not an https:// URL",
                              "cred-helper only talks to API servers over verified TLS")
        self.endpoint = endpoint
        self.auth = auth
        self.timeout = timeout
        self._headers = {"Accept": "application/json"}
        # Sent with every request, names may repeat (the gateway's impersonation headers).
        self._extra = extra_headers
        if isinstance(auth, BearerAuth):
            token = net.check_header(auth.token, auth.source or "the bootstrap token",
                                     API_SERVER)
            self._headers["Authorization"] = f"Bearer {token}"
        self._http = net.Client(API_SERVER, ssl_context(endpoint, auth),
                                net.Proxy(fixed=endpoint.proxy_url), endpoint.tls_server_name,
                                read_timeout=timeout)

    def url(self, path: str, params: dict | None = None) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return self.endpoint.server.rstrip("/") + path + query

    def request(self, method: str, path: str, body: dict | None = None,
                params: dict | None = None, stream: bool = False,
                timeout: float | tuple[float, float] | None = None,
                max_body: int = net.MAX_BODY) -> net.Response:
        headers = dict(self._headers)
        if isinstance(self.auth, TokenFileAuth):
            headers["Authorization"] = f"Bearer {self.auth.token()}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        read = timeout[1] if isinstance(timeout, tuple) else timeout
        resp = self._http.request(method, self.url(path, params),
                                  headers=[*headers.items(), *self._extra], body=data,
                                  read_timeout=read, stream=stream, max_body=max_body)
        if resp.status_code == 401 and isinstance(self.auth, TokenFileAuth):
            # The file may have been rotated since we read it: once more with what it holds.
            resp.close()
            headers["Authorization"] = f"Bearer {self.auth.token(fresh=True)}"
            resp = self._http.request(method, self.url(path, params),
                                      headers=[*headers.items(), *self._extra],
                                      body=data, read_timeout=read, stream=stream,
                                      max_body=max_body)
        if resp.status_code >= 400:
            if stream:
                resp.content = _read_small(resp)
            raise status_error(resp, self.auth)
        return resp

    def get(self, path: str, params: dict | None = None) -> dict:
        return _json_body(self.request("GET", path, params=params))

    def post(self, path: str, body: dict) -> dict:
        return _json_body(self.request("POST", path, body=body))

    def put(self, path: str, body: dict) -> dict:
        return _json_body(self.request("PUT", path, body=body))

    def watch(self, path: str, params: dict, timeout: float) -> Iterator[dict]:
        """Watch events until the server ends the stream (it is told to after `timeout`).
        Each event is an object with a `type` and an `object`; anything else is one error."""
        params = {**params, "watch": "true", "timeoutSeconds": str(max(1, int(timeout)))}
        resp = self.request("GET", path, params=params, stream=True, timeout=timeout + 15)
        for line in resp.iter_lines(end_on_break=True):
            try:
                event = json.loads(line)
            except (ValueError, RecursionError):
                event = None
            if not (isinstance(event, dict) and isinstance(event.get("type"), str)
                    and isinstance(event.get("object"), dict)):
                resp.close()
                raise BadShape(f"the API server at {resp.origin} sent a malformed watch event")
            yield event


def _read_small(resp: net.Response) -> bytes:
    try:
        return b"\n".join(line for _, line in zip(range(64), resp.iter_lines(), strict=False))
    except ServerError:
        return b""


def _json_body(resp: net.Response) -> dict:
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise ServerError(f"the API server at {resp.origin} sent a response that is not a "
                          f"JSON object ({resp.method} {resp.path})")
    return doc


def status_error(resp: net.Response, auth: Auth) -> ServerError:
    """A Kubernetes `Status` error as one line and a hint, carrying the HTTP status."""
    error = _status_error(resp, auth)
    error.status = resp.status_code
    error.status_reason, error.cause_types, error.status_message = _status_details(resp)
    # Overloaded or restarting: kube-apiserver answers 429 (with Retry-After) or 5xx.
    error.transient = resp.status_code == 429 or resp.status_code >= 500
    return error


def _status_details(resp: net.Response) -> tuple[str, tuple[str, ...], str]:
    """The `Status` reason, its causes' types and its message, shape-checked (the server's
    text, bounded)."""
    try:
        doc = resp.json()
    except ValueError:
        return "", (), ""
    if not isinstance(doc, dict):
        return "", (), ""
    reason, message = doc.get("reason"), doc.get("message")
    details = doc.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    # A cause's type travels as `reason` (metav1.StatusCause: Type `json:"reason"`).
    types = tuple(server_text(c["reason"], 100) for c in causes[:20]
                  if isinstance(c, dict) and isinstance(c.get("reason"), str)) \
        if isinstance(causes, list) else ()
    return (server_text(reason, 100) if isinstance(reason, str) else "", types,
            server_text(message) if isinstance(message, str) else "")


def _status_error(resp: net.Response, auth: Auth) -> ServerError:
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    message = doc.get("message") if isinstance(doc, dict) else None
    if not isinstance(message, str) or not message:
        message = resp.reason or "error"
    message = server_text(message)  # one line, whatever the server sent
    what = f"{resp.method} {resp.path}"
    who = getattr(auth, "source", "") or "the bootstrap credential"
    if resp.status_code == 401:
        return ServerError(f"the API server at {resp.origin} did not accept {who} "
                           "(401 Unauthorized)",
                           getattr(auth, "refused_hint", "")
                           or "check that the bootstrap token or certificate is current")
    if resp.status_code == 403:
        return ServerError(f"forbidden: {message}",
                           "the bootstrap identity needs RBAC to create and watch "
                           "certificatesigningrequests (docs/admin/rbac.md: The requesters' role)")
    return ServerError(f"{what} at {resp.origin} failed ({resp.status_code}): {message}")
