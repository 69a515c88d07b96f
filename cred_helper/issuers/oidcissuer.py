"""The OIDC issuer: one credential from whichever grant can run. A stored refresh token first,
silently; else the configured grant, where a person is present for one that needs them.

The refresh token is stored with the `sub` of the login it came from (OpenID Connect Core
§12.2: a refreshed ID token must name the same person), and a rotated one is stored as soon as
it arrives, whatever happens to the rest of the answer: the one it replaced is spent, and using
a spent token makes strict providers revoke the whole family.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..errors import CredHelperError, server_text
from ..urls import parse
from .issued import Issued
from .oidc import (
    LOGIN_TIMEOUT,
    OIDCError,
    OIDCProvider,
    ProviderRefused,
    TokenResponse,
    pkce_pair,
    vschar,
)

if TYPE_CHECKING:
    from ..cache.secrets import NoSecrets, SecretStore


@dataclass(frozen=True)
class StoredRefresh:
    token: str = field(repr=False)
    sub: str  # "" where the login gave no ID token (or the record predates this field)


def encode_refresh(stored: StoredRefresh) -> str:
    return json.dumps({"refresh_token": stored.token, "sub": stored.sub})


def decode_refresh(text: str) -> StoredRefresh:
    """A stored record; a bare token (as older versions stored it) has no `sub`."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("refresh_token"), str) \
            and doc["refresh_token"]:
        sub = doc.get("sub")
        return StoredRefresh(doc["refresh_token"], sub if isinstance(sub, str) else "")
    return StoredRefresh(text, "")


def other_origin(url: str, issuer: str) -> str:
    """The origin of `url` when it is not the issuer's ("" when it is, or cannot be read)."""
    try:
        page, home = parse(url, "login page").origin, parse(issuer, "issuer").origin
    except CredHelperError:
        return ""
    return page if page != home else ""


class OIDCIssuer:
    """`browser` opens a URL and says whether it could; None when no browser is to be opened
    (`--no-browser`, or nowhere to open one)."""

    def __init__(self, settings: Settings, provider: OIDCProvider,
                 refresh_tokens: SecretStore | NoSecrets, key: str,
                 interactive: bool, say: Callable[[str], None],
                 browser: Callable[[str], bool] | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.s = settings
        self.provider = provider
        self.refresh_tokens = refresh_tokens
        self.key = key
        self.interactive = interactive
        self.say = say
        self.browser = browser
        self.clock = clock
        self.sleep = sleep

    def grant(self) -> str:
        """The grant `auto` stands for: a browser login where a browser can open."""
        if self.s.oidc_grant != "auto":
            return self.s.oidc_grant
        meta = self.provider.metadata
        if meta.authorization_endpoint and (self.browser is not None
                                            or not meta.device_authorization_endpoint):
            return "authcode"
        return "device"

    def issue(self) -> Issued:
        issued_at = self.clock()
        scopes = list(self.s.oidc_scopes)
        refreshed = self._refresh(scopes)
        if refreshed is not None:
            tokens, claims = refreshed
        else:
            tokens, nonce = self._log_in(scopes)
            claims = self.provider.validate(tokens.id_token, nonce) if tokens.id_token else {}
            if not tokens.id_token and not self.s.oidc_use_access_token:
                raise OIDCError("the provider sent no ID token",
                                "request the openid scope, or use --oidc-use-access-token")
            self._keep(tokens, claims.get("sub", ""))
        credential = tokens.access_token if self.s.oidc_use_access_token else tokens.id_token
        if self.s.oidc_use_access_token:
            end = issued_at + (tokens.expires_in or self.s.ttl)
        else:
            end = float(claims["exp"])
        username = claims.get("email") or claims.get("sub") or self.s.oidc_client_id
        groups = claims.get("groups")
        identity = {"username": str(username), "sub": str(claims.get("sub", "")),
                    "email": str(claims.get("email", "")),
                    "groups": [g for g in groups if isinstance(g, str)]
                    if isinstance(groups, list) else []}
        return Issued(status={"token": credential}, not_after=min(end, issued_at + self.s.ttl),
                      identity=identity, source=self.provider.issuer_url,
                      server=self.provider.issuer_url)

    # -- the refresh token --

    def _stored(self) -> StoredRefresh | None:
        text = self.refresh_tokens.load(self.key)
        stored = decode_refresh(text) if text else None
        if stored is not None and not vschar(stored.token):
            self.refresh_tokens.delete(self.key)  # kept by an older version: cannot be sent
            return None
        return stored

    def _keep(self, tokens: TokenResponse, sub: str) -> None:
        if tokens.refresh_token and not vschar(tokens.refresh_token):
            self.say("warning: the provider's refresh token is not printable ASCII, so it was "
                     "not kept (it could not be sent back); the next login needs you")
        elif tokens.refresh_token:
            self.refresh_tokens.save(self.key, encode_refresh(
                StoredRefresh(tokens.refresh_token, sub)))

    def _refresh(self, scopes: list[str]) -> tuple[TokenResponse, dict[str, Any]] | None:
        """Tokens and their checked claims through the stored refresh token; None when there
        is none, or it is dead (`invalid_grant`), or its answer cannot serve and a person is
        here to log in. Any other refusal (an outage, a misconfigured client) keeps it."""
        stored = self._stored()
        if stored is None:
            return None
        try:
            tokens = self.provider.refresh(stored.token, scopes)
        except ProviderRefused as exc:
            if exc.error != "invalid_grant":
                raise
            self.refresh_tokens.delete(self.key)
            if not self._can_log_in():
                raise CredHelperError(
                    "the refresh token is no longer valid (invalid_grant), and logging in "
                    "needs a person: kubectl ran cred-helper without a terminal",
                    f"run {self._login_command()} in a terminal") from None
            self.say("the refresh token is no longer valid (invalid_grant); logging in again")
            return None
        try:
            claims = self.provider.validate(tokens.id_token) if tokens.id_token else {}
        except OIDCError:
            self._keep(tokens, stored.sub)  # the one we sent is spent: keep the family alive
            raise
        if stored.sub and claims and claims["sub"] != stored.sub:
            self.refresh_tokens.delete(self.key)  # it now answers for someone else
            raise OIDCError(
                f"the provider's refresh answer is for another person (sub "
                f"{server_text(str(claims['sub']), 100)!r}, not {server_text(stored.sub, 100)!r}"
                "): it was not used, and the refresh token was forgotten",
                f"run {self._login_command()} again; if it repeats, tell the provider's "
                "administrator")
        self._keep(tokens, claims.get("sub") or stored.sub)
        if tokens.id_token or self.s.oidc_use_access_token:
            return tokens, claims
        if self._can_log_in():
            self.say("the provider's refresh answer has no ID token; logging in again")
            return None
        raise OIDCError("the provider's refresh answer has no ID token",
                        f"run {self._login_command()} in a terminal for a new one, or use "
                        "--oidc-use-access-token if the cluster takes the access token")

    # -- the grants that start a login --

    def _can_log_in(self) -> bool:
        return self.interactive or self.s.oidc_grant == "client-credentials"

    def _login_command(self) -> str:
        return (f"`cred-helper login --cluster={self.s.cluster}`" if self.s.cluster
                else "`cred-helper login` with the exec entry's arguments")

    def _log_in(self, scopes: list[str]) -> tuple[TokenResponse, str | None]:
        """Tokens, and the nonce the ID token must carry (None where the grant has none)."""
        if self.s.oidc_grant == "client-credentials":
            return self.provider.client_credentials([s for s in scopes if s != "openid"]), None
        if not self.interactive:
            raise CredHelperError("logging in needs a person, and kubectl ran cred-helper "
                                  "without a terminal",
                                  f"run {self._login_command()} in a terminal first")
        if self.grant() == "authcode":
            return self._authorization_code(scopes)
        device = self.provider.device_authorize(scopes)
        where = device.verification_uri_complete or device.verification_uri
        self.say(f"to log in, open {server_text(where, 500)} and confirm the code "
                 f"{device.user_code}")
        elsewhere = other_origin(where, self.provider.metadata.issuer)
        if elsewhere:
            self.say(f"note: that page is on {server_text(elsewhere, 200)}, not on the issuer "
                     f"{self.provider.metadata.issuer}; sign in there only if you expected it")
        return self.provider.poll_device(device, self.sleep), None

    def _authorization_code(self, scopes: list[str]) -> tuple[TokenResponse, str]:
        from .loopback import LoopbackRedirect

        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier, challenge = pkce_pair()
        meta = self.provider.metadata
        with LoopbackRedirect(state, meta.issuer, meta.iss_parameter_supported,
                              warn=self.say) as redirect:
            url = redirect.login_url(self.provider.authorization_url(
                scopes, redirect.redirect_uri, state, nonce, challenge))
            if self.browser is not None and self.browser(url):
                self.say(f"opened a browser to log in; if it did not open, visit {url} (once: "
                         "the link works one time)")
            else:
                self.say(f"to log in, open this URL in a browser on this machine (it works "
                         f"once): {url}")
            code = redirect.wait(LOGIN_TIMEOUT)
        return self.provider.exchange_code(code, verifier, redirect.redirect_uri), nonce
