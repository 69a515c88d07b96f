"""A loopback HTTPS server that follows the Kubernetes API for what cred-helper uses.

tests/realcluster/test_local_agrees.py holds it to kube-apiserver v1.37.2: the same request
sequences against both, compared on status codes, `Status` reasons, messages and causes, and
the fields cred-helper reads. What it does, as kube-apiserver does it:
- TLS on 127.0.0.1 with a generated CA; authentication by client certificate issued by that CA
  (CN -> user, O -> groups; expired, not-yet-valid or revoked -> 401 `Status`, like a CA
  rotation would), by bearer token from a table, or by an OIDC ID token from a trusted
  provider (`OIDCAuthenticator`, as kube-apiserver's `--oidc-*` flags: signature against the
  provider's JWKS, iss, aud, exp; username and groups from claims). A credential it does not
  accept -> 401; none at all -> `system:anonymous`, refused with 403 (only `/version` is
  public).
- Authorization shaped like RBAC with the real fixture's roles: an authenticated user may
  review itself and create, get, list and watch CSRs; approving takes `system:masters` or a
  name in `approvers`; deleting, `/status` and reading subresources take `system:masters`.
  `csr_creators` and `watch_allowed` take create or watch away to test a 403.
- `/version`, `/api`, `/apis` and the group discovery documents kubectl reads.
- SelfSubjectReview (`authentication.k8s.io/v1`), as `kubectl auth whoami` uses it.
- The CSR API (`certificates.k8s.io/v1`): create (the request's PEM and signature, usages,
  signerName and `expirationSeconds >= 600` validated together into one 422 with its causes;
  `spec.username/groups` set from the requester), get, list and watch with field selectors on
  `metadata.name` and `spec.signerName`, `resourceVersion` (a watch from one older than the
  history kept gets an ERROR event `410 Expired`; `forget_history()` does what a restart does
  to the real watch cache), `timeoutSeconds` and `allowWatchBookmarks`; delete; `/approval`
  and `/status` updates, in JSON or in the protobuf kubectl 1.32 sends. `Status` answers carry
  `details`, and every answer an `Audit-Id`.
- The `kubernetes.io/kube-apiserver-client` signer as kcm's: after approval, a certificate
  with the request's subject (written back as Go writes a pkix.Name), client-auth usage, key
  usage only as requested, NotBefore backdated 5 minutes and NotAfter = now +
  expirationSeconds, never past the CA's own; a usage outside client auth / digital
  signature / key encipherment, or no client auth, makes the CSR Failed.
- An optional auto-approver (a policy function), acting like an approving controller.

What it does not do: namespaces and every other resource, protobuf responses (it answers
JSON, which kubectl accepts), HTTP/2, aggregated discovery, admission, CSR garbage collection,
list pagination, and persistence across restarts. Unknown client-certificate CAs fail the TLS
handshake rather than answering 401 (Python's ssl cannot defer that check); revocation by
serial stands in for a rotated CA in tests.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import re
import signal
import socket
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

from cred_helper.x509names import subject_of, unbounded

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
    """A `Status` failure. `reason` "" leaves it out, as kube-apiserver does for a 500."""

    def __init__(self, code: int, reason: str, message: str,
                 details: dict | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details


GROUP = "certificates.k8s.io"
RESOURCE = "certificatesigningrequests"
ANONYMOUS = ("system:anonymous", ["system:unauthenticated"])


def _csr_details(name: str) -> dict:
    return {"name": name, "group": GROUP, "kind": RESOURCE}


def _check_preconditions(pod: dict, eviction: dict) -> None:
    """An Eviction's uid and resourceVersion preconditions, with kube-apiserver 1.37's 409s."""
    options = eviction.get("deleteOptions") or {}
    wanted = options.get("preconditions") or {}
    meta = pod["metadata"]
    for field, name in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
        if wanted.get(field) and wanted[field] != meta.get(field):
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on Pod '
                           f'"{meta["name"]}": the {name} in the precondition ({wanted[field]}) '
                           f'does not match the {name} in record ({meta.get(field)}). The '
                           "object might have been modified", {"name": meta["name"],
                                                               "kind": "Pod"})


def not_found(name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{RESOURCE}.{GROUP} "{name}" not found', _csr_details(name))


def forbidden(user: str, verb: str, resource: str = RESOURCE, group: str = GROUP,
              name: str = "") -> ApiError:
    """RBAC's answer, word for word: the message names the verb, the (sub)resource and group."""
    base = resource.split("/")[0]
    what = f'{base}.{group} "{name}"' if name else f"{base}.{group}"
    details = {"name": name, "group": group, "kind": base} if name else \
        {"group": group, "kind": base}
    return ApiError(403, "Forbidden", f'{what} is forbidden: User "{user}" cannot {verb} '
                    f'resource "{resource}" in API group "{group}" at the cluster scope', details)


def bad_resource_version(text: str) -> str:
    return f'resourceVersion: Invalid value: "{text}": strconv.ParseUint: parsing "{text}": ' \
        'invalid syntax'


JWT_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384",
                  "PS512"]


class OIDCAuthenticator:
    """kube-apiserver's OIDC authenticator for one provider: `--oidc-issuer-url`,
    `--oidc-client-id`, `--oidc-username-claim` (email: `email_verified` must not be false),
    `--oidc-groups-claim`, and the username prefix (issuer#) for claims other than email.

    Compared with the real one (tests/realcluster/test_real_oidc.py): the same algorithms and
    time rules. Kept apart on purpose: an http issuer is taken here (the fast tests run the
    provider without TLS; kube-apiserver wants https and its own `certificateAuthority`), there
    are no claim rules, and SelfSubjectReview carries no `extra` (the real one adds a
    credential id: `X509SHA256=` for certificates, `JTI=` for tokens with a `jti`); cred-helper
    reads none of these. The real one logs why it refused a token; both answer a bare 401."""

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
            # As kube-apiserver 1.37's JWT authenticator (go-oidc): these algorithms, not
            # EdDSA; `exp` required with no leeway, `nbf` with 5 minutes, `iat` not required.
            claims = jwt.decode(token, key.key, algorithms=JWT_ALGORITHMS,
                                audience=self.client_id, issuer=self.issuer,
                                options={"require": ["exp"], "verify_nbf": False})
            if isinstance(claims.get("nbf"), int | float) and claims["nbf"] > time.time() + 300:
                return None
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


KNOWN_USAGES = ("any", "cert sign", "client auth", "code signing", "content commitment",
                "crl sign", "data encipherment", "decipher only", "digital signature",
                "email protection", "encipher only", "ipsec end system", "ipsec tunnel",
                "ipsec user", "key agreement", "key encipherment", "microsoft sgc",
                "netscape sgc", "ocsp signing", "s/mime", "server auth", "signing",
                "timestamping")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _go_value(value: object) -> str:
    """A value as Go's field errors print it: strings quoted, nil as null."""
    return "null" if value is None else json.dumps(value)


def _cause(reason: str, field: str, message: str) -> dict:
    return {"reason": reason, "message": message, "field": field}


def _request_problem(request: str | None) -> str | None:
    """What kube-apiserver says of spec.request, or None when it is a signed PKCS#10 PEM."""
    try:
        data = base64.b64decode(request or "")
        if b"-----BEGIN CERTIFICATE REQUEST-----" not in data:
            return "PEM block type must be CERTIFICATE REQUEST"
        csr = x509.load_pem_x509_csr(data)
    except ValueError:
        return "PEM block type must be CERTIFICATE REQUEST"
    if csr.is_signature_valid:
        return None
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    key = csr.public_key()
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "x509: Ed25519 verification failure"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "x509: ECDSA verification failure"
    return "crypto/rsa: verification error"


def _signer_name_ok(signer: str) -> bool:
    domain, _, path = signer.partition("/")
    return bool(path) and "." in domain and len(domain) <= 253 and all(
        _DNS_LABEL.fullmatch(label) for label in domain.split("."))


def validate_csr(meta: dict, spec: dict) -> list[dict]:
    """kube-apiserver's validation causes for a new CSR, in its order."""
    causes = []
    if not meta.get("name") and not meta.get("generateName"):
        causes.append(_cause("FieldValueRequired", "metadata.name",
                             "Required value: name or generateName is required"))
    request = spec.get("request")
    problem = _request_problem(request)
    if problem:
        causes.append(_cause("FieldValueInvalid", "spec.request",
                             f"Invalid value: {_go_value(request)}: {problem}"))
    usages = spec.get("usages") or []
    if not usages:
        causes.append(_cause("FieldValueRequired", "spec.usages", "Required value"))
    seen: set[str] = set()
    for i, usage in enumerate(usages):
        if usage not in KNOWN_USAGES:
            supported = ", ".join(f'"{u}"' for u in KNOWN_USAGES)
            causes.append(_cause("FieldValueNotSupported", f"spec.usages[{i}]",
                                 f"Unsupported value: {_go_value(usage)}: supported values: "
                                 f"{supported}"))
        elif usage in seen:
            causes.append(_cause("FieldValueDuplicate", f"spec.usages[{i}]",
                                 f"Duplicate value: {_go_value(usage)}"))
        seen.add(usage)
    signer = spec.get("signerName")
    if not signer:
        causes.append(_cause("FieldValueRequired", "spec.signerName", "Required value"))
    elif not _signer_name_ok(signer):
        causes.append(_cause("FieldValueInvalid", "spec.signerName",
                             f"Invalid value: {_go_value(signer)}: must be a fully qualified "
                             "domain and path of the form 'example.com/signer-name'"))
    seconds = spec.get("expirationSeconds")
    if seconds is not None and seconds < 600:
        causes.append(_cause("FieldValueInvalid", "spec.expirationSeconds",
                             f"Invalid value: {seconds}: may not specify a duration less than "
                             "600 seconds (10 minutes)"))
    return causes


def invalid(name: str, causes: list[dict]) -> ApiError:
    """422 Invalid as kube-apiserver words it: one cause inline, several in brackets."""
    parts = [f"{c['field']}: {c['message']}" for c in causes]
    text = parts[0] if len(parts) == 1 else f"[{', '.join(parts)}]"
    details = {"group": GROUP, "kind": "CertificateSigningRequest", "causes": causes}
    if name:
        details = {"name": name, **details}
    return ApiError(422, "Invalid", f'CertificateSigningRequest.{GROUP} "{name}" is invalid: '
                    f"{text}", details)


FIELD_LABELS = {"metadata.name": lambda o: o["metadata"]["name"],
                "spec.signerName": lambda o: o["spec"].get("signerName", "")}
BOOKMARK_BEFORE_END = 2.0  # seconds
BOOKMARK_EVERY = 60.0


def _bookmark(resource_version: int, initial_end: bool = False) -> dict:
    """A BOOKMARK event as kube-apiserver sends it for CSRs: an empty object of the kind
    with only the resourceVersion (and, after the initial events, their end annotation)."""
    meta: dict = {"resourceVersion": str(resource_version)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"type": "BOOKMARK", "object": {
        "kind": "CertificateSigningRequest", "apiVersion": "certificates.k8s.io/v1",
        "metadata": meta, "spec": {"request": None, "signerName": ""}, "status": {}}}


def parse_field_selector(text: str) -> list[tuple[str, str, str]]:
    """`a=b,c!=d` as (label, operator, value) terms; 400 as kube-apiserver words it for a
    term it cannot read or a field it does not index for CSRs."""
    terms = []
    for term in filter(None, text.split(",")):
        for op in ("!=", "==", "="):
            label, found, value = term.partition(op)
            if found:
                break
        else:
            raise ApiError(400, "BadRequest",
                           f"invalid selector: '{text}'; can't understand '{term}'")
        if label not in FIELD_LABELS:
            raise ApiError(400, "BadRequest", f"field label not supported: {label}")
        terms.append((label, "!=" if op == "!=" else "=", value))
    return terms


def _selects(selector: list[tuple[str, str, str]], obj: dict) -> bool:
    return all((FIELD_LABELS[label](obj) == value) == (op == "=")
               for label, op, value in selector)


# The attribute types Go's pkix.Name keeps, in the order ToRDNSequence writes them.
_GO_NAME_ORDER = (NameOID.COUNTRY_NAME, NameOID.STATE_OR_PROVINCE_NAME, NameOID.LOCALITY_NAME,
                  NameOID.STREET_ADDRESS, NameOID.POSTAL_CODE, NameOID.ORGANIZATION_NAME,
                  NameOID.ORGANIZATIONAL_UNIT_NAME)


def go_subject(name: x509.Name) -> x509.Name:
    """A request's subject as kcm's signer writes it into the certificate: Go parses it into
    a pkix.Name and writes that back, so every value of one type (all the O= groups) shares
    one multi-valued RDN, types come in Go's order, CN and serialNumber keep one value (the
    last) and other attribute types are dropped."""
    rdns = []
    with unbounded():  # Go and kcm set no bound on a name's length (x509names.py)
        for oid in _GO_NAME_ORDER:
            values = name.get_attributes_for_oid(oid)
            if values:
                rdns.append(x509.RelativeDistinguishedName(
                    [x509.NameAttribute(oid, str(v.value), _validate=False) for v in values]))
        for oid in (NameOID.COMMON_NAME, NameOID.SERIAL_NUMBER):
            values = name.get_attributes_for_oid(oid)
            if values:
                rdns.append(x509.RelativeDistinguishedName(
                    [x509.NameAttribute(oid, str(values[-1].value), _validate=False)]))
    return x509.Name(rdns)


def _client_usage_problem(usages: list[str]) -> str | None:
    """kcm's kube-apiserver-client signer: the first usage it does not allow, or a missing
    client auth, fails the CSR (pkg/controller/certificates/signer)."""
    for usage in usages:
        if usage not in ALLOWED_USAGES:
            return f"invalid usage for client certificate: {usage}"
    if "client auth" not in usages:
        return "missing required usage for client certificate: client auth"
    return None


def _issue(ca: CA, subject: x509.Name, public_key, start: datetime.datetime,
           end: datetime.datetime, usages: list[str], client: bool = True) -> x509.Certificate:
    """A certificate as kcm's signer makes it: key usage only for the requested digital
    signature / key encipherment (none at all otherwise), extended key usage, not a CA, the
    authority key id, and no subject key id."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.name)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end))
    signs, enciphers = "digital signature" in usages, "key encipherment" in usages
    if signs or enciphers:
        builder = builder.add_extension(x509.KeyUsage(
            signs, False, enciphers, False, False, False, False, False, False), critical=True)
    eku = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.key.public_key()), critical=False))
    return builder.sign(ca.key, hashes.SHA256())


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
        self.date_offset = 0.0  # seconds added to the Date header: a server with a skewed clock
        self.signer = Misbehaviour()  # test-only knobs for a signer that gets it wrong
        self.revoked_serials: set[int] = set()
        # A misbehaving mode for fuzz tests: (method, path, code, body) -> (code, body), applied
        # to every answer and every watch event line. None: answer as kube-apiserver would.
        self.tamper: Callable[[str, str, int, bytes], tuple[int, bytes]] | None = None
        self.csrs: dict[str, dict] = {}
        self.csr_creations = 0
        self.received = 0  # every request that reached a handler
        # For the janitor's benchmark (system:masters only, no validation): pods and
        # PodDisruptionBudgets listed in pages (`limit`, `continue`), evictions that delete,
        # Events accepted.
        self.pods: list[dict] = []
        self.pdbs: list[dict] = []
        self.evicted: list[str] = []
        self.requests: list[tuple[str, str, str]] = []  # (method, path, user)
        self._rv = 0
        self._floor = 0  # the oldest resourceVersion a watch may start from (forget_history)
        self._events: list[tuple[int, str, dict]] = []  # (resourceVersion, type, object)
        self._cond = threading.Condition()
        self._stopping = False
        self._connections: set[socket.socket] = set()  # open client connections, for stop()
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
        # A stopped kube-apiserver leaves no connection open: a kept-alive one would go on
        # answering from its own thread.
        with self._cond:
            connections, self._connections = list(self._connections), set()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def restart(self, down: float = 0.0) -> None:
        """Go away for `down` seconds and come back on the same port, as kube-apiserver does
        in an upgrade: open watches end, connections are refused meanwhile, and the watch
        history starts afresh (an older resourceVersion is then 410 Expired)."""
        port = self._httpd.server_address[1] if self._httpd else 0
        self.stop()
        time.sleep(down)
        self.forget_history()
        with self._cond:
            self._stopping = False
        self.start(port)

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
            usages = list(spec.get("usages") or [])
            problem = _client_usage_problem(usages)
            if problem:
                obj["status"]["conditions"].append(_condition(
                    "Failed", "SignerValidationFailure", problem))
                self._bump(obj, "MODIFIED")
                return
            request = x509.load_pem_x509_csr(base64.b64decode(spec["request"]))
            now = datetime.datetime.now(datetime.timezone.utc)
            seconds = spec.get("expirationSeconds") or 365 * 86400
            bad = self.signer
            if bad.ignore_expiration:
                seconds = 24 * 3600
            subject = go_subject(subject_of(request))
            if bad.add_groups:
                subject = go_subject(x509.Name([*subject_of(request), *(x509.NameAttribute(
                    NameOID.ORGANIZATION_NAME, g) for g in bad.add_groups)]))
            public_key = request.public_key()
            if bad.other_key:
                from cryptography.hazmat.primitives.asymmetric import ec

                public_key = ec.generate_private_key(ec.SECP256R1()).public_key()
            start = now - datetime.timedelta(minutes=5) + datetime.timedelta(
                seconds=bad.not_before_offset)
            ca = bad.other_ca or self.ca
            # kcm never signs past its own CA certificate's end.
            end = min(now + datetime.timedelta(seconds=seconds), ca.cert.not_valid_after_utc)
            cert = _issue(ca, subject, public_key, start, end, usages,
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
            cn = subject_of(cert).get_attributes_for_oid(NameOID.COMMON_NAME)
            orgs = subject_of(cert).get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
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
        if not header:
            # No credential at all: kube-apiserver's anonymous user (--anonymous-auth defaults
            # to true), whom RBAC then refuses with 403, not 401.
            return ANONYMOUS[0], list(ANONYMOUS[1])
        raise ApiError(401, "Unauthorized", "Unauthorized")

    # ---- API ---------------------------------------------------------------------------------

    def create_csr(self, body: dict, user: str, groups: list[str]) -> dict:
        meta = body.get("metadata") or {}
        spec = body.get("spec") or {}
        request = spec.get("request")
        if request is not None:
            try:
                base64.b64decode(request, validate=True)
            except (ValueError, TypeError):
                # Decoding []byte fails before validation: 400, not 422.
                raise ApiError(400, "BadRequest", 'CertificateSigningRequest in version "v1" '
                               'cannot be handled as a CertificateSigningRequest: illegal '
                               'base64 data at input byte 0') from None
        name = meta.get("name") or (meta.get("generateName", "") + uuid.uuid4().hex[:5]
                                    if meta.get("generateName") else "")
        causes = validate_csr(meta, spec)
        if causes:
            raise invalid(meta.get("name") or "", causes)
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
                raise ApiError(409, "AlreadyExists", f'{RESOURCE}.{GROUP} "{name}" already '
                               'exists', _csr_details(name))
            self.csrs[name] = obj
            self.csr_creations += 1
            self._bump(obj, "ADDED")
            created = json.loads(_public(obj))
        if self.auto_approve and self.auto_approve(created):
            threading.Thread(target=self._set_condition, daemon=True, args=(
                name, "Approved", "AutoApproved", "approved by the local auto-approver")).start()
        return created

    def authorize(self, user: str, groups: list[str], verb: str, resource: str = RESOURCE,
                  name: str = "") -> None:
        """A small stand-in for RBAC with the real fixture's roles: `system:masters` may do
        anything; an authenticated user may review itself and create, get, list and watch
        CSRs (the cred-helper-requester role); approving (and reading the approval
        subresource) takes a name in `approvers`; deleting and /status take `system:masters`.
        The anonymous user (no credential) may do none of it."""
        if "system:masters" in groups:
            return
        if user == ANONYMOUS[0]:
            raise forbidden(user, verb, resource, name=name)
        if resource == RESOURCE and verb in ("get", "list", "watch", "create"):
            if verb == "create" and self.csr_creators is not None \
                    and user not in self.csr_creators:
                raise forbidden(user, verb)
            if verb == "watch" and not self.watch_allowed:
                raise forbidden(user, verb)
            return
        if resource == f"{RESOURCE}/approval" and user in self.approvers:
            return
        raise forbidden(user, verb, resource, name=name)

    def get_csr(self, name: str) -> dict:
        with self._cond:
            if name not in self.csrs:
                raise not_found(name)
            return json.loads(_public(self.csrs[name]))

    def update_conditions(self, name: str, body: dict, user: str, groups: list[str],
                          subresource: str) -> dict:
        new_status = body.get("status") or {}
        approved_now = False
        with self._cond:
            obj = self.csrs.get(name)
            if obj is None:
                raise not_found(name)
            sent_rv = (body.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != obj["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on '
                               f'{RESOURCE}.{GROUP} "{name}": the object has been modified; '
                               'please apply your changes to the latest version and try again',
                               _csr_details(name))
            had = {c["type"] for c in obj["status"].get("conditions", [])}
            conditions = []
            for c in new_status.get("conditions") or []:
                cond = _condition(c.get("type", ""), c.get("reason", ""), c.get("message", ""))
                cond["status"] = c.get("status") or "True"
                conditions.append(cond)
            types = {c["type"] for c in conditions}
            causes = [_cause("FieldValueDuplicate", f"status.conditions[{i}].type",
                             f"Duplicate value: {_go_value(c['type'])}")
                      for i, c in enumerate(conditions)
                      if c["type"] in {d["type"] for d in conditions[:i]}]
            if {"Approved", "Denied"} <= types:
                causes.append(_cause(
                    "FieldValueInvalid", "status.conditions",
                    'Invalid value: "{conditions[{\\"type\\": \\"Approved\\"}], '
                    'conditions[{\\"type\\": \\"Denied\\"}]}": must specify at most one '
                    'of: `conditions[{"type": "Approved"}]`, `conditions[{"type": "Denied"}]`'))
            causes += [_cause("FieldValueForbidden", "status.conditions",
                              f'Forbidden: updates may not remove a condition of type "{kind}"')
                       for kind in ("Approved", "Denied", "Failed")
                       if kind in had and kind not in types]
            if causes:
                raise invalid(name, causes)
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
                raise not_found(name)
            self._bump(obj, "DELETED")
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {**_csr_details(name), "uid": obj["metadata"]["uid"]}}

    def list_csrs(self, selector: list[tuple[str, str, str]]) -> dict:
        with self._cond:
            items = [json.loads(_public(o)) for o in self.csrs.values() if _selects(selector, o)]
            return {"apiVersion": "certificates.k8s.io/v1",
                    "kind": "CertificateSigningRequestList",
                    "metadata": {"resourceVersion": str(self._rv)}, "items": items}

    def forget_history(self) -> None:
        """Drop the watch history, as a kube-apiserver restart empties its watch cache: a
        watch from an older resourceVersion is then answered 410 Expired."""
        with self._cond:
            self._events.clear()
            self._floor = self._rv

    def watch(self, selector: list[tuple[str, str, str]], since: int | None, timeout: float,
              send, bookmarks: bool = False) -> None:
        """kube-apiserver's watch cache, for one client: from `since` (None: the current
        state as ADDED events first), events that match `selector`, until `timeout`. A
        `since` older than the history kept is one ERROR event (410 Expired), then the end.

        With `bookmarks`, as the real cache does: after the initial ADDED events a BOOKMARK
        annotated `k8s.io/initial-events-end`; then a BOOKMARK with the latest
        resourceVersion (of any CSR, matching or not) every minute and about 2 s before the
        timeout, each only when that resourceVersion is newer than the last one sent."""
        start = time.time()
        deadline = start + timeout
        with self._cond:
            if since is None:
                # No resourceVersion (or 0): synthetic ADDED events for what exists, then changes.
                backlog = [{"type": "ADDED", "object": json.loads(_public(o))}
                           for o in self.csrs.values() if _selects(selector, o)]
                since = self._rv
                if bookmarks:
                    backlog.append(_bookmark(since, initial_end=True))
            elif since < self._floor:
                backlog = [{"type": "ERROR", "object": {
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": f"too old resource version: {since} ({self._floor})",
                    "reason": "Expired", "code": 410}}]
                since = None
            else:
                backlog = []
        for event in backlog:
            send(event)
        if since is None:
            return
        sent = since  # the newest resourceVersion this client has been told about
        next_bookmark = min(start + BOOKMARK_EVERY, deadline - BOOKMARK_BEFORE_END) \
            if bookmarks else float("inf")
        while True:
            bookmark = None
            with self._cond:
                pending = [e for e in self._events if e[0] > since and _selects(selector, e[2])]
                now = time.time()
                if not pending and now >= next_bookmark:
                    if self._rv > sent:
                        bookmark = self._rv
                    after = min(now + BOOKMARK_EVERY, deadline - BOOKMARK_BEFORE_END)
                    next_bookmark = after if after > now else float("inf")
                elif not pending:
                    if now >= deadline or self._stopping:
                        return
                    self._cond.wait(min(deadline - now, next_bookmark - now, 0.5))
                    continue
            if bookmark is not None:
                send(_bookmark(bookmark))
                since = sent = bookmark
            for rv, kind, obj in pending:
                send({"type": kind, "object": obj})
                since = sent = rv

    def access_review(self, body: dict, user: str, groups: list[str]) -> dict:
        """SelfSubjectAccessReview for resourceAttributes, answered by `authorize`."""
        if user == ANONYMOUS[0]:
            raise forbidden(user, "create", "selfsubjectaccessreviews", "authorization.k8s.io")
        spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        attrs = spec.get("resourceAttributes") if isinstance(spec.get("resourceAttributes"),
                                                             dict) else {}
        resource = attrs.get("resource", "")
        if attrs.get("subresource"):
            resource = f"{resource}/{attrs['subresource']}"
        try:
            if attrs.get("group", "") != GROUP and "system:masters" not in groups:
                raise forbidden(user, str(attrs.get("verb", "")), str(resource))
            self.authorize(user, groups, str(attrs.get("verb", "")), str(resource),
                           str(attrs.get("name", "")))
            status = {"allowed": True, "reason": "RBAC: allowed by the local stand-in"}
        except ApiError:
            status = {"allowed": False}
        return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}

    def self_review(self, user: str, groups: list[str]) -> dict:
        return {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": _rfc3339()},
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
        # As Go servers do: without it, a response's body waits for the client's delayed ACK
        # of its headers (40 ms a request with a body).
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = self.api._ssl.wrap_socket(self.request, server_side=True)
        super().setup()
        with self.api._cond:
            self.api._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.api._cond:
                self.api._connections.discard(self.connection)

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            pass

    def log_message(self, format: str, *args) -> None:
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header, from a clock `date_offset` seconds off (doctor's clock check).
        return super().date_time_string((time.time() if timestamp is None else timestamp)
                                        + self.api.date_offset)

    def _send(self, code: int, doc: dict) -> None:
        body = json.dumps(doc).encode()
        if self.api.tamper is not None:
            code, body = self.api.tamper(self.command, self.path, code, body)
        self.send_response(code)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self, kind: str = "CertificateSigningRequest") -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Type", "").startswith("application/vnd.kubernetes.protobuf"):
            return protobuf.decode_csr(data)
        try:
            doc = json.loads(data)  # an empty body is an error too, as kube-apiserver has it
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise ApiError(400, "BadRequest", f"the object provided is unrecognized (must be "
                           f"of type {kind}): couldn't get version/kind; json parse error")
        return doc

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path, query = url.path.rstrip("/") or "/", parse_qs(url.query)
        self.api.received += 1  # authenticated or not (the fuzz suite's depth)
        try:
            user, groups = self.api.authenticate(self)
            self.api.requests.append((method, path, user))
            self._route(method, path, query, user, groups)
        except ApiError as exc:
            doc = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": exc.message, "reason": exc.reason, "details": exc.details,
                   "code": exc.code}
            self._send(exc.code, {k: v for k, v in doc.items() if v or k == "metadata"})

    def _route(self, method: str, path: str, query: dict, user: str, groups: list[str]) -> None:
        api = self.api
        allow = api.authorize
        if method == "GET" and (doc := api.discovery(path)) is not None:
            if user == ANONYMOUS[0] and path != "/version":
                # /version is public (system:public-info-viewer); discovery is not.
                raise ApiError(403, "Forbidden", f'forbidden: User "{user}" cannot get path '
                               f'"{path}"', {})
            return self._send(200, doc)
        if path == "/apis/authentication.k8s.io/v1/selfsubjectreviews" and method == "POST":
            if user == ANONYMOUS[0]:
                raise forbidden(user, "create", "selfsubjectreviews", "authentication.k8s.io")
            self._body("SelfSubjectReview")
            return self._send(201, api.self_review(user, groups))
        if path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" \
                and method == "POST":
            return self._send(201, api.access_review(self._body("SelfSubjectAccessReview"),
                                                     user, groups))
        if self._janitor_route(method, path, query, groups):
            return None
        rv = query.get("resourceVersion", [""])[0]
        if rv and not rv.isdigit():
            if path == CSR_BASE and method == "GET" and query.get("watch", [""])[0] \
                    not in ("true", "1"):
                raise ApiError(400, "BadRequest",
                               f"invalid resource version: {bad_resource_version(rv)}")
            raise ApiError(500, "", bad_resource_version(rv))
        if path == CSR_BASE:
            if method == "POST":
                allow(user, groups, "create")
                return self._send(201, api.create_csr(self._body(), user, groups))
            if method == "GET":
                watching = query.get("watch", [""])[0] in ("true", "1")
                allow(user, groups, "watch" if watching else "list")
                selector = parse_field_selector(query.get("fieldSelector", [""])[0])
                if watching:
                    timeout = float(query.get("timeoutSeconds", ["1800"])[0])
                    bookmarks = query.get("allowWatchBookmarks", [""])[0] in ("true", "1")
                    return self._watch(selector, int(rv) if rv and rv != "0" else None,
                                       timeout, bookmarks)
                return self._send(200, api.list_csrs(selector))
        if path.startswith(CSR_BASE + "/"):
            parts = path[len(CSR_BASE) + 1:].split("/")
            name, sub = parts[0], parts[1] if len(parts) > 1 else ""
            resource = f"{RESOURCE}/{sub}" if sub else RESOURCE
            if method == "GET" and sub in ("", "approval", "status"):
                allow(user, groups, "get", resource, name)
                return self._send(200, api.get_csr(name))
            if method == "PUT" and sub in ("approval", "status"):
                allow(user, groups, "update", resource, name)
                return self._send(200, api.update_conditions(name, self._body(), user, groups,
                                                             sub))
            if method == "DELETE" and not sub:
                allow(user, groups, "delete", resource, name)
                return self._send(200, api.delete_csr(name))
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _janitor_route(self, method: str, path: str, query: dict, groups: list[str]) -> bool:
        """Pods, PDBs, evictions and Events, as much as the janitor's benchmark needs."""
        parts = path.strip("/").split("/")
        lists = {"/api/v1/pods": self.api.pods,
                 "/apis/policy/v1/poddisruptionbudgets": self.api.pdbs}
        if method == "GET" and path in lists:
            items = lists[path]
            start = int(query.get("continue", ["0"])[0])
            end = start + int(query.get("limit", [str(len(items) or 1)])[0])
            more = str(end) if end < len(items) else ""
            self._send(200, {"kind": "List", "apiVersion": "v1",
                             "metadata": {"resourceVersion": "1", "continue": more},
                             "items": items[start:end]})
            return True
        if method != "POST" or len(parts) < 5 or parts[:3] != ["api", "v1", "namespaces"]:
            return False
        if "system:masters" not in groups:
            raise ApiError(403, "Forbidden", "forbidden", {})
        body = self._body("Eviction")
        if len(parts) == 5 and parts[4] == "events":
            self._send(201, body)
            return True
        if len(parts) == 7 and parts[4] == "pods" and parts[6] == "eviction":
            ns, name = parts[3], parts[5]
            with self.api._cond:
                pods = self.api.pods
                at = next((i for i, p in enumerate(pods) if p["metadata"]["namespace"] == ns
                           and p["metadata"]["name"] == name), None)
                if at is None:
                    raise not_found(name)
                _check_preconditions(pods[at], body)
                if query.get("dryRun") != ["All"]:
                    self.api.evicted.append(f"{ns}/{name}")
                    del pods[at]
            self._send(201, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                             "status": "Success", "code": 201})
            return True
        return False

    def _watch(self, selector: list[tuple[str, str, str]], since: int | None, timeout: float,
               bookmarks: bool) -> None:
        # kube-apiserver answers a JSON watch as `application/json` (not `;stream=watch`),
        # chunked, one event per line; errors after the headers are ERROR events.
        self.send_response(200)
        self.send_header("Audit-Id", str(uuid.uuid4()))
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
            self.api.watch(selector, since, timeout, send, bookmarks)
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
