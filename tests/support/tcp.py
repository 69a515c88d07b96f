"""A loopback TCP server that hands each connection to a function: the base of the test
servers that must say things an HTTP library would not (a hostile server, a CONNECT proxy)."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        pass  # clients hanging up mid-answer is what these servers are for


def serve(handle: Callable[[socketserver.StreamRequestHandler], None]
          ) -> socketserver.ThreadingTCPServer:
    """Listening on 127.0.0.1 (an ephemeral port) until `.shutdown()`."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            handle(self)

    server = _Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
