"""An HTTPS reverse proxy in front of kube-apiserver whose `Date` header runs `shift` seconds
ahead: the janitor judges ages by the API server's clock, so behind this proxy it lives
`shift` seconds in the future, and a debug container that exited a second ago has been gone
for hours. Tests write every time as the real server would (after the pod's creation, after
the container was added) and still find due pods without waiting for real hours.

    with ClockProxy(plane.url, plane.ca, shift=10 * 3600) as proxy:
        ... a kubeconfig whose server is proxy.url, trusting plane.ca ...

It serves with a certificate of the plane's own CA (so a client trusting the cluster trusts
it), forwards each request whole over TLS, and answers with the upstream's status, headers and
body; only `Date` is rewritten. No watches or streams (the janitor uses none). When the
upstream cannot be reached the client's connection is closed without an answer, as a server
that went away mid-request leaves it.
"""

from __future__ import annotations

import email.utils
import http.client
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from .pki import CA

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date",
              "server"}


class ClockProxy:
    def __init__(self, upstream: str, ca: CA, shift: float) -> None:
        self.upstream = urlsplit(upstream)
        self.ca = ca
        self.shift = shift
        self._httpd: ThreadingHTTPServer | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="clockproxy-")

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"https://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> ClockProxy:
        cert, key = self.ca.server_cert()
        tmp = Path(self._tmp.name)
        (tmp / "tls.crt").write_bytes(cert + self.ca.cert_pem)
        (tmp / "tls.key").write_bytes(key)
        serving = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        serving.load_cert_chain(tmp / "tls.crt", tmp / "tls.key")
        upstream = ssl.create_default_context(cadata=self.ca.cert_pem.decode())
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def date_time_string(self, timestamp: float | None = None) -> str:
                return email.utils.formatdate(time.time() + proxy.shift, usegmt=True)

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "content-length")}
                conn = http.client.HTTPSConnection(proxy.upstream.hostname or "127.0.0.1",
                                                   proxy.upstream.port, context=upstream,
                                                   timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except OSError:
                    self.close_connection = True  # no answer at all: as a server gone away
                    return
                finally:
                    conn.close()
                self.send_response(resp.status, resp.reason)
                for name, value in resp.getheaders():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.socket = serving.wrap_socket(self._httpd.socket, server_side=True)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        self._tmp.cleanup()

    def __enter__(self) -> ClockProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kubeconfig(self, plane_kubeconfig: Path, path: Path) -> Path:
        """A copy of a kubeconfig the plane wrote, pointing at this proxy instead."""
        text = plane_kubeconfig.read_text()
        origin = f"https://{self.upstream.netloc}"
        assert origin in text, origin
        path.write_text(text.replace(origin, self.url))
        path.chmod(0o600)
        return path
