"""Client certificates from the Kubernetes CertificateSigningRequest API.

A fresh key per certificate; a PKCS#10 request naming the user (CN) and their groups (O);
a `certificates.k8s.io/v1` CSR for the `kubernetes.io/kube-apiserver-client` signer with
`expirationSeconds` = TTL; then a watch until someone (or something) approves and the signer
issues, the CSR is denied, or the approval timeout passes. The certificate is checked before
use (certcheck.py). Each CSR is kept on record (cache/pending.py) from before it is sent until
it is decided, so that a run that ends before (a timeout, a kill, a renewal that stops waiting)
leaves it for the next run to collect instead of making another.
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519

from ..cache.pending import PendingStore
from ..config import Settings
from ..durations import format_duration
from ..errors import (
    ApprovalTimeout,
    BadShape,
    CredHelperError,
    CSRDenied,
    ServerError,
    StillPending,
    UsageError,
)
from ..keys import software
from ..kube import KubeClient
from ..x509names import subject as subject_name
from ..x509names import text_problem
from . import certcheck
from .approval import CSR_PATH, Follow, csr_state
from .issued import Issued

SIGNER = "kubernetes.io/kube-apiserver-client"
SSR_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REASON_ANNOTATION = "cred-helper/reason"
QUIET_PERIOD = 1.0
RENEW_WAIT = 2.5  # a renewal waits for an approver that answers at once, never for a person


# ---- pure pieces ---------------------------------------------------------------------------

def usages_for(key_kind: str) -> list[str]:
    # Ed25519 keys only sign; ECDSA keys sign too, and some signers want it said.
    return ["client auth"] if key_kind == "ed25519" else ["digital signature", "client auth"]


def visible_groups(groups: list[str]) -> list[str]:
    """Groups worth putting in a certificate: `system:` groups are the server's to assign."""
    return [g for g in groups if not g.startswith("system:")]


def build_request(key, common_name: str, groups: list[str], proof: bytes | None = None) -> str:
    """The PEM request; `proof` (--attest-with) rides in it as a non-critical requested
    extension, which kube-apiserver keeps byte for byte and kcm does not copy."""
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        subject_name(common_name, groups))
    if proof is not None:
        from ..attestproof import PROOF_OID

        builder = builder.add_extension(x509.UnrecognizedExtension(PROOF_OID, proof),
                                        critical=False)
    csr = builder.sign(key, algorithm)
    from cryptography.hazmat.primitives.serialization import Encoding

    return csr.public_bytes(Encoding.PEM).decode()


def csr_name(username: str, now: float, suffix: str) -> str:
    """Readable and unique: whose, when, and a random suffix (DNS subdomain rules)."""
    who = re.sub(r"[^a-z0-9.-]+", "-", username.lower()).strip("-.")[:40].strip("-.") or "user"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"cred-helper-{who}-{stamp}-{suffix}"


def csr_object(name: str, request_pem: str, ttl: int, usages: list[str],
               reason: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/managed-by":
                                                         "cred-helper"}}
    if reason:
        metadata["annotations"] = {REASON_ANNOTATION: reason}
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": metadata,
        "spec": {
            "request": base64.b64encode(request_pem.encode()).decode(),
            "signerName": SIGNER,
            "expirationSeconds": ttl,
            "usages": usages,
        },
    }


def _is_str(value: Any, optional: bool = True) -> bool:
    return isinstance(value, str) or (optional and value is None)


def csr_shape_problem(obj: Any) -> str | None:
    """What is wrong with the shape of a CertificateSigningRequest object, or None."""
    if not isinstance(obj, dict):
        return f"a {type(obj).__name__} instead of an object"
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return "metadata is not an object"
    if not isinstance(meta.get("name"), str):
        return "metadata.name is not a string"
    for field in ("resourceVersion", "creationTimestamp"):
        if not _is_str(meta.get(field)):
            return f"metadata.{field} is not a string"
    status = obj.get("status")
    if status is None:
        return None
    if not isinstance(status, dict):
        return "status is not an object"
    if not _is_str(status.get("certificate")):
        return "status.certificate is not a string"
    conditions = status.get("conditions")
    if conditions is None:
        return None
    if not isinstance(conditions, list):
        return "status.conditions is not a list"
    for cond in conditions:
        if not isinstance(cond, dict):
            return "a status condition is not an object"
        if not isinstance(cond.get("type"), str):
            return "a status condition's type is not a string"
        if not all(_is_str(cond.get(f)) for f in ("status", "reason", "message")):
            return "a status condition's status, reason or message is not a string"
    return None


def later(delay: float, call: Callable[[], None]) -> Callable[[], None]:
    """Run `call` after `delay` seconds on a timer thread; the returned cancel also waits for
    a call already running, so that nothing is said after the wait ends."""
    timer = threading.Timer(delay, call)
    timer.daemon = True
    timer.start()

    def cancel() -> None:
        timer.cancel()
        timer.join()

    return cancel


# ---- the issuer ----------------------------------------------------------------------------

class CsrIssuer:
    def __init__(self, settings: Settings, client: KubeClient, say: Callable[[str], None],
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep,
                 pending: PendingStore | None = None,
                 remind: Callable[[float, Callable[[], None]], Callable[[], None]] | None = None,
                 prove: Callable[[Any, x509.Name], bytes] | None = None) -> None:
        self.settings = settings
        self.client = client
        self.say = say
        self.clock = clock
        self.sleep = sleep
        self.pending = pending  # None: nothing is kept (--cache none)
        # Runs a call after a delay while the wait blocks on a watch; returns its cancel.
        self.remind = remind or later
        self._kept = False  # whether this run's CSR is on record for the next run
        # --attest-with: (CSR key, subject) -> the hardware key's proof for the request
        self.prove = prove

    @property
    def server(self) -> str:
        return self.client.endpoint.server

    def _bad_shape(self, what: str, problem: str) -> BadShape:
        return BadShape(f"the API server at {self.server} sent {what} of the wrong shape "
                           f"({problem})", "check that --server names a Kubernetes API server")

    def whoami(self) -> tuple[str, list[str]]:
        review = self.client.post(SSR_PATH, {"apiVersion": "authentication.k8s.io/v1",
                                             "kind": "SelfSubjectReview"})
        status = review.get("status") if isinstance(review, dict) else None
        info = status.get("userInfo") if isinstance(status, dict) else None
        if not isinstance(info, dict):
            raise self._bad_shape("a SelfSubjectReview", "no status.userInfo object")
        username, groups = info.get("username"), info.get("groups")
        if groups is None:
            groups = []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise self._bad_shape("a SelfSubjectReview", "userInfo.groups is not a list of names")
        if username is not None and not isinstance(username, str):
            raise self._bad_shape("a SelfSubjectReview", "userInfo.username is not a string")
        if not username:
            raise ServerError("the API server's SelfSubjectReview named no user",
                              "pass --subject-cn (and --subject-o) explicitly")
        for name in (username, *groups):
            if text_problem(name):
                raise self._bad_shape("a SelfSubjectReview",
                                      "a user or group name is not valid Unicode text")
        return username, groups

    def subject(self) -> tuple[str, list[str]]:
        """(CN, O's) to request: --subject-cn/-o, else the bootstrap identity's. A name of any
        length, as Kubernetes allows (see x509names.py)."""
        s = self.settings
        for flag, values in (("--subject-cn", (s.subject_cn,)), ("--subject-o", s.subject_o)):
            for value in values:
                problem = text_problem(value)
                if problem:
                    raise UsageError(f"{flag} (or its profile key): {problem}",
                                     "write the name as UTF-8 text")
        if s.subject_cn and s.subject_o:
            return s.subject_cn, list(s.subject_o)
        username, groups = self.whoami()
        return s.subject_cn or username, list(s.subject_o) or visible_groups(groups)

    def trust(self) -> certcheck.Trust:
        """The CA an issued certificate must chain to: --signer-ca, else the cluster CA."""
        if self.settings.signer_ca:
            from ..kubeconfig import read_file

            return certcheck.Trust(read_file(self.settings.signer_ca, "signer CA",
                                             "--signer-ca"),
                                   f"--signer-ca {self.settings.signer_ca}", True)
        return certcheck.Trust(self.client.endpoint.ca_pem,
                               f"the cluster CA of {self.server}", False)

    def issue(self, renewing: bool = False) -> Issued:
        """A checked certificate. `renewing`: the cached one is still valid, so wait only
        briefly and raise StillPending instead of waiting for a person."""
        s = self.settings
        self._refused_before(renewing)
        common_name, groups = self.subject()
        trust = self.trust()  # a bad --signer-ca fails before any request is made
        taken = self._take_up(common_name, groups)
        if taken is None:
            key = software.generate(s.key)
            proof = None if self.prove is None else self.prove(
                key.public_key(), subject_name(common_name, groups))
            request = build_request(key, common_name, groups, proof)
            anchor = asked = self.clock()
            name = csr_name(common_name, anchor, secrets.token_hex(3))
            # On record before it is sent: a run killed during the request leaves no CSR that
            # the next run cannot take up. A renewal that cannot keep the record makes no
            # request (its certificate works meanwhile): each command would make another.
            unkept = self._remember(name, key, common_name, groups, anchor)
            if renewing and unkept is not None:
                raise unkept
            try:
                obj = self._csr(self.client.post(CSR_PATH, csr_object(
                    name, request, s.ttl, usages_for(s.key), s.reason)))
            except ServerError as error:
                if error.status is not None and not error.transient:
                    self._forget()  # refused: there is no such CSR to take up
                raise
        else:
            name, key, obj, anchor, sent = taken
            # The wait counts from when the request was sent (`asked`). An approver that
            # answers at once had its moment then: a renewal takes up a request still pending
            # without waiting again, a wait for a person gets its whole timeout again.
            asked = min(sent, anchor) if renewing else anchor
        try:
            cert_pem = self.wait(name, obj, asked, renewing)
        except CSRDenied:
            self._forget()
            raise
        self._forget()  # issued: this CSR is used up, whether its certificate passes or not
        cert = certcheck.check_certificate(cert_pem, key,
                                           certcheck.Wanted(common_name, tuple(groups)),
                                           trust, self.clock())
        return Issued(
            status={"clientCertificateData": cert_pem, "clientKeyData": software.pkcs8_pem(key)},
            not_after=certcheck.kept_until(cert, anchor, s.ttl),
            identity={"username": common_name, "groups": groups},
            source=name,
            server=self.server,
        )

    # ---- the CSR still pending from an earlier run -------------------------------------------

    def _refused_before(self, renewing: bool) -> None:
        """A renewal whose last request was refused makes no new one while the cached
        certificate works (the approver would refuse each command's request again); a run
        with nothing to fall back on asks again."""
        if self.pending is None:
            return
        if not renewing:
            self.pending.forget_refusal()
            return
        refused = self.pending.refusal(self.clock())
        if refused is not None:
            raise CSRDenied(f"its signing request {refused.name} was refused ({refused.why})",
                            "the next run after the cached certificate expires asks again; "
                            "`cred-helper login --force` asks now")

    def _take_up(self, common_name: str, groups: list[str]
                 ) -> tuple[str, Any, dict[str, Any], float, float] | None:
        """(name, key, object, now, when it was sent) of this entry's CSR still pending, or
        None."""
        if self.pending is None:
            return None
        found = self.pending.load(self.clock())
        if found is None:
            return None
        s = self.settings
        if not found.matches(common_name, groups, s.ttl, s.key):
            self.pending.drop()  # asked for something else now: that request is not ours
            return None
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(found.key_pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            self.pending.drop()
            return None
        listed = self.client.get(CSR_PATH, params={"fieldSelector":
                                                   f"metadata.name={found.name}"})
        items = listed.get("items")
        if not isinstance(items, list):
            raise self._bad_shape("a CertificateSigningRequest list", "items is not a list")
        if not items:
            self.pending.drop()  # gone (cleaned up or deleted): make a new one
            return None
        obj = self._csr(items[0])
        if obj["metadata"]["name"] != found.name or software.spki(key.public_key()) != \
                _request_spki(obj):
            self.pending.drop()
            return None
        self._kept = True
        # The anchor of the TTL cap is now: a certificate it yields was of no use before.
        return found.name, key, obj, self.clock(), found.created

    def _remember(self, name: str, key: Any, common_name: str, groups: list[str],
                  created: float) -> CredHelperError | None:
        """Keep the CSR on record for the next run; the reason it could not be, or None."""
        if self.pending is None:
            return None
        from ..cache.filestore import not_saved
        from ..cache.pending import PendingCsr

        record = PendingCsr(name, software.pkcs8_pem(key).encode(), common_name, tuple(groups),
                            self.settings.ttl, self.settings.key, created)
        try:
            self.pending.save(record)
        except OSError as exc:  # a full or read-only disk
            self._kept = False
            return not_saved(self.pending.path, exc)
        except CredHelperError as exc:
            self._kept = False
            return exc
        self._kept = True
        return None

    def _forget(self) -> None:
        if self.pending is not None:
            self.pending.drop()
        self._kept = False

    # ---- waiting -------------------------------------------------------------------------------

    def _csr(self, obj: Any) -> dict[str, Any]:
        problem = csr_shape_problem(obj)
        if problem:
            raise self._bad_shape("a CertificateSigningRequest", problem)
        return obj

    def _next_run(self, name: str) -> str:
        if self._kept:
            return "the next run collects this same request (it makes no new one)"
        return "then run the command again, which makes a new request"

    def wait(self, name: str, obj: dict[str, Any], start: float, renewing: bool = False) -> str:
        """The certificate PEM once issued; CSRDenied, ApprovalTimeout or (renewing)
        StillPending otherwise. The wait counts from `start`, when the CSR was sent."""
        limit = RENEW_WAIT if renewing else self.settings.approval_timeout
        deadline = start + limit

        def ask() -> None:
            left = max(0, round(deadline - self.clock()))
            self.say(f"waiting up to {format_duration(left)} for approval of certificate "
                     f"signing request {name}; an approver can run: "
                     f"kubectl certificate approve {name}")

        # An auto-approver answers within a moment; only a person needs to be asked. A renewal
        # never asks: the cached certificate still works.
        cancel = None if renewing or csr_state(obj)[0] == "issued" else \
            self.remind(max(0.0, start + QUIET_PERIOD - self.clock()), ask)
        follow = Follow(self.client, name, self._csr, self.clock, self.sleep)
        try:
            obj = follow.until(obj, deadline)
        finally:
            if cancel is not None:
                cancel()
        state, detail = csr_state(obj)
        if state == "issued":
            return detail
        if state in ("denied", "failed"):
            if renewing and self.pending is not None:
                from ..cache.pending import Refusal

                self.pending.refuse(Refusal(name, f"{state}: {detail}", self.clock()))
            raise CSRDenied(f"certificate signing request {name} was {state}: {detail}",
                            "ask an approver why, then run the command again")
        if follow.unreachable is not None:
            # Not "nobody approved" (nor "not approved yet", renewing): we could not see. Say
            # what stood in the way.
            raise ServerError(f"{follow.unreachable.message}, until the approval wait for "
                              f"{name} ended", f"{self._next_run(name)}, once the API server "
                              "answers again")
        raise self._timed_out(name, state == "approved", limit, renewing)

    def _timed_out(self, name: str, approved: bool, limit: float,
                   renewing: bool) -> CredHelperError:
        if renewing:
            what = "approved but not signed yet" if approved else "not approved yet"
            return StillPending(f"the new certificate's signing request {name} is {what}",
                                f"{self._next_run(name)}; an approver can run: "
                                f"kubectl certificate approve {name}")
        if approved:
            return ApprovalTimeout(
                f"certificate signing request {name} was approved, but not signed within "
                f"{format_duration(limit)}",
                "the signer of kubernetes.io/kube-apiserver-client (kube-controller-manager's "
                "csrsigning controller, or the cluster's own) is not issuing certificates: ask "
                f"a cluster administrator to look; {self._next_run(name)} once it is signed")
        return ApprovalTimeout(
            f"certificate signing request {name} was not approved within "
            f"{format_duration(limit)}",
            f"ask an approver to run `kubectl certificate approve {name}`; "
            f"{self._next_run(name)} once it is approved (or raise --approval-timeout)")


def _request_spki(obj: dict[str, Any]) -> bytes:
    """The public key a CSR object's request is for (b"" when it cannot be read)."""
    spec = obj.get("spec")
    request = spec.get("request") if isinstance(spec, dict) else None
    if not isinstance(request, str):
        return b""
    try:
        csr = x509.load_pem_x509_csr(base64.b64decode(request))
        return software.spki(csr.public_key())
    except ValueError:
        return b""
