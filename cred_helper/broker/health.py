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

import asyncio
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from ..errors import UsageError, os_reason

# Connections held at once (each costs at most about 2 * MAX_REQUEST, and a descriptor well
# within a container's usual limit of 1024). One more closes the oldest that has not finished
# its request: a crowd that connects and waits cannot keep out the kubelet's probe, which asks
# at once. A flood of new connections far beyond this is for a NetworkPolicy to stop.
MAX_CLIENTS = 256
CLIENT_TIMEOUT = 2.0  # seconds a client has, in all, to send its request line and headers
MAX_REQUEST = 8192  # bytes of request line and headers; a probe sends about 150


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


def answer(head: bytes, health: Health) -> tuple[int, str]:
    """Pure: the status and text for a request whose line and headers are `head`."""
    line = head.split(b"\r\n", 1)[0]
    words = line.split(b" ")
    if len(words) != 3 or not words[2].startswith(b"HTTP/1."):
        return 400, "bad request"
    if words[0] != b"GET":
        return 405, "only GET"
    judge = {b"/livez": health.live, b"/readyz": health.ready}.get(words[1])
    if judge is None:
        return 404, "not found: /livez or /readyz"
    problem = judge()
    return (503, problem) if problem else (200, "ok")


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           431: "Request Header Fields Too Large", 503: "Service Unavailable"}


def _response(status: int, text: str) -> bytes:
    body = (text + "\n").encode("utf-8", "replace")
    return (f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


class _Server:
    """One asyncio loop in a thread of its own: a connection costs a few kilobytes and no
    thread, so a crowd of clients cannot use up what the probes need."""

    def __init__(self, address: tuple[str, int], health: Health) -> None:
        self.health = health
        self._waiting: dict[asyncio.StreamWriter, None] = {}  # unanswered, oldest first
        self._tasks: set[asyncio.Task] = set()
        self._loop = asyncio.new_event_loop()
        try:
            self._server = self._loop.run_until_complete(asyncio.start_server(
                self._serve, address[0] or "0.0.0.0", address[1], limit=MAX_REQUEST))
        except BaseException:
            self._loop.close()
            raise
        self._thread = threading.Thread(target=self._loop.run_forever, name="health",
                                        daemon=True)
        self._thread.start()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._waiting[writer] = None
        if len(self._waiting) > MAX_CLIENTS:
            oldest = next(iter(self._waiting))
            self._waiting.pop(oldest)
            oldest.transport.abort()
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CLIENT_TIMEOUT)
            except asyncio.LimitOverrunError:
                status, text = 431, "request too large"
            else:
                status, text = answer(head, self.health)
            self._waiting.pop(writer, None)
            writer.write(_response(status, text))
            await asyncio.wait_for(writer.drain(), CLIENT_TIMEOUT)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, OSError):
            pass  # gone, silent or too slow: nothing to answer
        finally:
            self._waiting.pop(writer, None)
            writer.close()

    def shutdown(self) -> None:
        """Stop answering; safe to call more than once."""
        if self._loop.is_closed():
            return

        async def stop() -> None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()

    def server_close(self) -> None:
        self.shutdown()


def serve(address: str, health: Health) -> _Server:
    """Answer the probes on `address` from a thread of its own; `shutdown()` stops it."""
    host, port = parse_address(address)
    try:
        return _Server((host, port), health)
    except OSError as exc:
        raise UsageError(f"--health-address: cannot listen on {address}: {os_reason(exc)}",
                         "choose another port") from None
