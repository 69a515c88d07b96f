"""OpenID Connect: discovery, the provider's keys, grants, client authentication, the checks
an ID token must pass before it is cached or printed, and what of a provider's error text may
be shown. (Which grant runs, and the refresh token's keeping: oidcissuer.py.)

HTTP goes through the network edge (`net.Client`, built by `http_client`) passed in; time
comes from a clock passed in. The provider is trusted through --oidc-certificate-authority, else
the OS store; plain http is accepted only for loopback issuers, where a local provider runs.
Every answer is checked by shape: a wrong type is one OIDCError naming the provider.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, quote_plus, urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from .. import net
from ..errors import CredHelperError, UsageError, server_text
from ..urls import check_issuer_url, parse, provider_url_ok

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# Asymmetric algorithms only: never `none`, never HMAC (a public key must not become a secret).
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                       "ES256", "ES384", "ES512", "EdDSA")
MAX_SKEW = 120
ASSERTION_LIFETIME = 60
# How long a person has to finish a browser or device login; issuance holds the entry's lock
# meanwhile, so other kubectl processes wait this long (plus a margin) before giving up.
LOGIN_TIMEOUT = 900
MAX_POLL_INTERVAL = 60


class OIDCError(CredHelperError):
    """The provider refused, or answered something we must not use."""


# Answers that say a request was not taken at that URL: nothing is there (any more).
MOVED = (301, 302, 303, 307, 308, 404, 405, 410)


class EndpointMoved(OIDCError):
    """An endpoint the discovery document names answered as if nothing were there."""


PROVIDER = net.Peer(
    "the OpenID provider", OIDCError,
    tls_hint="pass --oidc-certificate-authority with the provider's CA bundle (or set "
             "SSL_CERT_FILE); REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE are not read",
    reach_hint="check --oidc-issuer-url and your network",
)


def http_client(ca_file: str = "", environ: Mapping[str, str] | None = None) -> net.Client:
    """The provider's connection: its own CA when given, else the OS trust store; proxies
    from the environment only (HTTPS_PROXY, NO_PROXY), as kubelogin."""
    ca = b""
    if ca_file:
        from ..kubeconfig import read_file

        ca = read_file(ca_file, "CA bundle", "--oidc-certificate-authority")
    # Plain http reaches only this machine: a name must resolve to loopback addresses alone.
    return net.Client(PROVIDER, net.provider_trust(ca, PROVIDER, ca_file), net.Proxy(
        environ=environ), plain_http_loopback_only=True)


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str  # exactly as the discovery document names it
    token_endpoint: str
    jwks_uri: str
    authorization_endpoint: str = ""
    device_authorization_endpoint: str = ""
    # RFC 9207: the provider says its authorization responses always carry `iss`.
    iss_parameter_supported: bool = False


@dataclass(frozen=True)
class TokenResponse:
    access_token: str = field(repr=False)
    expires_in: int | None
    id_token: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    scope: str = ""


@dataclass(frozen=True)
class DeviceAuthorization:
    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


# ---- client authentication -----------------------------------------------------------------

class ClientAuth(Protocol):
    def apply(self, data: dict[str, str], client_id: str, token_endpoint: str,
              now: float) -> tuple[str, str] | None:
        """Add credentials to a token request's form; return HTTP basic auth, if used."""


class NoClientAuth:
    """A public client: the client id alone, with PKCE where a code is exchanged."""

    def apply(self, data, client_id, token_endpoint, now):
        data["client_id"] = client_id
        return None


@dataclass(frozen=True)
class ClientSecretAuth:
    secret: str = field(repr=False)
    method: str = "basic"  # or "post"

    def apply(self, data, client_id, token_endpoint, now):
        if self.method == "post":
            data.update(client_id=client_id, client_secret=self.secret)
            return None
        return client_id, self.secret


def jwt_algorithm(key: Any) -> str:
    """The JWS algorithm for a private key object (software or token-backed alike)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP384R1):
        return "ES384"  # ykcs11 offers P-384 too
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    raise UsageError("the client key must be Ed25519, EC P-256 / P-384 or RSA")


@dataclass(frozen=True)
class PrivateKeyJWTAuth:
    """RFC 7523 client assertion. `key` is any cryptography private-key object: a key file's,
    or a token's whose sign() runs on the hardware."""

    key: Any = field(repr=False)
    kid: str = ""

    def apply(self, data, client_id, token_endpoint, now):
        claims = {"iss": client_id, "sub": client_id, "aud": token_endpoint,
                  "jti": secrets.token_urlsafe(16), "iat": int(now),
                  "exp": int(now) + ASSERTION_LIFETIME}
        headers = {"kid": self.kid} if self.kid else None
        data.update(client_id=client_id,
                    client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    client_assertion=jwt.encode(claims, self.key, algorithm=jwt_algorithm(
                        self.key), headers=headers))
        return None


# ---- ID token checks (pure) ----------------------------------------------------------------

def validate_id_token(token: str, jwks: dict, issuer: str, client_id: str, now: float,
                      nonce: str | None = None) -> dict[str, Any]:
    """The token's claims, if it is signed by one of the provider's keys with an allowed
    algorithm and its iss, aud (and azp), exp, iat and nonce are right; else OIDCError."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise OIDCError("the provider's ID token is not a JWT") from None
    alg = header.get("alg")
    if alg not in ID_TOKEN_ALGORITHMS:
        raise OIDCError(f"the ID token's algorithm {alg!r} is not allowed",
                        "the provider must sign ID tokens with an asymmetric key")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise OIDCError("the ID token's kid is not a string")
    claims = None
    for key in _find_keys(jwks, kid, alg):  # several only without a kid
        try:
            # Times are checked below against the clock we were given, not PyJWT's own.
            claims = jwt.decode(
                token, key, algorithms=[alg], audience=client_id, issuer=issuer,
                options={"require": ["iss", "aud", "exp", "iat", "sub"], "verify_exp": False,
                         "verify_iat": False, "verify_nbf": False},
            )
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidIssuerError:
            raise OIDCError("the ID token was issued by another issuer") from None
        except jwt.InvalidAudienceError:
            raise OIDCError("the ID token is for another client (aud)") from None
        except jwt.InvalidKeyError:
            raise KeyProblem("the provider's key cannot check the ID token's signature") \
                from None
        except jwt.InvalidTokenError as exc:
            raise OIDCError(f"the ID token is invalid: {server_text(str(exc), 200)}") from None
    if claims is None:
        raise KeyProblem("the ID token's signature does not verify")
    # exp and iat are required (PyJWT saw them); nbf, when present, is held to the same rule.
    if not all(_finite_number(claims[name]) for name in ("exp", "iat", "nbf")
               if name in claims):
        raise OIDCError("the ID token's times are not numbers")
    if claims["exp"] <= now - MAX_SKEW:
        raise OIDCError("the ID token has expired",
                        "check this machine's clock; then log in again")
    if claims["iat"] > now + MAX_SKEW or claims.get("nbf", 0) > now + MAX_SKEW:
        raise OIDCError("the ID token was issued in the future",
                        "check the clocks of this machine and the provider")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise OIDCError("the ID token has several audiences and azp is not this client")
    if "azp" in claims and claims["azp"] != client_id:
        raise OIDCError("the ID token's azp is another client")
    if nonce is not None and claims.get("nonce") != nonce:
        raise OIDCError("the ID token's nonce does not match this login",
                        "log in again; if it repeats, something is replaying tokens")
    return claims


class KeyProblem(OIDCError):
    """The provider's keys as we hold them cannot check this token: the token names a key we
    lack, a key of another type, or its signature fails. A copy of the keys kept from an
    earlier run may be out of date, so the caller fetches them again once."""


class UnknownKey(KeyProblem):
    pass


# The key type and curve each algorithm needs (RFC 7518 §3, RFC 8037).
_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}


def key_fits(key: Any, alg: str) -> bool:
    """Whether a public-key object can check an `alg` signature (PyJWT would raise a
    TypeError, not a verification failure, for a key of another type)."""
    if alg.startswith(("RS", "PS")):
        return isinstance(key, rsa.RSAPublicKey)
    if alg in _CURVES:
        return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == _CURVES[alg]
    if alg == "EdDSA":
        return isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey))
    return False


def _find_keys(jwks: dict, kid: str | None, alg: str) -> list[Any]:
    """The provider's signing keys that may have signed a token with this `kid` and `alg`."""
    try:
        keys = jwt.PyJWKSet.from_dict(jwks).keys
    except (jwt.PyJWTError, KeyError, TypeError, ValueError, AttributeError):
        # AttributeError too: PyJWT reads fields of keys whose members have the wrong types.
        raise OIDCError("the provider's JWKS has no usable keys") from None
    named = [k for k in keys if k.public_key_use in (None, "sig")
             and (kid is None or k.key_id == kid)]
    if not named:
        raise UnknownKey(f"the ID token is signed with a key the provider does not publish "
                         f"(kid {server_text(str(kid), 100)!r})")
    fitting = [k.key for k in named if key_fits(k.key, alg)]
    if not fitting:
        raise KeyProblem(f"the ID token's key (kid {server_text(str(kid), 100)!r}) is "
                         f"{_kind(named[0].key)}, which cannot check an {alg} signature")
    return fitting


def _kind(key: Any) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "an RSA key"
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = {v: k for k, v in _CURVES.items()}.get(key.curve.name, key.curve.name)
        return f"an EC key for {curve}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "an Ed25519 key"
    if isinstance(key, ed448.Ed448PublicKey):
        return "an Ed448 key"
    return "a key of another kind"


# ---- the provider --------------------------------------------------------------------------

class ProviderCache(Protocol):
    def load(self, issuer: str, now: float) -> tuple[dict, dict] | None: ...

    def save(self, issuer: str, discovery: dict, jwks: dict, now: float) -> None: ...


def same_issuer(configured: str, named: object) -> bool:
    """Whether the discovery document's issuer is the one configured. A trailing slash may
    differ: both spellings fetch the same document (OpenID Connect Discovery §4), so the
    document's own spelling is the issuer that tokens must then name exactly."""
    return isinstance(named, str) and \
        named.removesuffix("/") == configured.removesuffix("/")


def parse_metadata(doc: dict, issuer_url: str) -> ProviderMetadata:
    """The endpoints of a discovery document, each a string that passes the issuer's scheme
    rule (https; http on loopback only): a document must not send credentials elsewhere."""
    if not same_issuer(issuer_url, doc.get("issuer")):
        shown = doc.get("issuer")
        shown = server_text(shown, 200) if isinstance(shown, str) else \
            shown if shown is None else "?"
        raise OIDCError(f"the discovery document of {issuer_url} names issuer {shown!r}",
                        "set --oidc-issuer-url to exactly the provider's issuer")
    fields = {}
    for name in ("token_endpoint", "jwks_uri", "authorization_endpoint",
                 "device_authorization_endpoint"):
        value = doc.get(name, "")
        required = name in ("token_endpoint", "jwks_uri")
        if value in ("", None) and not required:
            fields[name] = ""
            continue
        if value in ("", None):
            raise OIDCError(f"the discovery document of {issuer_url} has no {name}")
        if not isinstance(value, str):
            raise OIDCError(f"the discovery document of {issuer_url}: {name} is not a string")
        if not provider_url_ok(value):
            raise OIDCError(f"the discovery document of {issuer_url}: {name} is not an "
                            "https:// URL (http only on loopback)")
        fields[name] = value
    iss_supported = doc.get("authorization_response_iss_parameter_supported", False)
    if not isinstance(iss_supported, bool):
        raise OIDCError(f"the discovery document of {issuer_url}: "
                        "authorization_response_iss_parameter_supported is not true or false")
    return ProviderMetadata(issuer=doc["issuer"], iss_parameter_supported=iss_supported,
                            **fields)


class OIDCProvider:
    def __init__(self, issuer_url: str, client_id: str, auth: ClientAuth,
                 http: net.Client, clock: Callable[[], float] = time.time,
                 cache: ProviderCache | None = None) -> None:
        self.issuer_url = check_issuer_url(issuer_url)
        self.client_id = client_id
        self.auth = auth
        self.http = http
        self.clock = clock
        self.cache = cache
        self._discovery: dict | None = None
        self._metadata: ProviderMetadata | None = None
        self._jwks: dict | None = None
        self._jwks_fetched = False  # fetched in this run: the provider's current keys
        self._discovery_fetched = False  # the same for the discovery document

    @property
    def origin(self) -> str:
        return parse(self.issuer_url, "OpenID issuer").origin

    def _get_json(self, url: str, what: str) -> dict:
        resp = self.http.request("GET", url, headers={"Accept": "application/json"})
        if resp.status_code in MOVED:
            raise EndpointMoved(f"the OpenID provider at {self.origin} answered "
                                f"{resp.status_code} for its {what}")
        if resp.status_code != 200:
            raise OIDCError(f"the OpenID provider at {self.origin} answered "
                            f"{resp.status_code} for its {what}")
        doc = _json_object(resp)
        if doc is None:
            raise OIDCError(f"the OpenID provider at {self.origin}: its {what} is not a JSON "
                            "object")
        return doc

    @property
    def metadata(self) -> ProviderMetadata:
        if self._metadata is None:
            cached = self.cache.load(self.issuer_url, self.clock()) if self.cache else None
            if cached is not None:
                self._discovery, self._jwks = cached
                self._metadata = parse_metadata(self._discovery, self.issuer_url)
            else:
                self._fetch_discovery()
        assert self._metadata is not None
        return self._metadata

    def _fetch_discovery(self) -> None:
        self._discovery = self._get_json(
            f"{self.issuer_url.rstrip('/')}/.well-known/openid-configuration",
            "discovery document")
        self._metadata = parse_metadata(self._discovery, self.issuer_url)
        self._discovery_fetched = True

    def _looked_up_again(self, endpoint: str, failed: str) -> str:
        """Where `endpoint` (a discovery field) is now, if the URL that just answered as if
        nothing were there came from a copy kept from an earlier run: the provider moved it,
        and the copy would say so for a day. "" when there is nothing new to try (fetched in
        this run already, or the same URL again)."""
        if self._discovery_fetched:
            return ""
        self._fetch_discovery()
        if self.cache is not None and self._discovery is not None and self._jwks is not None:
            self.cache.save(self.issuer_url, self._discovery, self._jwks, self.clock())
        now = getattr(self._metadata, endpoint)
        return now if now != failed else ""

    def jwks(self, refetch: bool = False) -> dict:
        meta = self.metadata
        if self._jwks is None or refetch:
            try:
                jwks = self._get_json(meta.jwks_uri, "JWKS")
            except EndpointMoved:
                moved = self._looked_up_again("jwks_uri", meta.jwks_uri)
                if not moved:
                    raise
                jwks = self._get_json(moved, "JWKS")
            keys = jwks.get("keys")
            if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
                raise OIDCError(f"the OpenID provider at {self.origin}: its JWKS has no list "
                                "of keys")
            self._jwks = jwks
            self._jwks_fetched = True
            if self.cache is not None and self._discovery is not None:
                self.cache.save(self.issuer_url, self._discovery, self._jwks, self.clock())
        return self._jwks

    def validate(self, id_token: str, nonce: str | None = None) -> dict[str, Any]:
        """Check an ID token. When the keys kept from an earlier run cannot check it (an
        unknown `kid`, a key of another type, a failing signature: the provider rotated its
        keys, or fixed them), they are fetched once again, and the fresh copy replaces them."""
        now = self.clock()
        issuer = self.metadata.issuer
        try:
            return validate_id_token(id_token, self.jwks(), issuer, self.client_id, now, nonce)
        except KeyProblem:
            if self._jwks_fetched:
                raise
            return validate_id_token(id_token, self.jwks(refetch=True), issuer,
                                     self.client_id, now, nonce)

    def _post_to(self, endpoint: str, data: dict[str, str]) -> dict:
        """POST `data` to the URL the discovery document names as `endpoint`; once more where
        that URL answered as if nothing were there and the provider names another now (an
        answer like that means the request was not taken, so nothing is spent twice)."""
        url = getattr(self.metadata, endpoint)
        try:
            return self._post(url, dict(data))
        except EndpointMoved:
            moved = self._looked_up_again(endpoint, url)
            if not moved:
                raise
        return self._post(moved, dict(data))

    def _post(self, url: str, data: dict[str, str], authenticate: bool = True) -> dict:
        basic = self.auth.apply(data, self.client_id, url, self.clock()) if authenticate \
            else None
        sent = [value for name, value in data.items() if name in SENT_SECRETS]
        headers = {"Accept": "application/json",
                   "Content-Type": "application/x-www-form-urlencoded"}
        if basic is not None:
            # RFC 6749 §2.3.1: each part form-encoded, then Base64 of UTF-8.
            pair = f"{quote_plus(basic[0], safe='')}:{quote_plus(basic[1], safe='')}"
            credentials = base64.b64encode(pair.encode()).decode()
            headers["Authorization"] = "Basic " + credentials
            sent += [basic[1], credentials]
        resp = self.http.request("POST", url, headers=headers, body=urlencode(data).encode())
        if resp.status_code in MOVED:
            raise EndpointMoved(f"the OpenID provider at {self.origin} answered "
                                f"{resp.status_code} at {parse(url, 'endpoint').target}",
                                "the provider may have moved it: check its discovery document")
        doc = _json_object(resp)
        if doc is None:
            raise OIDCError(f"the OpenID provider at {self.origin} sent a malformed response "
                            f"({resp.status_code})")
        if resp.status_code >= 400 or "error" in doc:
            error, description = doc.get("error"), doc.get("error_description")
            # A provider may echo what it was sent: none of it reaches the terminal.
            raise ProviderRefused(server_text(redact(error, sent))
                                  if isinstance(error, str) and error
                                  else str(resp.status_code),
                                  server_text(redact(description, sent))
                                  if isinstance(description, str) else "", self.origin)
        return doc

    def token(self, data: dict[str, str]) -> TokenResponse:
        doc = self._post_to("token_endpoint", data)
        token = doc.get("access_token")
        if not isinstance(token, str) or not token:
            raise OIDCError(f"the token response of the OpenID provider at {self.origin} has "
                            "no access_token")
        expires_in = doc.get("expires_in")
        if expires_in is not None and not (_finite_number(expires_in) and expires_in > 0):
            raise OIDCError(f"the token response of the OpenID provider at {self.origin} has "
                            "an expires_in that is not a positive number")
        for name in ("id_token", "refresh_token", "scope"):
            if doc.get(name) is not None and not isinstance(doc[name], str):
                raise OIDCError(f"the token response of the OpenID provider at {self.origin}: "
                                f"{name} is not a string")
        # kubectl sends them in a header (and a refresh token goes back in a form): a
        # character outside printable ASCII would be mangled, refused or cannot be encoded.
        # A refresh token is judged where it would be kept (oidcissuer.py).
        for name in ("access_token", "id_token"):
            if doc.get(name) and not vschar(doc[name]):
                raise OIDCError(f"the token response of the OpenID provider at {self.origin}: "
                                f"{name} is not printable ASCII (RFC 6749 appendix A)")
        return TokenResponse(
            access_token=token,
            expires_in=int(expires_in) if expires_in is not None else None,
            id_token=doc.get("id_token") or "", refresh_token=doc.get("refresh_token") or "",
            scope=doc.get("scope") or "")

    # -- grants --

    def refresh(self, refresh_token: str, scopes: list[str]) -> TokenResponse:
        return self.token({"grant_type": "refresh_token", "refresh_token": refresh_token,
                           "scope": " ".join(scopes)})

    def client_credentials(self, scopes: list[str]) -> TokenResponse:
        return self.token({"grant_type": "client_credentials", "scope": " ".join(scopes)})

    def authorization_url(self, scopes: list[str], redirect_uri: str, state: str, nonce: str,
                          challenge: str) -> str:
        endpoint = self.metadata.authorization_endpoint
        if not endpoint:
            raise OIDCError("the provider has no authorization endpoint",
                            "use --oidc-grant device")
        params = {"response_type": "code", "client_id": self.client_id,
                  "redirect_uri": redirect_uri, "scope": " ".join(scopes), "state": state,
                  "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256"}
        if "offline_access" in scopes:
            params["prompt"] = "consent"  # OIDC Core §11: else no refresh token is due
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"

    def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> TokenResponse:
        return self.token({"grant_type": "authorization_code", "code": code,
                           "code_verifier": verifier, "redirect_uri": redirect_uri})

    def device_authorize(self, scopes: list[str]) -> DeviceAuthorization:
        endpoint = self.metadata.device_authorization_endpoint
        if not endpoint:
            raise OIDCError("the provider does not offer the device authorization grant",
                            "use --oidc-grant authcode")
        doc = self._post_to("device_authorization_endpoint", {"scope": " ".join(scopes)})
        bad = f"the device authorization answer of the OpenID provider at {self.origin}"
        for name in ("device_code", "user_code", "verification_uri"):
            if not isinstance(doc.get(name), str) or not doc[name]:
                raise OIDCError(f"{bad} has no {name}")
        if not vschar(doc["device_code"]):
            raise OIDCError(f"{bad}: device_code is not printable ASCII (RFC 8628 §3.2)")
        for name in ("verification_uri", "verification_uri_complete"):
            if doc.get(name) and not provider_url_ok(doc[name]):
                raise OIDCError(f"{bad}: {name} is not an https:// URL")
        expires_in, interval = doc.get("expires_in", 600), doc.get("interval", 5)
        if not (_finite_number(expires_in) and expires_in > 0 and _finite_number(interval)
                and interval >= 0):
            raise OIDCError(f"{bad}: expires_in or interval is not a positive number")
        if not isinstance(doc.get("verification_uri_complete", ""), str):
            raise OIDCError(f"{bad}: verification_uri_complete is not a string")
        return DeviceAuthorization(
            device_code=doc["device_code"], user_code=server_text(doc["user_code"]),
            verification_uri=doc["verification_uri"],
            verification_uri_complete=doc.get("verification_uri_complete", ""),
            expires_in=int(expires_in), interval=int(min(interval, MAX_POLL_INTERVAL)))

    def poll_device(self, device: DeviceAuthorization,
                    sleep: Callable[[float], None] = time.sleep) -> TokenResponse:
        """Poll at the server's interval (RFC 8628 §3.5) until the user approves or not."""
        interval = max(1, device.interval)
        deadline = self.clock() + min(device.expires_in, LOGIN_TIMEOUT)
        while True:
            sleep(interval)
            try:
                return self.token({"grant_type": DEVICE_GRANT,
                                   "device_code": device.device_code})
            except ProviderRefused as exc:
                if exc.error == "authorization_pending":
                    pass
                elif exc.error == "slow_down":
                    interval += 5
                elif exc.error == "expired_token":
                    raise OIDCError("the device code expired before it was approved",
                                    "run `cred-helper login` again") from None
                elif exc.error == "access_denied":
                    raise OIDCError("the login was denied at the provider",
                                    "log in again and accept") from None
                else:
                    raise
            if self.clock() >= deadline:
                raise OIDCError("the device code expired before it was approved",
                                "run `cred-helper login` again")


def vschar(text: str) -> bool:
    """Whether `text` is what OAuth allows in a token or code (VSCHAR: printable ASCII)."""
    return all(" " <= c <= "~" for c in text)


def _json_object(resp: net.Response) -> dict | None:
    try:
        doc = resp.json()
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _finite_number(value: object) -> bool:
    """A JSON number that is a real time or duration: not a bool, NaN, infinity, nor an integer
    too large for a float."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value) and abs(value) < 1e15
    except OverflowError:
        return False


# Form fields whose values are secrets (a code or device code is one until it is spent).
SENT_SECRETS = ("client_secret", "client_assertion", "code", "code_verifier", "refresh_token",
                "device_code")
REDACTED = "[redacted]"
MIN_SECRET = 4  # shorter values are not secrets worth hiding, and would blank out words
MIN_PIECE = 8  # an echoed part of a secret this long is hidden too
MAX_SHOWN = 2000  # more than server_text shows; bounds the work on a huge description
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def encodings(secret: str) -> set[str]:
    """The spellings a provider may echo `secret` in: as sent (form-encoded), percent- or
    JSON-escaped, and Base64 (a Basic header, a dump), all compared without case."""
    raw = secret.encode()
    forms = {secret, quote_plus(secret, safe=""), quote(secret, safe=""),
             json.dumps(secret)[1:-1], base64.b64encode(raw).decode(),
             base64.urlsafe_b64encode(raw).decode()}
    return {form.translate(_ASCII_LOWER) for form in forms}


def redact(text: str, sent: list[str]) -> str:
    """`text` (its first MAX_SHOWN characters) without any of the `sent` secrets: in any of
    its `encodings`, in any case, or any piece of one at least MIN_PIECE characters long (a
    provider that echoes a truncated token). A secret's letters and digits are also found
    with other characters between them (cut into groups, wrapped, escaped)."""
    text = text[:MAX_SHOWN]
    lowered = text.translate(_ASCII_LOWER)  # same length: each position is the text's
    hidden = bytearray(len(text))

    def hide(start: int, end: int) -> None:
        hidden[start:end] = b"\1" * (end - start)

    # The text's letters and digits alone, and where each one stands in it.
    where = [i for i, c in enumerate(lowered) if c.isascii() and c.isalnum()]
    skeleton = "".join(lowered[i] for i in where)
    for secret in (s for s in sent if len(s) >= MIN_SECRET):
        for form in encodings(secret):
            if len(form) < MIN_PIECE:
                start = lowered.find(form)
                while start >= 0:
                    hide(start, start + len(form))
                    start = lowered.find(form, start + 1)
                continue
            _hide_pieces(lowered, form, lambda i: hide(i, i + MIN_PIECE))
        bare = "".join(c for c in secret.translate(_ASCII_LOWER) if c.isascii() and c.isalnum())
        if len(bare) >= MIN_PIECE:
            _hide_pieces(skeleton, bare, lambda i: hide(where[i], where[i + MIN_PIECE - 1] + 1))
    shown, i = [], 0
    while i < len(text):
        if hidden[i]:
            while i < len(text) and hidden[i]:
                i += 1
            shown.append(REDACTED)
        else:
            shown.append(text[i])
            i += 1
    return "".join(shown)


def _hide_pieces(text: str, secret: str, hide: Callable[[int], None]) -> None:
    """Call `hide(i)` for every i where `text` holds MIN_PIECE characters in a row of
    `secret`."""
    pieces = {secret[i:i + MIN_PIECE] for i in range(len(secret) - MIN_PIECE + 1)}
    for i in range(len(text) - MIN_PIECE + 1):
        if text[i:i + MIN_PIECE] in pieces:
            hide(i)


class ProviderRefused(OIDCError):
    def __init__(self, error: str, description: str, origin: str = "") -> None:
        detail = f"{error}: {description}" if description else error
        where = f" at {origin}" if origin else ""
        super().__init__(f"the OpenID provider{where} refused the request: {detail}")
        self.error = error


# ---- PKCE (RFC 7636) -----------------------------------------------------------------------

def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")
