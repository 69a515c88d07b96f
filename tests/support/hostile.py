"""A scripted misbehaving HTTP(S) server on loopback, for tests of the network edge.

    with HostileServer({"/apis": redirect_loop(), "/.well-known/": json_answer({...})}) as srv:
        run cred-helper against srv.url, trusting srv.ca_pem
        assert srv.requests == []   # or inspect what it saw

`script` is one answer for every request, a dict of path prefix -> answer (the longest prefix
wins; no match: a 404 Status); `by_request(choose)` picks an answer per request. An answer is
a callable taking the connection (`Conn`) and writing whatever it likes to it: well-formed HTTP
or not. The helpers below make the usual kinds of misbehaviour; the fuzz suite can compose its
own.
"""

from __future__ import annotations

import json
import socket
import socketserver
import ssl
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .pki import CA
from .tcp import serve


@dataclass
class Seen:
    """One request as the server read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Conn:
    sock: socket.socket  # the raw TCP socket (under TLS, the wrapped one)
    wfile: object
    request: Seen
    server: HostileServer = field(repr=False)

    def write(self, data: bytes) -> None:
        self.wfile.write(data)  # type: ignore[attr-defined]
        self.wfile.flush()  # type: ignore[attr-defined]


Answer = Callable[[Conn], None]
Script = Answer | dict[str, Answer]


# ---- answers --------------------------------------------------------------------------------

def _head(status: int, reason: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def by_request(choose: Callable[[Seen], Answer]) -> Answer:
    """An answer chosen from the request (its method, path, headers or body)."""
    return lambda conn: choose(conn.request)(conn)


def raw(data: bytes) -> Answer:
    """Exactly these bytes, then the connection closes."""
    return lambda conn: conn.write(data)


def body_answer(body: bytes, status: int = 200, content_type: str = "application/json",
                headers: dict[str, str] | None = None) -> Answer:
    head = {"Content-Type": content_type, "Content-Length": str(len(body)),
            "Connection": "close", **(headers or {})}
    return raw(_head(status, "X", head) + body)


def json_answer(doc: object, status: int = 200) -> Answer:
    return body_answer(json.dumps(doc).encode(), status)


def html(status: int = 200) -> Answer:
    return body_answer(b"<html><body><h1>Sign in to continue</h1></body></html>", status,
                       "text/html")


def redirect(location: str, status: int = 302) -> Answer:
    return raw(_head(status, "Found", {"Location": location, "Content-Length": "0",
                                       "Connection": "close"}))


def redirect_loop(status: int = 302) -> Answer:
    """A redirect back to the very path asked for."""
    return lambda conn: redirect(conn.request.path, status)(conn)


def broken_chunked() -> Answer:
    return raw(_head(200, "OK", {"Content-Type": "application/json",
                                 "Transfer-Encoding": "chunked", "Connection": "close"})
               + b"5\r\n{\"a\":\r\nzz-not-hex\r\n")


def truncated(body: bytes = b'{"kind": "Status", "message": "cut', claimed: int = 4096
              ) -> Answer:
    """A Content-Length promising more than is sent before the connection closes."""
    return raw(_head(200, "OK", {"Content-Type": "application/json",
                                 "Content-Length": str(claimed), "Connection": "close"}) + body)


def huge_line(size: int = 24 << 20, chunked: bool = True) -> Answer:
    """One line of `size` bytes with no newline (a watch stream gone mad)."""
    def answer(conn: Conn) -> None:
        headers = {"Content-Type": "application/json", "Connection": "close"}
        headers["Transfer-Encoding" if chunked else "Content-Length"] = \
            "chunked" if chunked else str(size)
        conn.write(_head(200, "OK", headers))
        block = b"x" * (256 << 10)
        sent = 0
        try:
            while sent < size:
                part = block[:size - sent]
                conn.write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
                sent += len(part)
            if chunked:
                conn.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client gave up, as it should
    return answer


def slow(seconds: float = 60) -> Answer:
    """Read the request, then say nothing for `seconds`."""
    def answer(conn: Conn) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not conn.server.stopping:
            time.sleep(0.05)
    return answer


def reset() -> Answer:
    """Drop the connection with a TCP reset."""
    def answer(conn: Conn) -> None:
        raw_sock = getattr(conn.sock, "_hostile_raw", conn.sock)
        raw_sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw_sock.close()
    return answer


def not_http() -> Answer:
    return raw(b"SSH-2.0-OpenSSH_9.6\r\n")


# ---- the server -----------------------------------------------------------------------------

class HostileServer:
    def __init__(self, script: Script, tls: bool = True, ca: CA | None = None) -> None:
        self.script = script
        self.tls = tls
        self.ca = ca or CA("hostile-ca")
        self.requests: list[Seen] = []
        self.connections = 0  # TCP connections accepted (a refused TLS handshake counts)
        self.stopping = False
        self._tmp = tempfile.mkdtemp(prefix="hostile-")
        self._server: socketserver.ThreadingTCPServer | None = None
        self._ctx: ssl.SSLContext | None = None

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert_pem

    def ca_file(self) -> str:
        path = Path(self._tmp) / "ca.crt"
        path.write_bytes(self.ca_pem)
        return str(path)

    @property
    def url(self) -> str:
        assert self._server is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> HostileServer:
        if self.tls:
            cert_pem, key_pem = self.ca.server_cert()
            chain, key = Path(self._tmp) / "tls.crt", Path(self._tmp) / "tls.key"
            chain.write_bytes(cert_pem + self.ca.cert_pem)
            key.write_bytes(key_pem)
            self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ctx.load_cert_chain(str(chain), str(key))
        self._server = serve(self._handle)
        return self

    def stop(self) -> None:
        self.stopping = True
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _answer_for(self, seen: Seen) -> Answer:
        script = self.script
        if isinstance(script, dict):
            matches = [p for p in script if seen.path.startswith(p)]
            if not matches:
                return json_answer({"kind": "Status", "status": "Failure", "code": 404,
                                    "reason": "NotFound", "message": "not found"}, 404)
            return script[max(matches, key=len)]
        return script

    def _handle(self, handler: socketserver.StreamRequestHandler) -> None:
        self.connections += 1
        sock = handler.request
        sock.settimeout(10)
        if self._ctx is not None:
            try:
                tls = self._ctx.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError):
                return  # the client refused our certificate: nothing was sent to us
            tls._hostile_raw = sock  # type: ignore[attr-defined]
            sock = tls
            rfile, wfile = sock.makefile("rb"), sock.makefile("wb")
        else:
            rfile, wfile = handler.rfile, handler.wfile
        try:
            line = rfile.readline(65537).decode("latin-1").strip()
            if not line:
                return
            method, _, rest = line.partition(" ")
            path = rest.rpartition(" ")[0] or rest
            headers: dict[str, str] = {}
            while True:
                header = rfile.readline(65537).decode("latin-1")
                if header in ("\r\n", "\n", ""):
                    break
                name, _, value = header.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            body = rfile.read(length) if length else b""
            seen = Seen(method, path, headers, body)
            self.requests.append(seen)
            self._answer_for(seen)(Conn(sock, wfile, seen, self))
        except (OSError, ValueError):
            pass
        finally:
            try:
                wfile.close()
                sock.close()
            except OSError:
                pass
