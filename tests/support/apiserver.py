"""A loopback HTTPS server that follows the Kubernetes API for what cred-helper uses.

What it does, as kube-apiserver does it:
- TLS on 127.0.0.1 with a generated CA; authentication by client certificate issued by that CA
  (CN -> user, O -> groups; expired, not-yet-valid or revoked -> 401 `Status`, like a CA
  rotation would), by bearer token from a table, or by an OIDC ID token from a trusted
  provider (`OIDCAuthenticator`, as kube-apiserver's `--oidc-*` flags: signature against the
  provider's JWKS, iss, aud, exp; username and groups from claims); no credential -> 401.
- `/version`, `/api`, `/apis` and the group discovery documents kubectl reads.
- SelfSubjectReview (`authentication.k8s.io/v1`), as `kubectl auth whoami` uses it.
- The CSR API (`certificates.k8s.io/v1`): create (validation of the PKCS#10 request, its
  signature and `expirationSeconds >= 600`; `spec.username/groups` set from the requester),
  get, list, watch (with `fieldSelector=metadata.name=`, `resourceVersion`, `timeoutSeconds`),
  delete, `/approval` and `/status` updates, in JSON or in the protobuf kubectl 1.32 sends.
- The `kubernetes.io/kube-apiserver-client` signer: after approval, a certificate with the
  request's subject, client-auth usage, NotBefore backdated 5 minutes and NotAfter =
  now + expirationSeconds; usages outside client auth / digital signature / key encipherment
  make the CSR Failed.
- An optional auto-approver (a policy function), acting like an approving controller.

What it does not do: RBAC (any authenticated user may create, read and watch CSRs and review
itself; approval needs `system:masters` or a name in `approvers`; `csr_creators` can limit
creation to test a 403), namespaces and every other resource, protobuf responses (it answers
JSON, which kubectl accepts), HTTP/2, aggregated discovery, admission, CSR garbage collection,
field selectors other than metadata.name, list pagination, and persistence across restarts.
Unknown client-certificate CAs fail the TLS handshake rather than answering 401 (Python's ssl
cannot defer that check); revocation by serial stands in for a rotated CA in tests.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import signal
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.x509.oid import NameOID

from . import protobuf
from .pki import CA, pem

CSR_BASE = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
SIGNER = "kubernetes.io/kube-apiserver-client"
ALLOWED_USAGES = {"client auth", "digital signature", "key encipherment"}
NO_CHECK_TIME = 0x200000  # X509_V_FLAG_NO_CHECK_TIME: validity is checked in the authenticator
GIT_VERSION = "v1.32.4"


def _rfc3339(ts: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts if ts is not None else time.time()))


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


class OIDCAuthenticator:
    """kube-apiserver's OIDC authenticator for one provider: `--oidc-issuer-url`,
    `--oidc-client-id`, `--oidc-username-claim` (email: `email_verified` must not be false),
    `--oidc-groups-claim`, and the username prefix (issuer#) for claims other than email."""

    def __init__(self, issuer: str, client_id: str, username_claim: str = "email",
                 groups_claim: str = "groups") -> None:
        self.issuer, self.client_id = issuer, client_id
        self.username_claim, self.groups_claim = username_claim, groups_claim
        self._jwks: jwt.PyJWKClient | None = None

    def authenticate(self, token: str) -> tuple[str, list[str]] | None:
        if self._jwks is None:
            import requests

            discovery = requests.get(f"{self.issuer}/.well-known/openid-configuration",
                                     timeout=10).json()
            self._jwks = jwt.PyJWKClient(discovery["jwks_uri"])
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key.key, algorithms=["RS256", "ES256", "EdDSA"],
                                audience=self.client_id, issuer=self.issuer,
                                options={"require": ["exp", "iat"]})
        except jwt.PyJWTError:
            return None
        user = claims.get(self.username_claim)
        if not isinstance(user, str) or not user:
            return None
        if self.username_claim == "email":
            if claims.get("email_verified") is False:
                return None
        else:
            user = f"{self.issuer}#{user}"
        groups = claims.get(self.groups_claim) or []
        return user, [g for g in groups if isinstance(g, str)]


@dataclass
class Misbehaviour:
    """Ways the signer can get a certificate wrong, all off by default (tests only)."""

    other_ca: CA | None = None  # sign with a CA the cluster does not use
    add_groups: tuple[str, ...] = ()  # add O= groups nobody asked for
    other_key: bool = False  # certify a key that is not the request's
    no_client_auth: bool = False  # serverAuth instead of clientAuth
    not_before_offset: float = 0.0  # seconds to move notBefore forward (into the future)
    ignore_expiration: bool = False  # 24 hours whatever expirationSeconds says


class LocalAPIServer:
    def __init__(self, tokens: dict[str, tuple[str, list[str]]] | None = None,
                 auto_approve: Callable[[dict], bool] | None = None,
                 approvers: set[str] | None = None, csr_creators: set[str] | None = None,
                 signer_delay: float = 0.0, minor: str = "32") -> None:
        self.ca = CA()
        self.tokens = dict(tokens or {})
        self.oidc: OIDCAuthenticator | None = None
        self.auto_approve = auto_approve
        self.approvers = set(approvers or ())
        self.csr_creators = csr_creators
        self.signer_delay = signer_delay
        self.minor = minor
        self.watch_allowed = True  # False: 403 on watch, as RBAC without the `watch` verb
        self.signer = Misbehaviour()  # test-only knobs for a signer that gets it wrong
        self.revoked_serials: set[int] = set()
        # A misbehaving mode for fuzz tests: (method, path, code, body) -> (code, body), applied
        # to every answer and every watch event line. None: answer as kube-apiserver would.
        self.tamper: Callable[[str, str, int, bytes], tuple[int, bytes]] | None = None
        self.csrs: dict[str, dict] = {}
        self.csr_creations = 0
        self.requests: list[tuple[str, str, str]] = []  # (method, path, user)
        self._rv = 0
        self._events: list[tuple[int, str, dict]] = []  # (resourceVersion, type, object)
        self._cond = threading.Condition()
        self._stopping = False
        self._tmp = tempfile.mkdtemp(prefix="local-apiserver-")
        self._httpd: ThreadingHTTPServer | None = None

    # ---- life cycle ------------------------------------------------------------------------

    def start(self, port: int = 0) -> LocalAPIServer:
        cert_pem, key_pem = self.ca.server_cert()
        cert_file, key_file = os.path.join(self._tmp, "tls.crt"), os.path.join(self._tmp, "tls.key")
        with open(cert_file, "wb") as fh:
            fh.write(cert_pem + self.ca.cert_pem)
        with open(key_file, "wb") as fh:
            fh.write(key_pem)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        ctx.load_verify_locations(cadata=self.ca.cert_pem.decode())
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.verify_flags |= NO_CHECK_TIME
        self._ssl = ctx
        server = self

        class Handler(_Handler):
            api = server

        self._httpd = _QuietServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> LocalAPIServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"https://127.0.0.1:{self._httpd.server_address[1]}"

    # ---- helpers for tests and the demo ----------------------------------------------------

    def client_cert(self, user: str, groups: list[str], **kw) -> tuple[bytes, bytes]:
        return self.ca.client_cert(user, groups, **kw)

    def cluster_entry(self) -> dict:
        return {"server": self.url,
                "certificate-authority-data": base64.b64encode(self.ca.cert_pem).decode()}

    def approve(self, name: str, approver: str = "test-approver") -> None:
        self._set_condition(name, "Approved", "TestApproved", f"approved by {approver}")

    def deny(self, name: str, reason: str = "TestDenied", message: str = "denied") -> None:
        self._set_condition(name, "Denied", reason, message)

    def wait_for_csr(self, timeout: float = 10) -> str:
        """The name of the first CSR not yet approved or denied, once one exists."""
        deadline = time.time() + timeout
        with self._cond:
            while time.time() < deadline:
                for name, obj in self.csrs.items():
                    if not obj["status"].get("conditions"):
                        return name
                self._cond.wait(0.05)
        raise TimeoutError("no pending CSR appeared")

    # ---- state -------------------------------------------------------------------------------

    def _bump(self, obj: dict, event: str) -> None:
        """Store a change and wake the watchers. Caller holds the condition."""
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._events.append((self._rv, event, json.loads(_public(obj))))
        self._cond.notify_all()

    def _set_condition(self, name: str, kind: str, reason: str, message: str) -> None:
        with self._cond:
            obj = self.csrs[name]
            obj["status"].setdefault("conditions", []).append(_condition(kind, reason, message))
            self._bump(obj, "MODIFIED")
        if kind == "Approved":
            self._schedule_signing(name)

    def _schedule_signing(self, name: str) -> None:
        timer = threading.Timer(self.signer_delay, self._sign, args=(name,))
        timer.daemon = True
        timer.start()

    def _sign(self, name: str) -> None:
        with self._cond:
            obj = self.csrs.get(name)
            if obj is None or obj["status"].get("certificate"):
                return
            conds = {c["type"] for c in obj["status"].get("conditions", [])}
            if "Approved" not in conds or conds & {"Denied", "Failed"}:
                return
            spec = obj["spec"]
            if spec["signerName"] != SIGNER:
                return
            usages = set(spec.get("usages") or [])
            if "client auth" not in usages or usages - ALLOWED_USAGES:
                obj["status"]["conditions"].append(_condition(
                    "Failed", "SignerValidationFailure",
                    f"invalid usage for client certificate: {sorted(usages - ALLOWED_USAGES)}"))
                self._bump(obj, "MODIFIED")
                return
            request = x509.load_pem_x509_csr(base64.b64decode(spec["request"]))
            now = datetime.datetime.now(datetime.timezone.utc)
            seconds = spec.get("expirationSeconds") or 365 * 86400
            bad = self.signer
            if bad.ignore_expiration:
                seconds = 24 * 3600
            subject = request.subject
            if bad.add_groups:
                subject = x509.Name([*subject, *(x509.NameAttribute(
                    NameOID.ORGANIZATION_NAME, g) for g in bad.add_groups)])
            public_key = request.public_key()
            if bad.other_key:
                from cryptography.hazmat.primitives.asymmetric import ec

                public_key = ec.generate_private_key(ec.SECP256R1()).public_key()
            start = now - datetime.timedelta(minutes=5) + datetime.timedelta(
                seconds=bad.not_before_offset)
            cert = (bad.other_ca or self.ca).issue(
                subject, public_key, start, now + datetime.timedelta(seconds=seconds),
                client=not bad.no_client_auth)
            obj["status"]["certificate"] = base64.b64encode(pem(cert)).decode()
            self._bump(obj, "MODIFIED")

    # ---- authentication ----------------------------------------------------------------------

    def authenticate(self, handler: _Handler) -> tuple[str, list[str]]:
        der = handler.connection.getpeercert(binary_form=True)
        if der:
            cert = x509.load_der_x509_certificate(der)
            now = datetime.datetime.now(datetime.timezone.utc)
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            if cert.serial_number in self.revoked_serials:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
            if not cn:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            return str(cn[0].value), [str(o.value) for o in orgs] + ["system:authenticated"]
        header = handler.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            token = header[len("Bearer "):].strip()
            found = self.tokens.get(token)
            if found is None and self.oidc is not None and token.count(".") == 2:
                found = self.oidc.authenticate(token)
            if found:
                return found[0], [*found[1], "system:authenticated"]
        raise ApiError(401, "Unauthorized", "Unauthorized")

    # ---- API ---------------------------------------------------------------------------------

    def create_csr(self, body: dict, user: str, groups: list[str]) -> dict:
        if self.csr_creators is not None and user not in self.csr_creators:
            raise ApiError(403, "Forbidden",
                           f'certificatesigningrequests.certificates.k8s.io is forbidden: User '
                           f'"{user}" cannot create resource "certificatesigningrequests" in '
                           f'API group "certificates.k8s.io" at the cluster scope')
        meta = body.get("metadata") or {}
        spec = body.get("spec") or {}
        name = meta.get("name") or (meta.get("generateName", "") + uuid.uuid4().hex[:5])
        if not meta.get("name") and not meta.get("generateName"):
            raise ApiError(422, "Invalid", "metadata.name: Required value")
        try:
            request = x509.load_pem_x509_csr(base64.b64decode(spec.get("request", "")))
            if not request.is_signature_valid:
                raise ValueError
        except ValueError:
            raise ApiError(422, "Invalid", f'CertificateSigningRequest.certificates.k8s.io '
                           f'"{name}" is invalid: spec.request: Invalid value: []byte{...}: '
                           'PEM block type must be CERTIFICATE REQUEST') from None
        if not spec.get("signerName"):
            raise ApiError(422, "Invalid", "spec.signerName: Required value")
        seconds = spec.get("expirationSeconds")
        if seconds is not None and seconds < 600:
            raise ApiError(422, "Invalid", f'CertificateSigningRequest.certificates.k8s.io '
                           f'"{name}" is invalid: spec.expirationSeconds: Invalid value: '
                           f'{seconds}: may not specify a duration less than 600 seconds '
                           '(10 minutes)')
        obj = {
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "metadata": {"name": name, "uid": str(uuid.uuid4()),
                         "creationTimestamp": _rfc3339(),
                         **{k: meta[k] for k in ("labels", "annotations") if k in meta}},
            "spec": {**spec, "username": user, "groups": groups},
            "status": {},
        }
        with self._cond:
            if name in self.csrs:
                raise ApiError(409, "AlreadyExists", f'certificatesigningrequests.certificates.'
                               f'k8s.io "{name}" already exists')
            self.csrs[name] = obj
            self.csr_creations += 1
            self._bump(obj, "ADDED")
            created = json.loads(_public(obj))
        if self.auto_approve and self.auto_approve(created):
            threading.Thread(target=self._set_condition, daemon=True, args=(
                name, "Approved", "AutoApproved", "approved by the local auto-approver")).start()
        return created

    def get_csr(self, name: str) -> dict:
        with self._cond:
            if name not in self.csrs:
                raise ApiError(404, "NotFound", f'certificatesigningrequests.certificates.k8s.io '
                               f'"{name}" not found')
            return json.loads(_public(self.csrs[name]))

    def update_conditions(self, name: str, body: dict, user: str, groups: list[str],
                          subresource: str) -> dict:
        if subresource == "approval" and "system:masters" not in groups \
                and user not in self.approvers:
            raise ApiError(403, "Forbidden", f'User "{user}" cannot update resource '
                           '"certificatesigningrequests/approval"')
        new_status = body.get("status") or {}
        approved_now = False
        with self._cond:
            obj = self.csrs.get(name)
            if obj is None:
                raise ApiError(404, "NotFound", f'certificatesigningrequests.certificates.k8s.io '
                               f'"{name}" not found')
            sent_rv = (body.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != obj["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on '
                               f'certificatesigningrequests.certificates.k8s.io "{name}": the '
                               'object has been modified; please apply your changes to the '
                               'latest version and try again')
            had = {c["type"] for c in obj["status"].get("conditions", [])}
            conditions = []
            for c in new_status.get("conditions") or []:
                cond = _condition(c.get("type", ""), c.get("reason", ""), c.get("message", ""))
                cond["status"] = c.get("status") or "True"
                conditions.append(cond)
            types = {c["type"] for c in conditions}
            if {"Approved", "Denied"} <= types:
                raise ApiError(422, "Invalid", "status.conditions: Approved and Denied "
                               "conditions are mutually exclusive")
            obj["status"]["conditions"] = conditions
            if subresource == "status" and new_status.get("certificate"):
                obj["status"]["certificate"] = new_status["certificate"]
            approved_now = "Approved" in types and "Approved" not in had
            self._bump(obj, "MODIFIED")
            result = json.loads(_public(obj))
        if approved_now:
            self._schedule_signing(name)
        return result

    def delete_csr(self, name: str) -> dict:
        with self._cond:
            obj = self.csrs.pop(name, None)
            if obj is None:
                raise ApiError(404, "NotFound", f'certificatesigningrequests.certificates.k8s.io '
                               f'"{name}" not found')
            self._bump(obj, "DELETED")
        return {"kind": "Status", "apiVersion": "v1", "status": "Success"}

    def list_csrs(self, name: str | None) -> dict:
        with self._cond:
            items = [json.loads(_public(o)) for n, o in self.csrs.items()
                     if name is None or n == name]
            return {"apiVersion": "certificates.k8s.io/v1",
                    "kind": "CertificateSigningRequestList",
                    "metadata": {"resourceVersion": str(self._rv)}, "items": items}

    def watch(self, name: str | None, since: int | None, timeout: float, send) -> None:
        deadline = time.time() + timeout
        with self._cond:
            if since is None:
                # No resourceVersion: synthetic ADDED events for what exists, then changes.
                backlog = [(self._rv, "ADDED", json.loads(_public(o)))
                           for n, o in self.csrs.items() if name is None or n == name]
                since = self._rv
            else:
                backlog = []
        for _, kind, obj in backlog:
            send({"type": kind, "object": obj})
        while True:
            with self._cond:
                pending = [e for e in self._events if e[0] > since and
                           (name is None or e[2]["metadata"]["name"] == name)]
                if not pending:
                    left = deadline - time.time()
                    if left <= 0 or self._stopping:
                        return
                    self._cond.wait(min(left, 0.5))
                    continue
            for rv, kind, obj in pending:
                send({"type": kind, "object": obj})
                since = rv

    def self_review(self, user: str, groups: list[str]) -> dict:
        return {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "status": {"userInfo": {"username": user, "groups": groups}}}

    def discovery(self, path: str) -> dict | None:
        host = self.url.split("//", 1)[1]
        if path == "/version":
            return {"major": "1", "minor": self.minor, "gitVersion": f"v1.{self.minor}.4",
                    "gitCommit": "local", "gitTreeState": "clean",
                    "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23",
                    "compiler": "gc", "platform": "linux/amd64"}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}
        if path == "/api/v1":
            return {"kind": "APIResourceList", "groupVersion": "v1", "resources": []}
        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                _group("authentication.k8s.io"), _group("certificates.k8s.io")]}
        if path == "/apis/certificates.k8s.io/v1":
            verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update",
                     "watch"]
            return _resources("certificates.k8s.io/v1", [
                {"name": "certificatesigningrequests", "singularName":
                 "certificatesigningrequest", "namespaced": False,
                 "kind": "CertificateSigningRequest", "verbs": verbs, "shortNames": ["csr"]},
                {"name": "certificatesigningrequests/approval", "singularName": "",
                 "namespaced": False, "kind": "CertificateSigningRequest",
                 "verbs": ["get", "patch", "update"]},
                {"name": "certificatesigningrequests/status", "singularName": "",
                 "namespaced": False, "kind": "CertificateSigningRequest",
                 "verbs": ["get", "patch", "update"]}])
        if path == "/apis/authentication.k8s.io/v1":
            return _resources("authentication.k8s.io/v1", [
                {"name": "selfsubjectreviews", "singularName": "selfsubjectreview",
                 "namespaced": False, "kind": "SelfSubjectReview", "verbs": ["create"]},
                {"name": "tokenreviews", "singularName": "tokenreview", "namespaced": False,
                 "kind": "TokenReview", "verbs": ["create"]}])
        return None


def _group(name: str) -> dict:
    version = {"groupVersion": f"{name}/v1", "version": "v1"}
    return {"name": name, "versions": [version], "preferredVersion": version}


def _resources(group_version: str, resources: list[dict]) -> dict:
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": resources}


def _condition(kind: str, reason: str, message: str) -> dict:
    now = _rfc3339()
    return {"type": kind, "status": "True", "reason": reason, "message": message,
            "lastUpdateTime": now, "lastTransitionTime": now}


def _public(obj: dict) -> str:
    return json.dumps({k: v for k, v in obj.items() if not k.startswith("_")})


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        import sys

        # A client that rejects our certificate (as the TLS tests make it) is not an error.
        if not isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    api: LocalAPIServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        # The TLS handshake happens here, in the connection's own thread.
        self.request.settimeout(30)
        self.request = self.api._ssl.wrap_socket(self.request, server_side=True)
        super().setup()

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            pass

    def log_message(self, format: str, *args) -> None:
        pass

    def _send(self, code: int, doc: dict) -> None:
        body = json.dumps(doc).encode()
        if self.api.tamper is not None:
            code, body = self.api.tamper(self.command, self.path, code, body)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Type", "").startswith("application/vnd.kubernetes.protobuf"):
            return protobuf.decode_csr(data)
        try:
            doc = json.loads(data or b"{}")
        except ValueError:
            raise ApiError(400, "BadRequest", "the request body is not JSON") from None
        if not isinstance(doc, dict):
            raise ApiError(400, "BadRequest", "the request body is not an object")
        return doc

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path, query = url.path.rstrip("/") or "/", parse_qs(url.query)
        try:
            user, groups = self.api.authenticate(self)
            self.api.requests.append((method, path, user))
            self._route(method, path, query, user, groups)
        except ApiError as exc:
            self._send(exc.code, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                  "status": "Failure", "message": exc.message,
                                  "reason": exc.reason, "code": exc.code})

    def _route(self, method: str, path: str, query: dict, user: str, groups: list[str]) -> None:
        api = self.api
        if method == "GET" and (doc := api.discovery(path)) is not None:
            return self._send(200, doc)
        if path == "/apis/authentication.k8s.io/v1/selfsubjectreviews" and method == "POST":
            self._body_bytes_drain()
            return self._send(201, api.self_review(user, groups))
        if path == CSR_BASE:
            if method == "POST":
                return self._send(201, api.create_csr(self._body(), user, groups))
            if method == "GET":
                selector = query.get("fieldSelector", [""])[0]
                name = selector.split("=", 1)[1] if selector.startswith("metadata.name=") else None
                if query.get("watch", [""])[0] in ("true", "1"):
                    if not api.watch_allowed:
                        raise ApiError(403, "Forbidden", f'User "{user}" cannot watch resource '
                                       '"certificatesigningrequests"')
                    rv = query.get("resourceVersion", [""])[0]
                    timeout = float(query.get("timeoutSeconds", ["1800"])[0])
                    return self._watch(name, int(rv) if rv.isdigit() and rv != "0" else None,
                                       timeout)
                return self._send(200, api.list_csrs(name))
        if path.startswith(CSR_BASE + "/"):
            parts = path[len(CSR_BASE) + 1:].split("/")
            name, sub = parts[0], parts[1] if len(parts) > 1 else ""
            if method == "GET" and sub in ("", "approval", "status"):
                return self._send(200, api.get_csr(name))
            if method == "PUT" and sub in ("approval", "status"):
                return self._send(200, api.update_conditions(name, self._body(), user, groups,
                                                             sub))
            if method == "DELETE" and not sub:
                return self._send(200, api.delete_csr(name))
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _body_bytes_drain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def _watch(self, name: str | None, since: int | None, timeout: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(event: dict) -> None:
            data = json.dumps(event).encode()
            if self.api.tamper is not None:
                data = self.api.tamper("WATCH", self.path, 200, data)[1]
            data += b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        try:
            self.api.watch(name, since, timeout, send)
            self.wfile.write(b"0\r\n\r\n")
        except (ConnectionError, ssl.SSLError):
            self.close_connection = True

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


def write_kubeconfig(path: str, server: LocalAPIServer, user: dict, name: str = "local") -> None:
    """A kubeconfig with one context `name` for `user` (a kubeconfig `user` mapping)."""
    import yaml

    doc = {"apiVersion": "v1", "kind": "Config", "current-context": name,
           "clusters": [{"name": name, "cluster": server.cluster_entry()}],
           "users": [{"name": name, "user": user}],
           "contexts": [{"name": name, "context": {"cluster": name, "user": name}}]}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(doc, fh)



def main() -> None:
    """Run the server for the demo: write its files to --state and serve until stopped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", required=True, help="directory for ca.crt, tokens, kubeconfig")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--auto-approve", action="store_true",
                        help="approve every CSR whose CN is its requester's username")
    args = parser.parse_args()
    os.makedirs(args.state, mode=0o700, exist_ok=True)
    token = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")

    def same_person(csr: dict) -> bool:
        request = x509.load_pem_x509_csr(base64.b64decode(csr["spec"]["request"]))
        cn = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return bool(cn) and cn[0].value == csr["spec"]["username"]

    server = LocalAPIServer(tokens={token: ("alice@example.com", ["oncall", "sre"])},
                            auto_approve=same_person if args.auto_approve else None)
    server.start(args.port)
    with open(os.path.join(args.state, "ca.crt"), "wb") as fh:
        fh.write(server.ca.cert_pem)
    fd = os.open(os.path.join(args.state, "bootstrap.token"),
                 os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    cert, key = server.client_cert("admin", ["system:masters"])
    write_kubeconfig(os.path.join(args.state, "admin.kubeconfig"), server, {
        "client-certificate-data": base64.b64encode(cert).decode(),
        "client-key-data": base64.b64encode(key).decode()})
    with open(os.path.join(args.state, "url"), "w") as fh:
        fh.write(server.url + "\n")
    print(server.url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
