"""The AccessRequest resource (`access.cred-helper.dev/v1alpha1`, cluster-scoped): what a person
asks the SSH gateway for, how it was decided, and what it grants. Pure: objects in, frozen values
out. The broker writes `status`, the gateway and `cred-helper ssh` read it; all three parse it
here, so that the three agree on every field.

    spec:   username, groups, uid, extra   the requester, exactly as SelfSubjectReview shows
                                           them (admission makes them equal to the creator)
            publicKey                      one OpenSSH public key line, no comment
            namespace, pods                the scope: pod names or globs (`api-*`); empty: any
            reason, expirationSeconds      why, and for how long
            attestation                    optional: the hardware proof over publicKey
    status: conditions                     Approved / Denied, each with who, why and when
            certificate                    the signed OpenSSH user certificate (one line)
            grant                          what the gateway may run (Grant below)
            expiresAt                      the certificate's end (RFC 3339, UTC)

The certificate binds itself to the request by its one principal, the request's name, which is
also the login name at the gateway: `ssh <name>@gateway`. Its key id is `<name>:<username>`.

Everything here may come from an attacker: the parse checks every shape and bound, and raises
AccessRequestError with the field and the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

GROUP = "access.cred-helper.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "AccessRequest"
PLURAL = "accessrequests"
PATH = f"/apis/{GROUP}/{VERSION}/{PLURAL}"

# The gateway's commands a grant may hold beyond `help` and `whoami`, which every grant holds.
# `shell` and port forwarding are granted by Grant.shell and Grant.ports.
COMMANDS = ("pods", "logs", "exec")
# The key types the broker signs: what OpenSSH 9.2 can use from a file (Ed25519) and from a PIV
# token through PKCS#11 (P-256; it skips Ed25519 token keys).
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256")

MIN_SECONDS = 600
MAX_SECONDS = 24 * 3600
MAX_TEXT = 1024  # reason, username, a group, a pattern element
MAX_ITEMS = 64  # groups, pods, patterns, ports
MAX_ARGV = 64  # elements of one exec pattern
REST = "**"  # as the last element of an exec pattern: any further arguments, none included

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_POD_PATTERN = re.compile(r"[-a-z0-9.*?]{1,253}")
_PUBLIC_KEY = re.compile(r"(ssh-ed25519|ecdsa-sha2-nistp256) [A-Za-z0-9+/]{1,1000}={0,2}")

PENDING, APPROVED, DENIED = "pending", "approved", "denied"


class AccessRequestError(ValueError):
    """An access request, or a part of one, is not shaped as this module says."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field = field
        self.why = why


@dataclass(frozen=True)
class Spec:
    username: str
    groups: tuple[str, ...]
    uid: str
    extra: tuple[tuple[str, tuple[str, ...]], ...]  # sorted by key
    public_key: str
    namespace: str
    pods: tuple[str, ...]
    reason: str
    expiration_seconds: int
    attestation: str  # "" when absent


@dataclass(frozen=True)
class Grant:
    """What the gateway may run for a request. `pods` are pod names or globs of them (`*`,
    `?`; empty: any pod of the namespace). Each `exec` pattern matches an argv element by
    element with fnmatch-style globs (`*`, `?`, `[...]`, case-sensitive; `*` crosses `/`); a
    last element `**` matches any further arguments, none included."""

    namespace: str
    pods: tuple[str, ...]
    commands: tuple[str, ...]
    exec: tuple[tuple[str, ...], ...]
    shell: bool
    ports: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "pods": list(self.pods),
                "commands": list(self.commands), "exec": [list(p) for p in self.exec],
                "shell": self.shell, "ports": list(self.ports)}


@dataclass(frozen=True)
class Decision:
    state: str  # PENDING, APPROVED or DENIED
    by: str  # who decided ("" while pending)
    reason: str
    message: str
    at: str  # lastTransitionTime as written


@dataclass(frozen=True)
class AccessRequest:
    name: str
    uid: str
    resource_version: str
    deleting: bool  # metadata.deletionTimestamp is set
    spec: Spec
    decision: Decision
    certificate: str  # "" until signed
    grant: Grant | None
    expires_at: float | None  # unix seconds


def parse(obj: Any) -> AccessRequest:
    """One AccessRequest object as the API server returns it."""
    doc = _mapping(obj, "object")
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != KIND:
        raise AccessRequestError("object", f"not an {KIND} of {API_VERSION}")
    meta = _mapping(doc.get("metadata"), "metadata")
    name = _text(meta.get("name"), "metadata.name")
    if not _DNS_SUBDOMAIN.fullmatch(name):
        raise AccessRequestError("metadata.name", "not a DNS subdomain name")
    status = _mapping(doc.get("status", {}), "status")
    grant = status.get("grant")
    expires = status.get("expiresAt")
    return AccessRequest(
        name=name,
        uid=_text(meta.get("uid", ""), "metadata.uid", empty=True),
        resource_version=_text(meta.get("resourceVersion", ""), "metadata.resourceVersion",
                               empty=True),
        deleting=meta.get("deletionTimestamp") is not None,
        spec=parse_spec(doc.get("spec")),
        decision=decision_of(status),
        certificate=_text(status.get("certificate", ""), "status.certificate", empty=True,
                          limit=16 * 1024),
        grant=None if grant is None else parse_grant(grant, "status.grant"),
        expires_at=None if expires is None else parse_time(expires, "status.expiresAt"))


def parse_spec(value: Any) -> Spec:
    spec = _mapping(value, "spec")
    _only(spec, "spec", ("username", "groups", "uid", "extra", "publicKey", "namespace", "pods",
                         "reason", "expirationSeconds", "attestation"))
    public_key = _text(spec.get("publicKey"), "spec.publicKey")
    if not _PUBLIC_KEY.fullmatch(public_key):
        raise AccessRequestError("spec.publicKey",
                                 f"not one OpenSSH public key line of {', '.join(KEY_TYPES)}")
    namespace = _text(spec.get("namespace"), "spec.namespace")
    if not _DNS_LABEL.fullmatch(namespace):
        raise AccessRequestError("spec.namespace", "not a namespace name")
    seconds = spec.get("expirationSeconds")
    if type(seconds) is not int or not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise AccessRequestError("spec.expirationSeconds",
                                 f"not a whole number from {MIN_SECONDS} to {MAX_SECONDS}")
    extra = _mapping(spec.get("extra", {}), "spec.extra")
    return Spec(
        username=_text(spec.get("username"), "spec.username"),
        groups=_texts(spec.get("groups", []), "spec.groups"),
        uid=_text(spec.get("uid", ""), "spec.uid", empty=True),
        extra=tuple(sorted((_text(k, "spec.extra"), _texts(v, f"spec.extra[{k!r}]"))
                           for k, v in extra.items())),
        public_key=public_key,
        namespace=namespace,
        pods=_pod_patterns(spec.get("pods", []), "spec.pods"),
        reason=_text(spec.get("reason", ""), "spec.reason", empty=True),
        expiration_seconds=seconds,
        attestation=_text(spec.get("attestation", ""), "spec.attestation", empty=True,
                          limit=32 * 1024))


def parse_grant(value: Any, field: str = "grant") -> Grant:
    grant = _mapping(value, field)
    _only(grant, field, ("namespace", "pods", "commands", "exec", "shell", "ports"))
    namespace = _text(grant.get("namespace"), f"{field}.namespace")
    if not _DNS_LABEL.fullmatch(namespace):
        raise AccessRequestError(f"{field}.namespace", "not a namespace name")
    commands = _texts(grant.get("commands", []), f"{field}.commands")
    unknown = sorted(set(commands) - set(COMMANDS))
    if unknown:
        raise AccessRequestError(f"{field}.commands",
                                 f"unknown {unknown[0]!r} (known: {', '.join(COMMANDS)})")
    patterns = grant.get("exec", [])
    if not isinstance(patterns, list) or len(patterns) > MAX_ITEMS:
        raise AccessRequestError(f"{field}.exec", f"not a list of at most {MAX_ITEMS} patterns")
    exec_patterns = []
    for i, pattern in enumerate(patterns):
        where = f"{field}.exec[{i}]"
        argv = _texts(pattern, where, limit_items=MAX_ARGV)
        if not argv:
            raise AccessRequestError(where, "empty")
        if REST in argv[:-1]:
            raise AccessRequestError(where, f"{REST!r} is allowed only as the last element")
        if argv[0] == REST:
            raise AccessRequestError(where, "the command itself must be named")
        exec_patterns.append(argv)
    shell = grant.get("shell", False)
    if not isinstance(shell, bool):
        raise AccessRequestError(f"{field}.shell", "not true or false")
    ports = grant.get("ports", [])
    if (not isinstance(ports, list) or len(ports) > MAX_ITEMS
            or any(type(p) is not int or not 1 <= p <= 65535 for p in ports)):
        raise AccessRequestError(f"{field}.ports", "not a list of port numbers (1-65535)")
    return Grant(namespace=namespace,
                 pods=_pod_patterns(grant.get("pods", []), f"{field}.pods"),
                 commands=tuple(dict.fromkeys(commands)), exec=tuple(exec_patterns),
                 shell=shell, ports=tuple(dict.fromkeys(ports)))


def decision_of(status: dict[str, Any]) -> Decision:
    """Denied wins over Approved: a request once denied stays denied."""
    conditions = status.get("conditions", [])
    if not isinstance(conditions, list):
        raise AccessRequestError("status.conditions", "not a list")
    found: dict[str, Decision] = {}
    for i, cond in enumerate(conditions):
        cond = _mapping(cond, f"status.conditions[{i}]")
        kind = cond.get("type")
        if kind not in ("Approved", "Denied") or cond.get("status") != "True":
            continue
        where = f"status.conditions[{i}]"
        found[kind] = Decision(
            state=APPROVED if kind == "Approved" else DENIED,
            by=_text(cond.get("decidedBy", ""), f"{where}.decidedBy", empty=True),
            reason=_text(cond.get("reason", ""), f"{where}.reason", empty=True),
            message=_text(cond.get("message", ""), f"{where}.message", empty=True),
            at=_text(cond.get("lastTransitionTime", ""), f"{where}.lastTransitionTime",
                     empty=True))
    return found.get("Denied") or found.get("Approved") or Decision(PENDING, "", "", "", "")


def is_namespace(value: str) -> bool:
    return bool(_DNS_LABEL.fullmatch(value))


def is_pod_pattern(value: str) -> bool:
    return bool(_POD_PATTERN.fullmatch(value))


def is_name(value: str) -> bool:
    """A name the API server accepts for the object (and OpenSSH for a login name)."""
    return len(value) <= 253 and bool(_DNS_SUBDOMAIN.fullmatch(value))


def spec_json(spec: Spec) -> dict[str, Any]:
    """`spec` as it is sent: the fields the requester set, none left empty."""
    doc: dict[str, Any] = {"username": spec.username, "groups": list(spec.groups),
                           "publicKey": spec.public_key, "namespace": spec.namespace,
                           "expirationSeconds": spec.expiration_seconds}
    if spec.uid:
        doc["uid"] = spec.uid
    if spec.extra:
        doc["extra"] = {key: list(values) for key, values in spec.extra}
    if spec.pods:
        doc["pods"] = list(spec.pods)
    if spec.reason:
        doc["reason"] = spec.reason
    if spec.attestation:
        doc["attestation"] = spec.attestation
    return doc


def new_object(name: str, spec: Spec) -> dict[str, Any]:
    """The object a requester creates (status is the deciders' to write)."""
    return {"apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "cred-helper"}},
            "spec": spec_json(spec)}


# The hardware proof over an access request's key (spec.attestation: base64 of
# attestproof's wire format) names this subject in place of a CSR's: the request's name, and an
# OU that no certificate subject the broker approves may carry, so a proof made for one kind
# of request never passes for the other.
PROOF_UNIT = "cred-helper access request"


def proof_subject(name: str):  # -> x509.Name (cryptography is imported only when asked)
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, PROOF_UNIT)])


def principal(name: str) -> str:
    """The certificate's one principal, and the login name at the gateway."""
    return name


def key_id(name: str, username: str) -> str:
    return f"{name}:{username}"


def format_time(when: float) -> str:
    return datetime.fromtimestamp(int(when), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any, field: str) -> float:
    text = _text(value, field)
    try:
        when = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise AccessRequestError(field, "not an RFC 3339 UTC time (2026-12-07T10:00:00Z)") \
            from None
    return when.timestamp()


def _mapping(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AccessRequestError(field, "not an object")
    return value


def _only(value: dict[str, Any], field: str, known: tuple[str, ...]) -> None:
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        raise AccessRequestError(f"{field}.{unknown[0]}", "unknown field")


def _text(value: Any, field: str, *, empty: bool = False, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise AccessRequestError(field, "not a string")
    if not value and not empty:
        raise AccessRequestError(field, "empty")
    if len(value) > limit:
        raise AccessRequestError(field, f"longer than {limit} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise AccessRequestError(field, "holds control characters")
    return value


def _texts(value: Any, field: str, *, limit_items: int = MAX_ITEMS) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > limit_items:
        raise AccessRequestError(field, f"not a list of at most {limit_items} strings")
    return tuple(_text(item, f"{field}[{i}]") for i, item in enumerate(value))


def _pod_patterns(value: Any, field: str) -> tuple[str, ...]:
    names = _texts(value, field)
    for i, name in enumerate(names):
        if not _POD_PATTERN.fullmatch(name):
            raise AccessRequestError(f"{field}[{i}]", "not a pod name or a glob of one")
    return tuple(dict.fromkeys(names))
