"""The redirect listener of the authorization-code grant (RFC 8252 §7.3): one HTTP request
on http://127.0.0.1:<ephemeral port>/callback carrying the code, checked against `state` and,
per RFC 9207, against the issuer.

Only an answer carrying this login's `state` ends the login (with its code, or with the
provider's error). Anything else that reaches the port (a stale tab, another page probing
loopback ports) gets an error page and changes nothing: the login waits on for the right
answer until its timeout.

The browser is not given the authorization URL itself: a browser's command line is readable
by every user of the machine (/proc/PID/cmdline), and with `state`, nonce and code challenge
another user could sign in as themselves and hand their code to this listener. It is given a
one-time link to this listener instead, which redirects to the provider: the link works once,
and a second fetch ends the login. Where the kernel says who connects (Linux), requests from
another user are refused outright, on the link and on the callback alike.
"""

from __future__ import annotations

import html
import os
import secrets
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .. import peeruid
from ..errors import CredHelperError, server_text

CALLBACK_PATH = "/callback"
LOGIN_PATH = "/login/"
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


def check_response(query: str, state: str, issuer: str,
                   iss_required: bool) -> AuthorizationResponse:
    """Pure: the authorization response in `query`, checked against the `state` we sent and
    the `issuer` we sent it to. `iss` is compared whenever present and required when the
    provider's discovery document promises it (RFC 9207 §2.4): a mix-up, where another
    provider answers, is refused before its code goes anywhere."""
    params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    if not secrets.compare_digest(params.get("state", "").encode(), state.encode()):
        return AuthorizationResponse(stray=True, error=CredHelperError(
            "this answer does not carry this login's state, so it was ignored",
            "finish the login in the browser tab cred-helper opened"))
    mix_up_hint = ("another provider may be trying to capture this login (a mix-up attack, "
                   "RFC 9207): log in again; if it repeats, check --oidc-issuer-url and tell "
                   "your administrator")
    if "iss" in params and params["iss"] != issuer:
        return AuthorizationResponse(error=CredHelperError(
            f"the login's answer comes from the issuer {server_text(params['iss'], 200)!r}, "
            f"not from {issuer}, this profile's issuer: its code was not used", mix_up_hint))
    if "iss" not in params and iss_required:
        return AuthorizationResponse(error=CredHelperError(
            f"the login's answer names no issuer, although {issuer} says it always does: "
            "its code was not used", mix_up_hint))
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


def opened_twice() -> CredHelperError:
    return CredHelperError(
        "the one-time login link was opened twice, so this login was ended: another program "
        "or user may have opened it",
        "run `cred-helper login` again and open the link once; if it happens again, someone "
        "on this machine may be reading your browser's command line")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a browser's idle pre-connection must not hold a thread for ever

    def do_GET(self) -> None:
        if not self.server.admits(self.client_address[:2]):
            self._page(403, "Not your login", "This login belongs to another user of this "
                       "machine.")
            return
        parts = urlsplit(self.path)
        if parts.path == self.server.login_path and self.server.target:
            self._open_login()
            return
        if parts.path != CALLBACK_PATH or self.server.answer is not None:
            self.send_error(404)
            return
        answer = check_response(parts.query, self.server.state, self.server.issuer,
                                self.server.iss_required)
        if answer.error is None:
            title, text = "Logged in", "You can close this tab and go back to the terminal."
        elif answer.stray:
            title, text = "Not this login", html.escape(answer.error.message) + \
                ". The login is still waiting for its own answer."
        else:
            title, text = "Login failed", html.escape(answer.error.message) + \
                ". Go back to the terminal."
        self._page(200 if answer.error is None else 400, title, text)
        if not answer.stray:  # a stray answer leaves the login waiting for its own
            self.server.finish(answer)

    def _open_login(self) -> None:
        """The one-time link: the first fetch is sent on to the provider, a second one ends
        the login (someone else has the provider's URL, with this login's state)."""
        with self.server.lock:
            first = not self.server.opened
            self.server.opened = True
        if not first:
            self._page(400, "Login ended", "This login link was already used, so the login "
                       "was ended. Go back to the terminal.")
            self.server.finish(AuthorizationResponse(error=opened_twice()))
            return
        self.send_response(302)
        self.send_header("Location", self.server.target)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()

    def _page(self, status: int, title: str, text: str) -> None:
        body = PAGE.format(title=title, text=text).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # stderr is for the user; the request line carries the code


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: str, issuer: str, iss_required: bool,
                 warn: Callable[[str], None], tables: Callable[[], str], uid: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.issuer = issuer
        self.iss_required = iss_required
        self.warn = warn
        self.tables = tables
        self.uid = uid
        self.login_path = LOGIN_PATH + secrets.token_urlsafe(16)
        self.target = ""  # the provider's authorization URL, once known
        self.opened = False
        self.refused: set[object] = set()  # what a warning was said for
        self.answer: AuthorizationResponse | None = None
        self.answered = threading.Event()
        self.lock = threading.Lock()

    def admits(self, client: tuple[str, int]) -> bool:
        """Whether the connection from `client` is this user's (or nobody can tell here).
        Tables that exist but cannot be read now refuse: nobody can tell who it is."""
        try:
            found = peeruid.owner(self.tables(), client, self.server_address[:2])
        except peeruid.Unreadable as exc:
            self._tell("unreadable", f"could not tell who connects to the login listener "
                       f"({exc}), so the request was refused; the login goes on")
            return False
        if not found.checkable or found.uid == self.uid:
            return True
        who = f"uid {found.uid}" if found.uid is not None else "a closed connection"
        self._tell(found.uid, f"refused a request to the login listener from another user of "
                   f"this machine ({who}); the login goes on")
        return False

    def _tell(self, what: object, message: str) -> None:
        """`message`, the first time only for `what`."""
        with self.lock:
            told = what in self.refused
            self.refused.add(what)
        if not told:
            self.warn(message)

    def handle_error(self, request: object, client_address: object) -> None:
        """In place of socketserver's traceback on stderr: a client gone mid-answer (a closed
        tab, a reset) is nothing to tell; anything else is a bug, which ends the login."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        self.finish(AuthorizationResponse(error=CredHelperError(
            f"unexpected {type(exc).__name__} in the login listener", "report it")))

    def finish(self, answer: AuthorizationResponse) -> None:
        with self.lock:
            if self.answer is None:  # two answers at once: the first counts
                self.answer = answer
                self.answered.set()


class LoopbackRedirect:
    """Listens from construction until close(); `redirect_uri` names it to the provider,
    `login_url` gives the one-time link the browser opens.

    `tables` and `uid` say who connects (the kernel's TCP tables, this process's user)."""

    def __init__(self, state: str, issuer: str, iss_required: bool = False,
                 warn: Callable[[str], None] = lambda message: None,
                 tables: Callable[[], str] = peeruid.read_tables,
                 uid: int | None = None) -> None:
        self._server = _Server(state, issuer, iss_required, warn, tables,
                               os.geteuid() if uid is None else uid)
        self._origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.redirect_uri = self._origin + CALLBACK_PATH
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def login_url(self, authorization_url: str) -> str:
        """The one-time link that sends the browser on to `authorization_url`."""
        self._server.target = authorization_url
        return self._origin + self._server.login_path

    def wait(self, timeout: float) -> str:
        """The authorization code; CredHelperError on the provider's refusal, a mix-up, a
        link opened twice, or a timeout (answers with a wrong or missing state are ignored)."""
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
