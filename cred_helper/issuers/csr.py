"""Client certificates from the Kubernetes CertificateSigningRequest API.

A fresh key per certificate; a PKCS#10 request naming the user (CN) and their groups (O);
a `certificates.k8s.io/v1` CSR for the `kubernetes.io/kube-apiserver-client` signer with
`expirationSeconds` = TTL; then a watch until someone (or something) approves and the signer
issues, the CSR is denied, or the approval timeout passes. The certificate is checked before
use: our key, client auth, still valid.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..config import Settings
from ..durations import format_duration
from ..errors import ApprovalTimeout, BadCertificate, CSRDenied, ServerError
from ..keys import software
from ..kube import KubeClient
from .issued import Issued

SIGNER = "kubernetes.io/kube-apiserver-client"
CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
SSR_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REASON_ANNOTATION = "cred-helper/reason"
POLL_INTERVAL = 2.0
QUIET_PERIOD = 1.0


# ---- pure pieces ---------------------------------------------------------------------------

def usages_for(key_kind: str) -> list[str]:
    # Ed25519 keys only sign; ECDSA keys sign too, and some signers want it said.
    return ["client auth"] if key_kind == "ed25519" else ["digital signature", "client auth"]


def visible_groups(groups: list[str]) -> list[str]:
    """Groups worth putting in a certificate: `system:` groups are the server's to assign."""
    return [g for g in groups if not g.startswith("system:")]


def build_request(key, common_name: str, groups: list[str]) -> str:
    names = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    names += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names)).sign(
        key, algorithm)
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


def csr_state(obj: dict[str, Any]) -> tuple[str, str]:
    """("issued", cert PEM), ("denied"/"failed", why) or ("pending", "")."""
    status = obj.get("status") or {}
    for cond in status.get("conditions") or []:
        kind = cond.get("type")
        if kind in ("Denied", "Failed") and cond.get("status", "True") == "True":
            why = ": ".join(x for x in (cond.get("reason"), cond.get("message")) if x)
            return kind.lower(), why or "no reason given"
    cert = status.get("certificate")
    if cert:
        try:
            return "issued", base64.b64decode(cert).decode()
        except ValueError:
            return "failed", "the signer's certificate is not base64"
    return "pending", ""


def check_certificate(cert_pem: str, key, now: float) -> x509.Certificate:
    try:
        certs = x509.load_pem_x509_certificates(cert_pem.encode())
    except ValueError:
        raise BadCertificate("the signer returned something that is not a PEM certificate",
                             "report this to your cluster administrator") from None
    cert = certs[0]
    if software.spki(cert.public_key()) != software.spki(key.public_key()):
        raise BadCertificate("the issued certificate is for another key, not ours",
                             "report this to your cluster administrator")
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = []
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise BadCertificate("the issued certificate is not valid for client authentication",
                             "the signer must be kubernetes.io/kube-apiserver-client")
    if cert.not_valid_after_utc.timestamp() <= now:
        raise BadCertificate("the issued certificate has already expired",
                             "check the clocks of this machine and the cluster")
    return cert


# ---- the issuer ----------------------------------------------------------------------------

class CsrIssuer:
    def __init__(self, settings: Settings, client: KubeClient, say: Callable[[str], None],
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.client = client
        self.say = say
        self.clock = clock
        self.sleep = sleep

    def whoami(self) -> tuple[str, list[str]]:
        review = self.client.post(SSR_PATH, {"apiVersion": "authentication.k8s.io/v1",
                                             "kind": "SelfSubjectReview"})
        info = (review.get("status") or {}).get("userInfo") or {}
        username = info.get("username")
        if not isinstance(username, str) or not username:
            raise ServerError("the API server's SelfSubjectReview named no user",
                              "pass --subject-cn (and --subject-o) explicitly")
        return username, [g for g in info.get("groups") or [] if isinstance(g, str)]

    def subject(self) -> tuple[str, list[str]]:
        s = self.settings
        if s.subject_cn and s.subject_o:
            return s.subject_cn, list(s.subject_o)
        username, groups = self.whoami()
        return s.subject_cn or username, list(s.subject_o) or visible_groups(groups)

    def issue(self) -> Issued:
        s = self.settings
        common_name, groups = self.subject()
        key = software.generate(s.key)
        request = build_request(key, common_name, groups)
        name = csr_name(common_name, self.clock(), secrets.token_hex(3))
        created = self.client.post(CSR_PATH, csr_object(name, request, s.ttl,
                                                        usages_for(s.key), s.reason))
        cert_pem = self.wait(name, created)
        cert = check_certificate(cert_pem, key, self.clock())
        return Issued(
            status={"clientCertificateData": cert_pem, "clientKeyData": software.pkcs8_pem(key)},
            not_after=cert.not_valid_after_utc.timestamp(),
            identity={"username": common_name, "groups": groups},
            source=name,
            server=self.client.endpoint.server,
        )

    def wait(self, name: str, obj: dict[str, Any]) -> str:
        start = self.clock()
        deadline = start + self.settings.approval_timeout
        told = False
        can_watch = True
        while True:
            state, detail = csr_state(obj)
            if state == "issued":
                return detail
            if state in ("denied", "failed"):
                raise CSRDenied(f"certificate signing request {name} was {state}: {detail}",
                                "ask an approver why, then run the command again")
            now = self.clock()
            left = deadline - now
            if left <= 0:
                raise ApprovalTimeout(
                    f"certificate signing request {name} was not approved within "
                    f"{format_duration(self.settings.approval_timeout)}",
                    f"ask an approver to run `kubectl certificate approve {name}`, then run "
                    "the command again (or raise --approval-timeout)")
            # An auto-approver answers within a moment; only a person needs to be asked.
            if not told and now - start >= QUIET_PERIOD:
                self.say(f"waiting up to {format_duration(left)} for approval of certificate "
                         f"signing request {name}; an approver can run: "
                         f"kubectl certificate approve {name}")
                told = True
            window = left if told else min(left, QUIET_PERIOD)
            if can_watch:
                before = (obj.get("metadata") or {}).get("resourceVersion")
                try:
                    obj = self._watch_change(name, obj, window)
                except ServerError:
                    can_watch = False  # no watch permission or support: poll instead
                if can_watch and (obj.get("metadata") or {}).get("resourceVersion") != before:
                    continue
                if can_watch and window >= 1:
                    continue  # the watch itself waited
            self.sleep(min(POLL_INTERVAL, window))
            obj = self.client.get(f"{CSR_PATH}/{name}")

    def _watch_change(self, name: str, obj: dict[str, Any], left: float) -> dict[str, Any]:
        """The CSR after its next change, or as it is when the watch ends."""
        version = (obj.get("metadata") or {}).get("resourceVersion", "")
        params = {"fieldSelector": f"metadata.name={name}"}
        if version:
            params["resourceVersion"] = version
        for event in self.client.watch(CSR_PATH, params, left):
            kind, changed = event.get("type"), event.get("object") or {}
            if kind == "DELETED":
                raise CSRDenied(f"certificate signing request {name} was deleted",
                                "run the command again to make a new request")
            if kind in ("ADDED", "MODIFIED") and changed.get("metadata", {}).get(
                    "resourceVersion") != version:
                return changed
            if kind == "ERROR":
                break  # e.g. 410 Gone: our resourceVersion is too old; read afresh
        return self.client.get(f"{CSR_PATH}/{name}")

