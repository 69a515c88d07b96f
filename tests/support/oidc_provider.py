"""The real OpenID provider (`oidc-provider` from npm, pinned in tests/support/oidc) on
127.0.0.1, and a scripted browser that signs in and consents through its own pages.

`OIDCProvider(..., https=True)` serves it over HTTPS with a certificate from a CA of its own
(`ca_pem`, `ca_file`): kube-apiserver's JWT authenticator takes only https issuers. The default
stays plain http on loopback, which cred-helper accepts there."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .pki import CA

HERE = Path(__file__).parent / "oidc"
ACCOUNTS = {
    "alice": {"email": "alice@example.com", "email_verified": True,
              "groups": ["oncall", "sre"]},
    "bob": {"email": "bob@example.com", "email_verified": True, "groups": ["dev"]},
    # An address the provider has not verified: kube-apiserver must not take it as a name.
    "carol": {"email": "carol@example.com", "email_verified": False, "groups": ["oncall"]},
}


REDIRECT = "http://127.0.0.1/callback"
DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
CLIENT_KEYS = {
    "jwt-eddsa": (ed25519.Ed25519PrivateKey.generate(), jwt.algorithms.OKPAlgorithm),
    "jwt-es256": (ec.generate_private_key(ec.SECP256R1()), jwt.algorithms.ECAlgorithm),
    "jwt-rs256": (rsa.generate_private_key(65537, 2048), jwt.algorithms.RSAAlgorithm),
}


def provider_clients() -> list[dict]:
    grants = ["authorization_code", "refresh_token", DEVICE]
    clients = [
        {"client_id": "public", "token_endpoint_auth_method": "none", "grant_types": grants,
         "response_types": ["code"], "redirect_uris": [REDIRECT], "application_type": "native"},
        {"client_id": "confidential", "client_secret": "s3cret-basic",
         "token_endpoint_auth_method": "client_secret_basic",
         "grant_types": [*grants, "client_credentials"], "response_types": ["code"],
         "redirect_uris": [REDIRECT], "application_type": "native"},
        {"client_id": "confidential-post", "client_secret": "s3cret-post",
         "token_endpoint_auth_method": "client_secret_post",
         "grant_types": ["client_credentials"], "response_types": [], "redirect_uris": []},
    ]
    for client_id, (key, algorithm) in CLIENT_KEYS.items():
        public = json.loads(algorithm.to_jwk(key.public_key()))
        clients.append({"client_id": client_id, "token_endpoint_auth_method": "private_key_jwt",
                        "jwks": {"keys": [public]}, "grant_types": ["client_credentials"],
                        "response_types": [], "redirect_uris": []})
    return clients


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _private_jwk(key, kid: str) -> dict:
    algorithm = jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) \
        else jwt.algorithms.ECAlgorithm
    jwk = algorithm.to_jwk(key, as_dict=True)
    jwk["kid"] = kid
    return jwk


class OIDCProvider:
    def __init__(self, clients: list[dict], lifetime: int = 1800,
                 device_code_lifetime: int = 600,
                 access_token_audience: str | None = None, https: bool = False) -> None:
        """`access_token_audience`: issue access tokens as JWTs for that audience (by default
        oidc-provider's are opaque), for tools that print them as a JWT (kubelogin)."""
        self.clients = clients
        self.lifetime = lifetime
        self.device_code_lifetime = device_code_lifetime
        self.access_token_audience = access_token_audience
        self.port = _free_port()
        self.issuer = f"{'https' if https else 'http'}://127.0.0.1:{self.port}"
        self.grants: list[str] = []  # grant_type of each successful token request
        self.requests: list[str] = []  # "METHOD /path" of every request
        self.log: list[str] = []
        self._proc: subprocess.Popen | None = None
        self._tmp = tempfile.mkdtemp(prefix="oidc-provider-")
        self.ca: CA | None = CA("cred-helper-test-oidc-ca") if https else None

    @property
    def ca_pem(self) -> bytes | None:
        """The CA that signed the https provider's certificate (None for http)."""
        return self.ca.cert_pem if self.ca else None

    @property
    def ca_file(self) -> str | None:
        """That CA as a PEM file, for --oidc-certificate-authority and the scripted browser."""
        return os.path.join(self._tmp, "ca.crt") if self.ca else None

    def start(self) -> OIDCProvider:
        signing = {"keys": [
            _private_jwk(rsa.generate_private_key(65537, 2048), "rs256-1"),
            _private_jwk(ec.generate_private_key(ec.SECP256R1()), "es256-1"),
        ]}
        config = {"port": self.port, "clients": self.clients, "accounts": ACCOUNTS,
                  "jwks": signing, "lifetime": self.lifetime,
                  "deviceCodeLifetime": self.device_code_lifetime,
                  "accessTokenAudience": self.access_token_audience}
        if self.ca:
            cert, key = self.ca.server_cert()  # SAN 127.0.0.1, serverAuth
            tls = {"cert": os.path.join(self._tmp, "serving.crt"),
                   "key": os.path.join(self._tmp, "serving.key")}
            Path(tls["cert"]).write_bytes(cert)
            Path(tls["key"]).write_bytes(key)
            os.chmod(tls["key"], 0o600)
            Path(self._tmp, "ca.crt").write_bytes(self.ca.cert_pem)
            config["tls"] = tls
        path = os.path.join(self._tmp, "config.json")
        Path(path).write_text(json.dumps(config))
        self._proc = subprocess.Popen(["node", str(HERE / "server.mjs"), path],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      cwd=HERE)
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith("READY "):
                break
        else:
            raise RuntimeError("oidc-provider did not start: " + self._proc.stderr.read())
        threading.Thread(target=self._read_stderr, daemon=True).start()
        threading.Thread(target=self._proc.stdout.read, daemon=True).start()
        return self

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self.log.append(line)
            if line.startswith("GRANT "):
                self.grants.append(line.split()[1])
            elif line.startswith("REQUEST "):
                self.requests.append(line.split(" ", 1)[1].strip())

    def stop(self) -> None:
        if self._proc:
            self._proc.terminate()
            self._proc.wait(10)
        shutil.rmtree(self._tmp, ignore_errors=True)  # signing and TLS keys

    def __enter__(self) -> OIDCProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value") or ""


class ScriptedBrowser:
    """Signs in as `login` and consents, through the provider's own HTML pages; or, with
    `deny`, presses the pages' own Abort / Cancel."""

    def __init__(self, login: str = "alice", deny: bool = False,
                 ca_file: str | None = None) -> None:
        self.login = login
        self.deny = deny
        self.visited: list[str] = []  # every URL requested, redirects included
        self.session = requests.Session()
        self.session.hooks["response"].append(lambda r, *a, **k: self.visited.append(r.url))
        if ca_file:  # an https provider with a test CA
            self.session.verify = ca_file
            # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's `verify`
            # (its long-standing environment merge); the provider is on loopback, so take
            # nothing from the environment.
            self.session.trust_env = False

    def approve(self, url: str, stop_at: str | None = None, steps: int = 12) -> str:
        """Follow pages from `url`; return the URL redirected to under `stop_at`, or the
        last page's text when it has no form left (the device flow's success page)."""
        response = self.session.get(url, allow_redirects=False)
        for _ in range(steps):
            while response.is_redirect:
                target = urljoin(response.url, response.headers["Location"])
                if stop_at and target.startswith(stop_at):
                    return target
                response = self.session.get(target, allow_redirects=False)
            parser = _Forms()
            parser.feed(response.text)
            if not parser.forms:
                return response.text
            form = parser.forms[0]
            fields = dict(form["fields"])
            cancel = [link for link in parser.links if link.endswith("/abort")]
            if self.deny and cancel:  # a sign-in or consent page
                response = self.session.get(urljoin(response.url, cancel[0]),
                                            allow_redirects=False)
                continue
            if self.deny and "confirm" in fields:  # the device confirmation page
                fields["abort"] = "yes"
                return self.session.post(urljoin(response.url, form["action"]),
                                         data=fields).text
            if "login" in fields:
                fields.update(login=self.login, password="any")
            response = self.session.post(urljoin(response.url, form["action"]), data=fields,
                                         allow_redirects=False)
        raise RuntimeError("the provider's pages did not finish")


def device_login(argv: list[str], env: dict[str, str], person: str = "alice",
                 ca_file: str | None = None, timeout: float = 60, check: bool = True) -> str:
    """Run `argv` (a `cred-helper login` with the device grant) and approve the code it prints
    through the provider's own pages; returns its stderr. stdout must stay empty. `ca_file`:
    the https provider's CA, for the scripted browser; `check=False` lets the login fail after
    the person confirmed (the API server refusing the token), its stderr still returned."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert "to log in, open http://127.0.0.1" in first \
        or "to log in, open https://127.0.0.1" in first, first
    url = first.split("open ", 1)[1].split(" and confirm", 1)[0]
    threading.Thread(target=lambda: ScriptedBrowser(person, ca_file=ca_file).approve(url)
                     ).start()
    out, rest = proc.communicate(timeout=timeout)
    assert proc.returncode == 0 or not check, first + rest
    assert out == ""
    return first + rest
