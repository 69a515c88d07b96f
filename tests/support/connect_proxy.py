"""A loopback HTTP CONNECT proxy that records where it was asked to connect.

    with ConnectProxy() as proxy:
        ... proxy.url (http://127.0.0.1:PORT) ...
        assert proxy.targets == ["127.0.0.1:6443"]

Only CONNECT is served (what https through a proxy uses); the tunnel is a plain byte pipe, so
TLS stays end to end and the proxy sees no credential.
"""

from __future__ import annotations

import select
import socket
import socketserver

from .tcp import serve


class ConnectProxy:
    def __init__(self) -> None:
        self.targets: list[str] = []
        self.headers: list[dict[str, str]] = []
        self._server: socketserver.ThreadingTCPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ConnectProxy:
        self._server = serve(self._handle)
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> ConnectProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _handle(self, handler: socketserver.StreamRequestHandler) -> None:
        line = handler.rfile.readline(8192).decode("latin-1").split()
        headers: dict[str, str] = {}
        while True:
            header = handler.rfile.readline(8192).decode("latin-1")
            if header in ("\r\n", "\n", ""):
                break
            name, _, value = header.partition(":")
            headers[name.strip().lower()] = value.strip()
        if len(line) != 3 or line[0] != "CONNECT":
            handler.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        target = line[1]
        self.targets.append(target)
        self.headers.append(headers)
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except (OSError, ValueError):
            handler.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        handler.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        handler.wfile.flush()
        client = handler.connection
        with upstream:
            _pipe(client, upstream)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    socks = [a, b]
    while True:
        ready, _, _ = select.select(socks, [], [], 60)
        if not ready:
            return
        for sock in ready:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            (b if sock is a else a).sendall(data)
