"""The Kubernetes streaming protocols the gateway speaks itself, over WebSocket (`websockets`,
asyncio), to kube-apiserver, which passes them on to the kubelet:

- exec: `v5.channel.k8s.io`. Each binary message starts with its channel: 0 stdin, 1 stdout,
  2 stderr, 3 the final `Status` (a non-zero exit is `reason: NonZeroExitCode` with the code in
  `details.causes[].message`), 4 a terminal resize (`{"Width": W, "Height": H}`); v5 closes
  stdin with the message `ff 00`.
- port-forward: `v4.channel.k8s.io` (the kubelet's WebSocket port-forward; kube-apiserver 1.37
  proxies it as it is, and tunnels only kubectl's `SPDY/3.1+portforward.k8s.io`). For one port,
  channel 0 carries data and channel 1 errors; the first message on each is the port, two bytes
  little-endian.
- logs: `binary.k8s.io`, each message a piece of the log.

Trust is the cluster's CA alone (kube.ssl_context), no proxy from the environment, the
connection's own token or client certificate, and the person's impersonation headers. A refused
upgrade comes back as StreamError with the API server's own message (a 403 names what RBAC
refused the person).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ..errors import server_text
from ..kube import Auth, BearerAuth, Endpoint, TokenFileAuth, ssl_context
from ..net import USER_AGENT

EXEC_PROTOCOL = "v5.channel.k8s.io"
PORTFORWARD_PROTOCOL = "v4.channel.k8s.io"
LOGS_PROTOCOL = "binary.k8s.io"
STDIN, STDOUT, STDERR, STATUS, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255  # v5: [255, channel] closes that channel
MAX_MESSAGE = 1 << 20
OPEN_TIMEOUT = 15.0


class StreamError(Exception):
    """A stream that could not be opened or broke; `message` is one line for the person."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Target:
    """Where streams go and as whom: the API server, the gateway's own credential, and the
    person's impersonation headers."""

    endpoint: Endpoint
    auth: Auth
    headers: tuple[tuple[str, str], ...]

    def ssl(self) -> ssl.SSLContext:
        return ssl_context(self.endpoint, self.auth)


def exec_query(container: str, argv: Sequence[str], tty: bool) -> list[tuple[str, str]]:
    query = [("command", word) for word in argv]
    if container:
        query.append(("container", container))
    query += [("stdin", "true"), ("stdout", "true"), ("stderr", "false" if tty else "true"),
              ("tty", "true" if tty else "false")]
    return query


def exit_status(message: bytes) -> tuple[int, str]:
    """The exit code and, for a failure that is not an exit code, its message, from the
    `Status` on channel 3."""
    try:
        status = json.loads(message)
    except (ValueError, RecursionError):
        return 1, "the API server sent an unreadable exec status"
    if not isinstance(status, dict):
        return 1, "the API server sent an unreadable exec status"
    if status.get("status") == "Success":
        return 0, ""
    details = status.get("details")
    if status.get("reason") == "NonZeroExitCode" and isinstance(details, dict):
        causes = details.get("causes")
        for cause in causes if isinstance(causes, list) else []:
            if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
                code = str(cause.get("message", ""))
                if code.isascii() and code.isdigit() and int(code) < 256:
                    return int(code), ""
    message = status.get("message")
    return 1, server_text(message) if isinstance(message, str) and message else \
        "the command failed in the pod"


def resize_message(width: int, height: int) -> bytes:
    return bytes([RESIZE]) + json.dumps({"Width": width, "Height": height}).encode()


async def open_stream(target: Target, path: str, query: Sequence[tuple[str, str]],
                      protocol: str) -> Any:
    """An open WebSocket to `path` (websockets' ClientConnection); StreamError otherwise."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidHandshake, InvalidStatus

    server = target.endpoint.server.rstrip("/")
    url = "wss://" + server.removeprefix("https://") + path + "?" + urlencode(list(query))
    headers = list(target.headers)
    token = _token(target.auth)
    if token:
        headers.insert(0, ("Authorization", f"Bearer {token}"))
    class _Connect(connect):
        # Never follow a redirect: websockets would send the token and the person's
        # impersonation headers on to the Location, a path the grant never judged.
        def process_redirect(self, exc: Exception) -> Exception:
            return exc

    try:
        return await _Connect(
            url, ssl=target.ssl(), server_hostname=target.endpoint.tls_server_name or None,
            subprotocols=[protocol], additional_headers=headers, user_agent_header=USER_AGENT,
            proxy=None, compression=None, max_size=MAX_MESSAGE, open_timeout=OPEN_TIMEOUT,
            ping_interval=20, ping_timeout=20)
    except InvalidStatus as exc:
        raise StreamError(_refusal(exc.response.status_code, exc.response.body),
                          exc.response.status_code) from None
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise StreamError(f"cannot reach the API server at {server}: "
                          f"{server_text(str(exc), 120) or type(exc).__name__}") from None


async def messages(ws: Any) -> AsyncIterator[bytes]:
    """The stream's binary messages until it closes (a text message is read as UTF-8)."""
    from websockets.exceptions import ConnectionClosed

    try:
        async for message in ws:
            yield message if isinstance(message, bytes) else message.encode()
    except ConnectionClosed:
        return


def _token(auth: Auth) -> str:
    if isinstance(auth, BearerAuth):
        return auth.token
    if isinstance(auth, TokenFileAuth):
        return auth.token()
    return ""


def _refusal(status: int, body: bytes | None) -> str:
    """The API server's own words for a refused upgrade (a `Status` object)."""
    message = ""
    try:
        doc = json.loads(body or b"")
        if isinstance(doc, dict) and isinstance(doc.get("message"), str):
            message = doc["message"]
    except (ValueError, RecursionError):
        message = (body or b"").decode("utf-8", "replace")
    message = server_text(message) if message else f"HTTP {status}"
    if status == 403:
        return f"forbidden: {message}"
    return message
