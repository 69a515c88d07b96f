"""`approver run --health-address`: what the kubelet's probes ask of a leader-elected loop.

Two replicas run; the Lease picks the one that acts. What a probe can usefully say:

- **live** (`/livez`): every part of the process keeps its promise to show a sign of life in
  time: the Lease thread (one round: read, renew, pause) and the approver's loop (one watch
  stream, or one CSR decided). A part that died on a surprise, or hangs, makes the pod fail
  this, and the kubelet restarts it. That matters most for a leader whose loop hangs while its
  Lease thread still renews: nobody else may act, and nothing else would notice.
- **ready** (`/readyz`): live, and the latest exchange with the API server worked (a Lease round,
  a list or a watch). A replica that cannot reach the API server shows 0/1 in `kubectl get pods`
  and counts as unhealthy for the PodDisruptionBudget, but stays live: a restart would not bring
  the API server back, and every replica restarting at once would only add load when it returns.

The standby is ready too when healthy: its job is to take over, and the budget should count it.
Only the words "ok" or a reason go out; nothing about CSRs or requesters.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from ..errors import UsageError, os_reason

MAX_CLIENTS = 8  # probes come one at a time; more at once is not the kubelet
CLIENT_TIMEOUT = 2.0  # seconds a client may take to send its request line and headers


class Health:
    """Signs of life and the API server's latest answer, judged against a monotonic clock.
    Safe to call from several threads."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._due: dict[str, tuple[float, float]] = {}  # part -> (next beat due, promised)
        self._failing = "the API server has not answered yet"

    def beat(self, part: str, within: float) -> None:
        """`part` is alive, and promises its next beat within `within` seconds."""
        with self._lock:
            self._due[part] = (self._clock() + within, within)

    def answered(self) -> None:
        """An exchange with the API server worked."""
        with self._lock:
            self._failing = ""

    def failed(self, why: str) -> None:
        """An exchange with the API server failed; `why` is one line, no secrets."""
        with self._lock:
            self._failing = why or "the API server failed"

    def live(self) -> str:
        """"" when every part kept its promise, else what is wrong."""
        now = self._clock()
        with self._lock:
            for part, (due, within) in sorted(self._due.items()):
                if now > due:
                    return (f"{part}: no sign of life for {now - due + within:.0f}s (promised "
                            f"within {within:.0f}s)")
        return ""

    def ready(self) -> str:
        """"" when live and the API server's latest answer was good, else what is wrong."""
        dead = self.live()
        if dead:
            return dead
        with self._lock:
            return self._failing


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (every address) or `[IPv6]:PORT`."""
    try:
        parts = urlsplit("//" + text)
        port = parts.port
    except ValueError:
        port = None
    if port is None or not 0 < port < 65536 or parts.path or parts.query or parts.username:
        raise UsageError(f"--health-address: {text!r} is not HOST:PORT",
                         "e.g. :8081 (every address of the pod) or 127.0.0.1:8081")
    return parts.hostname or "", port


class _Handler(http.server.BaseHTTPRequestHandler):
    timeout = CLIENT_TIMEOUT
    server: _Server

    def do_GET(self) -> None:
        judge = {"/livez": self.server.health.live,
                 "/readyz": self.server.health.ready}.get(self.path)
        if judge is None:
            self._answer(404, "not found: /livez or /readyz")
            return
        problem = judge()
        self._answer(503 if problem else 200, problem or "ok")

    def _answer(self, status: int, text: str) -> None:
        body = (text + "\n").encode("utf-8", "replace")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # a probe every few seconds is not news; stdout carries decisions only


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], health: Health) -> None:
        self.health = health
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        # A client that connects and waits holds a thread for CLIENT_TIMEOUT at most, and no
        # more than MAX_CLIENTS at once: the rest are closed unanswered.
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def serve(address: str, health: Health) -> _Server:
    """Answer the probes on `address` from a thread of its own; `shutdown()` stops it."""
    host, port = parse_address(address)
    try:
        server = _Server((host, port), health)
    except OSError as exc:
        raise UsageError(f"--health-address: cannot listen on {address}: {os_reason(exc)}",
                         "choose another port") from None
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
