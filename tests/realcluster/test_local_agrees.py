"""The local API server (tests/support/apiserver.py) agrees with the real kube-apiserver.

Each sequence below sends the same plain HTTP requests, with the same admin and bootstrap
tokens, to both servers, and reduces every answer to what cred-helper (and the approval wait
being built for issue 10) reads: status code, the `Status` reason, code, message and causes,
the CSR fields (`spec.username/groups`, conditions' type/status/reason, the certificate's
subject, usages and lifetime), the watch events' types and order, and a few headers. Not whole
bodies: timestamps, uids, managedFields and resourceVersion values differ by nature, so
resourceVersions are compared by their relations (newer, equal, older).

Differences found against kube-apiserver v1.37.2 (real / local before / done):
- No credential: 403 Forbidden for `system:anonymous` (`--anonymous-auth` is on by default;
  `/version` stays public) / 401 / the local server now has the anonymous user.
- SelfSubjectReview with a malformed, empty or non-object body: 400 BadRequest / 201 (body
  ignored) / parsed, 400. `metadata.creationTimestamp` is set / null / set.
- CSR create, invalid: 422 Invalid with every cause at once (`details.causes` with reason and
  field, in the order request, usages, signerName, expirationSeconds; several causes in
  brackets in the message) / the first problem only, no details, other wording / the same
  validation now. Empty `usages` (Required), unknown (NotSupported) and repeated
  (Duplicate) usages, a signerName not of the form `example.com/name`, a missing name: 422 /
  accepted / 422. A bad signature names the key type (`x509: Ed25519 verification
  failure`) / "PEM block type" / as real. `request` not base64: 400 BadRequest / 422 / 400.
  An empty body: 400 / 422 / 400.
- Every `Status` for a CSR carries `details` {name, group, kind} / none / added. DELETE
  answers Success with details (uid too) / bare Success / as real.
- RBAC (the real fixture's requester role: create, get, list, watch): the bootstrap user's
  DELETE, GET of `/approval`, PUT of `/approval` or `/status`: 403 with RBAC's wording / DELETE
  and GETs allowed, other wording / the local server has that role: `system:masters` may do
  anything, `approvers` may approve; everyone authenticated may create/get/list/watch.
- fieldSelector: `metadata.name` and `spec.signerName` with `=`, `==`, `!=`, comma-joined;
  another field: 400 "field label not supported: X"; unreadable: 400 "invalid selector" /
  anything other than `metadata.name=` ignored (the whole list) / parsed as real.
- resourceVersion not a number: a watch or GET answers HTTP 500 (Status without a reason), a
  list 400 BadRequest / treated as no resourceVersion (synthetic ADDED) / as real.
- A watch from a resourceVersion older than the watch cache (after a kube-apiserver restart):
  HTTP 200, one ERROR event with Status 410 Expired "too old resource version: N (M)", then
  the stream ends at once / never (no history limit) / `forget_history()` (what a restart
  does to the cache) and the same ERROR event. A resourceVersion from the future: 200, no
  events until timeoutSeconds / the same.
- BOOKMARK (allowWatchBookmarks=true): without a resourceVersion (or 0), right after the
  ADDED events a BOOKMARK annotated `k8s.io/initial-events-end: "true"`; then one about 2 s
  before timeoutSeconds (and every minute), only when the cache's resourceVersion (of any
  CSR) moved past the last one sent; its object is an empty CertificateSigningRequest with
  only metadata.resourceVersion, `spec.request: null`, `spec.signerName: ""` / no bookmarks
  at all / the same.
- kcm's signer: key usage only for requested `digital signature` / `key encipherment` (no
  KeyUsage extension for client auth alone), no subject key id, NotAfter capped at the CA's
  own; a bad usage fails with "invalid usage for client certificate: <first bad usage>" or
  "missing required usage for client certificate: client auth" / KeyUsage always, ["..."]
  lists, no cap / as real.
- /approval updates: Approved and Denied together, a repeated condition type, or an update
  that removes an Approved (Denied, Failed) condition: 422 Invalid with one cause each
  (FieldValueInvalid "must specify at most one of", FieldValueDuplicate on
  `status.conditions[i].type`, FieldValueForbidden "updates may not remove a condition") /
  other wording for the first, the other two accepted / as real. An update without a
  resourceVersion is unconditional on both.
- SelfSubjectAccessReview (what `setup` and `doctor` ask), added to the local server for them:
  `allowed` for the bootstrap user's create and watch of CSRs, not for their approval or
  deletion; the admin's allowed; a bad token 401; no credential 403 / the same.
- `Audit-Id` on every answer / none / added. Agreed already: watch streams are
  `Content-Type: application/json` (not `;stream=watch`) and chunked; events after approval
  are MODIFIED (Approved) then MODIFIED (certificate); Denied and DELETED events; 409
  AlreadyExists and Conflict; 404 NotFound; 401 for a bad token; the stream ends at
  timeoutSeconds. Not compared: protobuf answers (the local server answers JSON, which
  clients accept), the real one's chunked encoding of large JSON answers.
"""

from __future__ import annotations

import base64
import datetime
import difflib
import http.client
import json
import re
import ssl
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from tests.support.apiserver import LocalAPIServer
from tests.support.controlplane import ADMIN, BOOTSTRAP

pytestmark = pytest.mark.realcluster

CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SIGNER = "kubernetes.io/kube-apiserver-client"


# ---- talking to one server -----------------------------------------------------------------

@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Watch:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    body: bytes = b""
    seconds: float = 0.0  # from the request to the end of the stream
    started: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def wait(self) -> Watch:
        assert self.thread is not None
        self.thread.join(120)
        return self


@dataclass
class Server:
    label: str
    url: str
    ca: x509.Certificate  # the serving certificate's
    signer: x509.Certificate  # the CSR signer's
    tokens: dict[str, str]  # "admin", "bootstrap", "bad" -> bearer token
    forget: Callable[[], None]  # make the server forget its watch history

    def _connect(self, timeout: float = 60) -> http.client.HTTPSConnection:
        host, port = self.url.removeprefix("https://").split(":")
        ctx = ssl.create_default_context(cadata=self.ca.public_bytes(
            serialization.Encoding.PEM).decode())
        return http.client.HTTPSConnection(host, int(port), context=ctx, timeout=timeout)

    def _headers(self, who: str | None, body: bytes | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if who:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        return headers

    def call(self, method: str, path: str, body: Any = None, who: str | None = "bootstrap"
             ) -> Answer:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        conn = self._connect()
        try:
            conn.request(method, path, body=data, headers=self._headers(who, data))
            resp = conn.getresponse()
            return Answer(resp.status, dict(resp.getheaders()), resp.read())
        finally:
            conn.close()

    def watch(self, query: str, who: str = "bootstrap") -> Watch:
        """Start a watch in a thread; `started` is set once the answer's headers are in."""
        result = Watch()

        def run() -> None:
            t0 = time.monotonic()
            conn = self._connect(timeout=90)
            try:
                conn.request("GET", f"{CSRS}?{query}", headers=self._headers(who, None))
                resp = conn.getresponse()
                result.status, result.headers = resp.status, dict(resp.getheaders())
                result.started.set()
                if resp.status != 200:
                    result.body = resp.read()
                    return
                while line := resp.readline():
                    result.events.append(json.loads(line))
            finally:
                result.seconds = time.monotonic() - t0
                result.started.set()
                conn.close()

        result.thread = threading.Thread(target=run, daemon=True)
        result.thread.start()
        assert result.started.wait(60), f"{self.label}: the watch never answered"
        return result


# ---- reducing answers to what is compared --------------------------------------------------

class Run:
    """One sequence against one server: fresh names, and their placeholders."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.names: dict[str, str] = {}

    def name(self, tag: str) -> str:
        real = f"agree-{tag}-{uuid.uuid4().hex[:8]}"
        self.names[real] = f"<{tag}>"
        return real

    def delete_all(self) -> None:
        for name in self.names:
            self.server.call("DELETE", f"{CSRS}/{name}", who="admin")

    def text(self, value: str) -> str:
        for real, placeholder in self.names.items():
            value = value.replace(real, placeholder)
        return value

    def status(self, doc: dict) -> dict:
        """A `Status`: all but the parts of a message that quote Go's JSON parser."""
        message = self.text(doc.get("message", ""))
        message = re.sub(r"(json parse error).*", r"\1", message)
        message = re.sub(r'"[A-Za-z0-9+/]{40,}=*"', '"<the request>"', message)
        message = re.sub(r"too old resource version: \d+ \(\d+\)",
                         "too old resource version: N (M)", message)
        details = json.loads(re.sub(r'[A-Za-z0-9+/]{40,}=*', "<the request>",
                                    self.text(json.dumps(doc.get("details") or {}))))
        if "uid" in details:
            details["uid"] = "<uid>"
        return {"kind": doc.get("kind"), "status": doc.get("status"),
                "reason": doc.get("reason"), "code": doc.get("code"), "message": message,
                "details": details}

    def answer(self, got: Answer) -> dict:
        seen: dict[str, Any] = {"code": got.status,
                                "content-type": got.headers.get("Content-Type"),
                                "audit-id": bool(got.headers.get("Audit-Id"))}
        try:
            doc = got.json()
        except ValueError:
            return {**seen, "body": "not JSON"}
        if isinstance(doc, dict) and doc.get("kind") == "Status":
            seen["status"] = self.status(doc)
        elif isinstance(doc, dict) and doc.get("kind") == "CertificateSigningRequest":
            seen["csr"] = self.csr(doc)
        elif isinstance(doc, dict) and doc.get("kind") == "CertificateSigningRequestList":
            seen["list"] = {"apiVersion": doc.get("apiVersion"),
                            "resourceVersion": _is_rv(doc["metadata"].get("resourceVersion")),
                            "names": sorted(self.text(i["metadata"]["name"])
                                            for i in doc["items"])}
        elif isinstance(doc, dict) and doc.get("kind") == "SelfSubjectAccessReview":
            seen["access"] = {"allowed": (doc.get("status") or {}).get("allowed")}
        elif isinstance(doc, dict) and doc.get("kind") == "SelfSubjectReview":
            info = doc["status"]["userInfo"]
            seen["review"] = {"username": info.get("username"), "groups": info.get("groups"),
                              "created": _is_time(doc["metadata"].get("creationTimestamp"))}
        else:
            seen["body"] = doc
        return seen

    def csr(self, obj: dict) -> dict:
        meta, spec, status = obj["metadata"], obj["spec"], obj.get("status") or {}
        seen = {"apiVersion": obj.get("apiVersion"), "name": self.text(meta["name"]),
                "resourceVersion": _is_rv(meta.get("resourceVersion")),
                "created": _is_time(meta.get("creationTimestamp")),
                "labels": meta.get("labels"), "annotations": meta.get("annotations"),
                "spec": {k: spec.get(k) for k in ("signerName", "expirationSeconds", "usages",
                                                  "username", "groups")},
                "conditions": [(c.get("type"), c.get("status"), c.get("reason"),
                                c.get("message")) for c in status.get("conditions") or []]}
        if status.get("certificate"):
            seen["certificate"] = self.certificate(status["certificate"], meta)
        return seen

    def certificate(self, b64: str, meta: dict) -> dict:
        data = base64.b64decode(b64)
        cert = x509.load_pem_x509_certificate(data)
        created = datetime.datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
        exts = {e.oid.dotted_string: e for e in cert.extensions}

        def ext(cls):
            try:
                found = cert.extensions.get_extension_for_class(cls)
            except x509.ExtensionNotFound:
                return None
            return found.critical, found.value

        key_usage = ext(x509.KeyUsage)
        capped = cert.not_valid_after_utc == self.server.signer.not_valid_after_utc
        try:
            cert.verify_directly_issued_by(self.server.signer)
            chains = True
        except (ValueError, TypeError):
            chains = False
        return {
            "pem blocks": data.count(b"-----BEGIN CERTIFICATE-----"),
            "subject": cert.subject.rfc4514_string(),
            "signed by the cluster CA": chains,
            "key usage": key_usage and (key_usage[0], key_usage[1].digital_signature,
                                        key_usage[1].key_encipherment),
            "extended key usage": [o.dotted_string for o in ext(x509.ExtendedKeyUsage)[1]],
            "basic constraints": ext(x509.BasicConstraints),
            "authority key id": x509.AuthorityKeyIdentifier.oid.dotted_string in exts,
            "subject key id": x509.SubjectKeyIdentifier.oid.dotted_string in exts,
            # Capped at the CA's end, the lifetime depends on when each CA was made.
            "lifetime": None if capped else
            (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds(),
            "ends with the CA": capped,
            "backdated minutes": round((created - cert.not_valid_before_utc).total_seconds()
                                       / 60),
        }

    def watch(self, got: Watch, timeout: float, since: str | None = None) -> dict:
        """A watch's answer: headers, each event reduced, how the stream ended, and how each
        event's resourceVersion relates to `since` and to the one before it."""
        seen: dict[str, Any] = {"code": got.status,
                                "content-type": got.headers.get("Content-Type"),
                                "chunked": got.headers.get("Transfer-Encoding") == "chunked"}
        if got.status != 200:
            seen["status"] = self.status(json.loads(got.body))
            return seen
        events, last = [], int(since) if since else None
        for event in got.events:
            kind, obj = event["type"], event["object"]
            if kind == "ERROR":
                events.append((kind, self.status(obj)))
                continue
            rv = int(obj["metadata"]["resourceVersion"])
            order = None if last is None else ("newer" if rv > last else
                                               "same" if rv == last else "older")
            last = rv
            if kind == "BOOKMARK":
                shape = {k: v for k, v in obj.items() if k != "metadata"}
                meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
                events.append((kind, order, shape, meta))
            else:
                events.append((kind, order, self.csr(obj)))
        # Repeated bookmarks are a matter of timing buckets: one or two in a row count alike.
        seen["events"] = [e for i, e in enumerate(events)
                          if not (e[0] == "BOOKMARK" and i and events[i - 1][0] == "BOOKMARK")]
        seen["ended"] = "at timeoutSeconds" if got.seconds >= timeout - 0.5 else "early"
        return seen


def _is_rv(value: Any) -> bool:
    return isinstance(value, str) and value.isdigit()


def _is_time(value: Any) -> bool:
    return isinstance(value, str) and value.endswith("Z")


# ---- requests ------------------------------------------------------------------------------

def pkcs10(kind: str = "ed25519", cn: str = "alice@example.com",
           groups: tuple[str, ...] = ("oncall", "sre")) -> bytes:
    key = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else \
        ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    names += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names)).sign(
        key, None if kind == "ed25519" else hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def bad_signature(kind: str) -> bytes:
    der = bytearray(x509.load_pem_x509_csr(pkcs10(kind)).public_bytes(
        serialization.Encoding.DER))
    der[-3] ^= 1  # inside the signature
    body = "\n".join(textwrap.wrap(base64.b64encode(bytes(der)).decode(), 64))
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n" \
        .encode()


def csr_body(name: str, kind: str = "ed25519", usages: list[str] | None = None,
             seconds: int | None = 3600, signer: str | None = SIGNER,
             request: bytes | str | None = None, **extra: Any) -> dict:
    if request is None:
        request = pkcs10(kind)
    spec: dict[str, Any] = {
        "request": request if isinstance(request, str) else base64.b64encode(request).decode(),
        "usages": usages if usages is not None else (
            ["client auth"] if kind == "ed25519" else ["digital signature", "client auth"])}
    if signer is not None:
        spec["signerName"] = signer
    if seconds is not None:
        spec["expirationSeconds"] = seconds
    spec.update(extra)
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by":
                                                  "cred-helper"}},
            "spec": spec}


def create(run: Run, tag: str, **kw: Any) -> tuple[str, dict]:
    name = run.name(tag)
    got = run.server.call("POST", CSRS, csr_body(name, **kw))
    assert got.status == 201, (run.server.label, got.body)
    return name, got.json()


def decide(run: Run, name: str, kind: str = "Approved", who: str = "admin",
           resource_version: str | None = None) -> Answer:
    """What `kubectl certificate approve/deny` sends: the object with one more condition,
    PUT to /approval."""
    obj = run.server.call("GET", f"{CSRS}/{name}", who="admin").json()
    if resource_version is not None:
        obj["metadata"]["resourceVersion"] = resource_version
    obj["status"]["conditions"] = [*(obj["status"].get("conditions") or []), {
        "type": kind, "status": "True", "reason": f"Test{kind}", "message": "by the test"}]
    return run.server.call("PUT", f"{CSRS}/{name}/approval", obj, who=who)


def settled(run: Run, name: str) -> dict:
    """The CSR once the signer is done with it (a certificate or a Failed condition)."""
    deadline = time.monotonic() + 60
    while True:
        obj = run.server.call("GET", f"{CSRS}/{name}", who="admin").json()
        status = obj.get("status") or {}
        if status.get("certificate") or any(
                c["type"] == "Failed" for c in status.get("conditions") or []):
            return obj
        assert time.monotonic() < deadline, f"{run.server.label}: {name} never settled"
        time.sleep(0.2)


def by_name(name: str, rv: str | None = None, timeout: int = 3, bookmarks: bool = False
            ) -> str:
    query = f"watch=true&fieldSelector={quote('metadata.name=' + name)}&timeoutSeconds={timeout}"
    if rv is not None:
        query += f"&resourceVersion={rv}"
    if bookmarks:
        query += "&allowWatchBookmarks=true"
    return query


# ---- the sequences -------------------------------------------------------------------------

def self_subject_review(run: Run) -> list:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    call = run.server.call
    return [run.answer(call("POST", SSR, review, who=who))
            for who in ("bootstrap", "admin", None, "bad")] + [
        run.answer(call("POST", SSR, body)) for body in (b"{not json", b"", b"[1]", b"{}")]


def self_subject_access_review(run: Run) -> list:
    """What `setup` and `doctor` ask: may I create CSRs (and a few things the bootstrap user
    may not do)? Only `allowed` is read."""
    def review(verb: str, sub: str = "", group: str = "certificates.k8s.io",
               resource: str = "certificatesigningrequests") -> dict:
        attrs = {"group": group, "resource": resource, "verb": verb}
        if sub:
            attrs["subresource"] = sub
        return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attrs}}

    call = run.server.call
    cases = [("bootstrap", review("create")), ("bootstrap", review("watch")),
             ("bootstrap", review("update", "approval")), ("bootstrap", review("delete")),
             ("admin", review("update", "approval")), ("bad", review("create")),
             (None, review("create"))]
    return [run.answer(call("POST", SSAR, body, who=who)) for who, body in cases]


def anonymous(run: Run) -> list:
    call = run.server.call
    return [run.answer(call("GET", CSRS, who=None)),
            run.answer(call("GET", "/apis", who=None)),
            call("GET", "/version", who=None).status]


def create_good(kind: str) -> Callable[[Run], list]:
    def sequence(run: Run) -> list:
        name, created = create(run, kind, kind=kind)
        again = run.server.call("POST", CSRS, csr_body(name, kind=kind))
        return [run.csr(created), run.answer(again)]
    sequence.__name__ = f"create_{kind}"
    return sequence


INVALID: dict[str, Callable[[str], Any]] = {
    "no signerName": lambda n: csr_body(n, signer=None),
    "signerName not a domain/path": lambda n: csr_body(n, signer="bad"),
    "expirationSeconds 599": lambda n: csr_body(n, seconds=599),
    "not PEM": lambda n: csr_body(n, request=b"junk"),
    "not base64": lambda n: csr_body(n, request="%%%"),
    "Ed25519 signature broken": lambda n: csr_body(n, request=bad_signature("ed25519")),
    "P-256 signature broken": lambda n: csr_body(n, kind="p256",
                                                 request=bad_signature("p256")),
    "no usages": lambda n: csr_body(n, usages=[]),
    "unknown and repeated usages": lambda n: csr_body(
        n, usages=["bogus", "client auth", "client auth"]),
    "no name": lambda n: csr_body("", signer=None),
    "everything wrong": lambda n: csr_body(n, request=b"junk", signer=None, seconds=5,
                                           usages=[]),
    "no spec": lambda n: {"apiVersion": "certificates.k8s.io/v1",
                          "kind": "CertificateSigningRequest", "metadata": {"name": n}},
    "malformed JSON": lambda n: b"{bad",
    "empty body": lambda n: b"",
}


def create_invalid(run: Run) -> list:
    return [(what, run.answer(run.server.call("POST", CSRS, make(run.name("bad")))))
            for what, make in INVALID.items()]


def read_and_list(run: Run) -> list:
    name, _ = create(run, "read")
    call, seen = run.server.call, []
    for path in (f"{CSRS}/{name}", f"{CSRS}/{run.name('missing')}",
                 f"{CSRS}?fieldSelector={quote('metadata.name=' + name)}",
                 f"{CSRS}?fieldSelector={quote('metadata.name==' + name)}",
                 f"{CSRS}?fieldSelector={quote('metadata.name=' + run.name('none'))}",
                 f"{CSRS}?fieldSelector={quote(f'spec.signerName={SIGNER},metadata.name={name}')}",
                 f"{CSRS}?fieldSelector={quote(f'metadata.name={name},metadata.name!={name}')}",
                 f"{CSRS}?fieldSelector={quote('spec.username=alice')}",
                 f"{CSRS}?fieldSelector=garbage",
                 f"{CSRS}?resourceVersion=abc",
                 f"{CSRS}/{name}?resourceVersion=abc"):
        seen.append(run.answer(call("GET", path)))
    return seen


def watch_approve_and_sign(run: Run) -> list:
    name, created = create(run, "signed")
    rv = created["metadata"]["resourceVersion"]
    watch = run.server.watch(by_name(name, rv, timeout=5))
    approved = decide(run, name)
    return [run.answer(approved), run.watch(watch.wait(), 5, rv)]


def watch_replays_history(run: Run) -> list:
    """What a re-established watch sees: the changes since the resourceVersion it had."""
    name, created = create(run, "replay")
    rv = created["metadata"]["resourceVersion"]
    decide(run, name)
    latest = settled(run, name)["metadata"]["resourceVersion"]
    return [run.watch(run.server.watch(by_name(name, rv, timeout=2)).wait(), 2, rv),
            run.watch(run.server.watch(by_name(name, latest, timeout=2)).wait(), 2, latest)]


def watch_deny(run: Run) -> list:
    name, created = create(run, "denied")
    rv = created["metadata"]["resourceVersion"]
    watch = run.server.watch(by_name(name, rv))
    decide(run, name, "Denied")
    return [run.watch(watch.wait(), 3, rv)]


def watch_delete(run: Run) -> list:
    name, created = create(run, "deleted")
    rv = created["metadata"]["resourceVersion"]
    watch = run.server.watch(by_name(name, rv))
    deleted = run.server.call("DELETE", f"{CSRS}/{name}", who="admin")
    return [run.answer(deleted), run.watch(watch.wait(), 3, rv),
            run.answer(run.server.call("DELETE", f"{CSRS}/{name}", who="admin"))]


def watch_without_resource_version(run: Run) -> list:
    name, created = create(run, "initial")
    rv = created["metadata"]["resourceVersion"]
    return [run.watch(run.server.watch(by_name(name, version, timeout=2, bookmarks=True))
                      .wait(), 2, rv) for version in (None, "0")]


def watch_bookmark_before_the_end(run: Run) -> list:
    """A bookmark about 2 s before timeoutSeconds once another CSR moved the
    resourceVersion on: the watcher learns a newer resourceVersion to resume from."""
    name, created = create(run, "bookmark")
    rv = created["metadata"]["resourceVersion"]
    watch = run.server.watch(by_name(name, rv, timeout=6, bookmarks=True))
    _, other = create(run, "other")
    seen = run.watch(watch.wait(), 6, rv)
    marks = [e for e in watch.events if e["type"] == "BOOKMARK"]
    newest = marks[-1]["object"]["metadata"]["resourceVersion"] if marks else "0"
    return [seen, int(newest) >= int(other["metadata"]["resourceVersion"])]


def watch_too_old(run: Run) -> list:
    """After a restart the watch cache starts afresh: an older resourceVersion is 410."""
    name, created = create(run, "old")
    rv = created["metadata"]["resourceVersion"]
    create(run, "later")  # so the restart's starting point is newer than `rv`
    run.server.forget()
    old = run.watch(run.server.watch(by_name(name, rv, timeout=5)).wait(), 5, rv)
    listed = run.server.call("GET", f"{CSRS}?fieldSelector={quote('metadata.name=' + name)}")
    now = listed.json()["metadata"]["resourceVersion"]
    fresh = run.watch(run.server.watch(by_name(name, now, timeout=2)).wait(), 2, now)
    return [old, run.answer(listed), fresh]


def watch_odd_resource_versions(run: Run) -> list:
    name, _ = create(run, "odd")
    return [run.watch(run.server.watch(by_name(name, version, timeout=2)).wait(), 2)
            for version in ("abc", "-5", str(10**12))] + [
        run.watch(run.server.watch(f"watch=true&timeoutSeconds=2&fieldSelector="
                                   f"{quote('spec.username=alice')}").wait(), 2)]


def approval_rules(run: Run) -> list:
    name, created = create(run, "approval")
    rv = created["metadata"]["resourceVersion"]
    call, seen = run.server.call, []
    seen.append(run.answer(decide(run, name, who="bootstrap")))
    seen.append(run.answer(call("GET", f"{CSRS}/{name}/approval")))
    seen.append(run.answer(call("DELETE", f"{CSRS}/{name}")))
    both = run.server.call("GET", f"{CSRS}/{name}", who="admin").json()
    del both["metadata"]["resourceVersion"]  # an unconditional update
    for conditions in (["Approved", "Denied"], ["Approved", "Approved"]):
        both["status"]["conditions"] = [{"type": kind, "status": "True", "reason": "Test",
                                         "message": "by the test"} for kind in conditions]
        seen.append(run.answer(call("PUT", f"{CSRS}/{name}/approval", both, who="admin")))
    seen.append(run.answer(decide(run, name)))
    seen.append(run.answer(decide(run, name, resource_version=rv)))  # stale
    both["status"]["conditions"] = []
    seen.append(run.answer(call("PUT", f"{CSRS}/{name}/approval", both, who="admin")))
    missing = run.name("missing")
    seen.append(run.answer(call("PUT", f"{CSRS}/{missing}/approval", csr_body(missing),
                                who="admin")))
    return seen


SIGNING = {
    "Ed25519, key encipherment": {"usages": ["key encipherment", "client auth"]},
    "Ed25519, client auth only": {},
    "P-256, digital signature": {"kind": "p256"},
    "P-256, both key usages": {"kind": "p256", "usages": [
        "digital signature", "key encipherment", "client auth"]},
    "server auth": {"usages": ["server auth"]},
    "no client auth": {"usages": ["digital signature"]},
    "cert sign": {"usages": ["client auth", "cert sign"]},
    "600 seconds": {"seconds": 600},
    "no expirationSeconds": {"seconds": None},
    "ten days": {"seconds": 10 * 86400},
    "another signer": {"signer": "example.com/other"},
}


def signing(run: Run) -> list:
    names = {what: create(run, "sign", **kw)[0] for what, kw in SIGNING.items()}
    for name in names.values():
        assert decide(run, name).status == 200
    seen = {}
    for what, name in names.items():
        if what == "another signer":  # nobody signs for it: it stays approved
            time.sleep(2)
            seen[what] = run.csr(run.server.call("GET", f"{CSRS}/{name}").json())
        else:
            seen[what] = run.csr(settled(run, name))
    return [seen]


SEQUENCES = [self_subject_review, self_subject_access_review, anonymous, create_good("ed25519"),
             create_good("p256"),
             create_invalid, read_and_list, watch_approve_and_sign, watch_replays_history,
             watch_deny, watch_delete, watch_without_resource_version,
             watch_bookmark_before_the_end, watch_too_old, watch_odd_resource_versions,
             approval_rules, signing]


# ---- the comparison ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def servers(control_plane):
    tokens = {"admin": control_plane.admin_token, "bootstrap": control_plane.bootstrap_token,
              "bad": "not-a-token-either-server-knows"}
    local = LocalAPIServer(tokens={control_plane.admin_token: ADMIN,
                                   control_plane.bootstrap_token: BOOTSTRAP}).start()
    try:
        # A kube-apiserver restart is what empties the real watch cache. It leaves the session
        # plane as it was (same flags, same etcd), ready again before the next test.
        yield (Server("real", control_plane.url, control_plane.ca.cert,
                      control_plane.client_ca.cert, tokens,
                      lambda: control_plane.restart("kube-apiserver")),
               Server("local", local.url, local.ca.cert, local.ca.cert, tokens,
                      local.forget_history))
    finally:
        local.stop()


@pytest.mark.parametrize("sequence", SEQUENCES, ids=lambda s: s.__name__)
def test_the_local_server_answers_as_kube_apiserver_does(servers, sequence):
    real, local = servers
    runs = Run(real), Run(local)
    try:
        with ThreadPoolExecutor(2) as pool:  # side by side: the timed watches overlap
            from_real, from_local = (pool.submit(sequence, run) for run in runs)
            expected, got = from_real.result(), from_local.result()
    finally:
        for run in runs:  # the control plane is shared: leave no CSR for other tests to find
            run.delete_all()
    for step, (want, have) in enumerate(zip(expected, got, strict=True)):
        if have != want:
            diff = difflib.unified_diff(
                json.dumps(want, indent=1, default=str).splitlines(),
                json.dumps(have, indent=1, default=str).splitlines(), "real", "local", n=4,
                lineterm="")
            pytest.fail(f"{sequence.__name__}, step {step}:\n" + "\n".join(diff),
                        pytrace=False)
