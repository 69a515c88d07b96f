"""The redirect listener of the authorization-code grant (RFC 8252 §7.3): one HTTP request
on http://127.0.0.1:<ephemeral port>/callback carrying the code, checked against `state`.

Only an answer carrying this login's `state` ends the login (with its code, or with the
provider's error). Anything else that reaches the port (a stale tab, another page probing
loopback ports) gets an error page and changes nothing: the login waits on for the right
answer until its timeout."""

from __future__ import annotations

import html
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ..errors import CredHelperError, server_text

CALLBACK_PATH = "/callback"
PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>cred-helper</title></head>
<body style="font-family: sans-serif; margin: 3em">
<h1>{title}</h1><p>{text}</p></body></html>
"""


class AuthorizationResponse:
    """What the provider sent back: a code, or an error already worded for people."""

    def __init__(self, code: str = "", error: CredHelperError | None = None,
                 stray: bool = False) -> None:
        self.code = code
        self.error = error
        self.stray = stray  # not an answer to this login (wrong or missing state)


def check_response(query: str, state: str) -> AuthorizationResponse:
    """Pure: the authorization response in `query`, checked against the `state` we sent."""
    params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    if not secrets.compare_digest(params.get("state", "").encode(), state.encode()):
        return AuthorizationResponse(stray=True, error=CredHelperError(
            "this answer does not carry this login's state, so it was ignored",
            "finish the login in the browser tab cred-helper opened"))
    if "error" in params:
        detail = server_text(params["error"], 100)
        if params.get("error_description"):
            detail += f": {server_text(params['error_description'], 200)}"
        hint = "log in again and accept" if params["error"] == "access_denied" else None
        return AuthorizationResponse(error=CredHelperError(
            f"the OpenID provider refused the login ({detail})", hint))
    if not params.get("code"):
        return AuthorizationResponse(error=CredHelperError(
            "the OpenID provider's answer has no authorization code"))
    return AuthorizationResponse(code=params["code"])


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a browser's idle pre-connection must not hold a thread for ever

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != CALLBACK_PATH or self.server.answer is not None:
            self.send_error(404)
            return
        answer = check_response(parts.query, self.server.state)
        if answer.error is None:
            title, text = "Logged in", "You can close this tab and go back to the terminal."
        elif answer.stray:
            title, text = "Not this login", html.escape(answer.error.message) + \
                ". The login is still waiting for its own answer."
        else:
            title, text = "Login failed", html.escape(answer.error.message) + \
                ". Go back to the terminal."
        body = PAGE.format(title=title, text=text).encode()
        self.send_response(200 if answer.error is None else 400)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        if answer.stray:
            return  # the login goes on waiting for its own answer
        with self.server.lock:
            if self.server.answer is None:  # two right answers at once: the first counts
                self.server.answer = answer
                self.server.answered.set()

    def log_message(self, format: str, *args: object) -> None:
        pass  # stderr is for the user; the request line carries the code


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.answer: AuthorizationResponse | None = None
        self.answered = threading.Event()
        self.lock = threading.Lock()


class LoopbackRedirect:
    """Listens from construction until close(); `redirect_uri` names it to the provider."""

    def __init__(self, state: str) -> None:
        self._server = _Server(state)
        self.redirect_uri = f"http://127.0.0.1:{self._server.server_address[1]}{CALLBACK_PATH}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait(self, timeout: float) -> str:
        """The authorization code; CredHelperError on the provider's refusal or a timeout
        (answers with a wrong or missing state are ignored)."""
        if not self._server.answered.wait(timeout):
            raise CredHelperError("nobody completed the login in the browser in time",
                                  "run `cred-helper login` again")
        answer = self._server.answer
        assert answer is not None
        if answer.error is not None:
            raise answer.error
        return answer.code

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackRedirect:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
