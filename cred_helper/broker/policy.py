"""The broker's policy: a reviewed YAML file that says whose client-certificate requests are
approved, which are left for a person, and which are denied.

Rules are tried in order on the requester (`spec.username`, `spec.groups`); the first rule that
matches decides, and does not fall through: a request that fails one of its checks is denied,
with the check and the values in the reason. No rule matching leaves the CSR to `default`.
The file is read whole and checked whole: anything it does not understand (a YAML error, an
unknown field, a value out of range) is a PolicyError naming the source, line and field, and no
part of it is used (policyread.py reads it). The schema is on docs/admin/policy.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..issuers.csr import REASON_ANNOTATION, SIGNER
from .attestation import root_problem
from .facts import CsrFacts
from .policyread import PolicyError, Reader, a_rule_that, compose, line_of
from .rulecheck import attestation_failure, attested_text, needs_proof, shows_something
from .verdict import (
    APPROVE,
    DENY,
    MANUAL,
    Attestation,
    AttestationConfig,
    Decision,
    RegistryEntry,
)
from .yubico import YUBICO_PIV_ROOTS

__all__ = ["Policy", "PolicyError", "Rule", "load_policy", "load_policy_file"]

KEY_TYPES = ("ed25519", "p256", "p384", "rsa")
DEFAULT_KEY_TYPES = ("ed25519", "p256", "rsa")
RSA_MIN_BITS = 2048
REQUIRED_USAGE = "client auth"
OPTIONAL_USAGES = ("digital signature",)
ANY_GROUP = "*"
DEFAULT_MAX_AGE = 300
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


# ---- the policy, once read -----------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    name: str
    action: str  # APPROVE, MANUAL or DENY: what to do with a request that passes every check
    users: frozenset[str]
    groups: frozenset[str]
    subject_groups: frozenset[str]  # the O's a certificate may carry; ANY_GROUP: any held one
    max_expiration: int | None
    max_expiration_text: str  # as written, for reasons
    key_types: frozenset[str]
    require_reason: bool
    attestation: str  # "required", "registry-key" or "none"
    pin_policies: frozenset[str]  # empty: any (or none stated)
    touch_policies: frozenset[str]
    line: int = 0
    asks_for: frozenset[str] = frozenset()  # empty: any request; else one of these O's asked
    groups_not_held: frozenset[str] = frozenset()  # O's asked without holding them (manual)

    def matches(self, username: str, groups: tuple[str, ...],
                asked: tuple[str, ...] = ()) -> bool:
        """The requester is one of `users` or in one of `groups`, and, where the rule says
        `asks-for`, the request's subject names one of those groups."""
        if self.asks_for and self.asks_for.isdisjoint(asked):
            return False
        return username in self.users or not self.groups.isdisjoint(groups)


@dataclass(frozen=True)
class Policy:
    source: str
    default: str  # MANUAL or DENY, for a requester no rule matches
    rules: tuple[Rule, ...]
    attestation: AttestationConfig
    access: Any = None  # accesspolicy.AccessPolicy: the `access:` section, when there is one

    def rule_for(self, facts: CsrFacts) -> Rule | None:
        for rule in self.rules:
            if rule.matches(facts.username, facts.groups, facts.organizations):
                return rule
        return None

    def needs_attestation(self, facts: CsrFacts) -> bool:
        """Whether `decide` needs this CSR's proof verified (rulecheck.needs_proof)."""
        return needs_proof(self.rule_for(facts), facts.proof is not None)

    def decide(self, facts: CsrFacts, attestation: Attestation) -> Decision:
        rule = self.rule_for(facts)
        name = rule.name if rule else ""
        who = f"requester {facts.username!r}"
        if facts.signer != SIGNER:
            # The runtime watches this signer only; anything else is not ours to approve or deny.
            return Decision(MANUAL, name, f"signer {facts.signer!r} is not {SIGNER}: not this "
                            "broker's to decide", {"check": "signer"})
        prefix = f"rule {name}" if rule else "no rule"
        failing = attestation.mode != "none" and not attestation.ok
        # A proof that fails (forged, stale, unregistered) never passes, but where a person
        # decides anyway it is theirs to weigh: a broker must not turn away what they would
        # have approved (a key nobody registered yet, say).
        for_a_person = (rule.action if rule else self.default) == MANUAL
        if failing and not for_a_person:
            return Decision(DENY, name, f"{prefix}: the attestation proof fails: "
                            f"{attestation.reason}", {"check": "proof"})
        note = f"; note: its attestation proof fails: {attestation.reason}" if failing else ""
        if rule is None:
            groups = ", ".join(facts.groups) or "none"
            return Decision(self.default, "", f"no rule matches {who} (groups: {groups}); the "
                            f"policy's default is {self.default}{note}", {"check": "no-rule"})
        if rule.action == DENY:
            return Decision(DENY, name, f"rule {name}: denies every request it matches ({who})",
                            {"check": "rule-denies"})
        failure = _first_failure(rule, facts, attestation)
        if failure is not None:
            check, text = failure
            return Decision(DENY, name, f"rule {name}: {text}", {"check": check})
        if rule.action == MANUAL:
            unheld = [org for org in facts.organizations if org not in facts.groups]
            asks = f" asks for {', '.join(unheld)}, which they do not hold" if unheld else ""
            return Decision(MANUAL, name, f"rule {name}: every check passed; this rule leaves "
                            f"the request for a person ({who}{asks}){note}",
                            {"check": "manual"})
        return Decision(APPROVE, name, f"rule {name}: every check passed ({who}, "
                        f"{attested_text(attestation)})", {"check": "passed"})


def _first_failure(rule: Rule, facts: CsrFacts, att: Attestation) -> tuple[str, str] | None:
    """The first check the request fails, as (check name, reason with the values), or None."""
    for check in (_subject_failure, _key_failure, _usage_failure, _expiration_failure,
                  _reason_failure, _attestation_failure):
        failure = check(rule, facts, att)
        if failure is not None:
            return failure
    return None


def _subject_failure(rule: Rule, facts: CsrFacts, _: Attestation) -> tuple[str, str] | None:
    if facts.extra_subject:
        return "subject", (f"subject {facts.subject!r} holds more than one CN and O's")
    if facts.alt_names:
        return "subject", f"the request asks for alternative names {', '.join(facts.alt_names)}"
    if facts.common_name != facts.username:
        return "subject", (f"CN {facts.common_name!r} is not the requester "
                           f"{facts.username!r}")
    for org in facts.organizations:
        if org in rule.groups_not_held:
            continue  # only a manual rule names these: a person decides
        if org not in facts.groups:
            return "subject", f"O {org!r} is a group the requester {facts.username!r} does " \
                "not hold"
        if org.startswith("system:") and org not in rule.subject_groups:
            return "subject", f"O {org!r} is a system: group, and the rule does not name it"
        if org not in rule.subject_groups and ANY_GROUP not in rule.subject_groups:
            allowed = ", ".join(sorted(rule.subject_groups)) or "none"
            return "subject", f"O {org!r} is not among the rule's subject-groups ({allowed})"
    return None


def _key_failure(rule: Rule, facts: CsrFacts, _: Attestation) -> tuple[str, str] | None:
    if facts.key_type not in rule.key_types:
        allowed = ", ".join(t for t in KEY_TYPES if t in rule.key_types)
        return "key-type", f"key type {facts.key_type} is not allowed ({allowed})"
    if facts.key_type == "rsa" and facts.key_bits < RSA_MIN_BITS:
        return "key-type", f"RSA key of {facts.key_bits} bits is under {RSA_MIN_BITS}"
    return None


def _usage_failure(_: Rule, facts: CsrFacts, __: Attestation) -> tuple[str, str] | None:
    if REQUIRED_USAGE not in facts.usages:
        return "usages", f"usages ({', '.join(facts.usages) or 'none'}) lack {REQUIRED_USAGE!r}"
    for usage in facts.usages:
        if usage != REQUIRED_USAGE and usage not in OPTIONAL_USAGES:
            return "usages", (f"usage {usage!r} is not allowed (only {REQUIRED_USAGE!r} and "
                              f"{OPTIONAL_USAGES[0]!r})")
    return None


def _expiration_failure(rule: Rule, facts: CsrFacts, _: Attestation) -> tuple[str, str] | None:
    if rule.max_expiration is None:
        return None
    if facts.expiration_seconds is None:
        return "expiration", (f"expirationSeconds is not set, and the rule's maximum is "
                              f"{rule.max_expiration_text}")
    if facts.expiration_seconds > rule.max_expiration:
        return "expiration", (f"expirationSeconds {facts.expiration_seconds} exceeds "
                              f"{rule.max_expiration_text}")
    return None


def _reason_failure(rule: Rule, facts: CsrFacts, _: Attestation) -> tuple[str, str] | None:
    if rule.require_reason and not shows_something(facts.annotations.get(REASON_ANNOTATION, "")):
        return "reason", (f"the {REASON_ANNOTATION} annotation is missing or shows nothing "
                          "(cred-helper --reason writes it)")
    return None


def _attestation_failure(rule: Rule, facts: CsrFacts,
                         att: Attestation) -> tuple[str, str] | None:
    return attestation_failure(rule, facts.username, att)


# ---- reading the file ----------------------------------------------------------------------

class _Reader(Reader):
    """The generic reader (policyread.py) with the CSR policy's sections."""

    # -- the sections --

    def policy(self, root: yaml.Node) -> Policy:
        top = self.mapping(root, "", ("default", "attestation", "rules", "access"), ("rules",))
        default = MANUAL
        if "default" in top:
            default = self.choice(top["default"], "default", (MANUAL, DENY))
        config = self.attestation(top.get("attestation"))
        rules: list[Rule] = []
        names: dict[str, int] = {}
        for i, node in enumerate(self.sequence(top["rules"], "rules")):
            rule = self.rule(node, f"rules[{i}]")
            if rule.name in names:
                raise self.fail(node, f"rules[{i}].name", f"{rule.name!r} is already the name "
                                f"of the rule on line {names[rule.name]}")
            names[rule.name] = rule.line
            rules.append(rule)
        access = None
        if "access" in top:
            from .accesspolicy import read_access  # its own module: access requests' rules

            access = read_access(self, top["access"])
        return Policy(self.source, default, tuple(rules), config, access)

    def rule(self, node: yaml.Node, where: str) -> Rule:
        head = self.rule_head(node, where, (
            "name", "match", "action", "subject-groups", "groups-not-held", "max-expiration",
            "key-types", "require-reason", "attestation", "pin-policies", "touch-policies"),
            ("name", "match", "action"), ("users", "groups", "asks-for"))
        fields, action = head.fields, head.action
        asks_for = self.named_groups(head.match, "asks-for", f"{where}.match")
        subject_groups = self.strings(fields["subject-groups"], f"{where}.subject-groups") \
            if "subject-groups" in fields else []
        not_held = self.named_groups(fields, "groups-not-held", where)
        if not_held and action != MANUAL:
            raise self.fail(fields["groups-not-held"], f"{where}.groups-not-held",
                            "is allowed only in a rule whose action is manual: a person must "
                            "decide a request for groups its requester does not hold")
        max_expiration, max_text = None, ""
        if "max-expiration" in fields:
            max_expiration, max_text = self.duration(fields["max-expiration"],
                                                     f"{where}.max-expiration")
        elif action == APPROVE:
            raise self.fail(node, f"{where}.max-expiration", "is required in "
                            f"{a_rule_that(action)}")
        key_types = self.key_types(fields, where, KEY_TYPES, DEFAULT_KEY_TYPES)
        require_reason = self.boolean(fields["require-reason"], f"{where}.require-reason") \
            if "require-reason" in fields else False
        attested = self.rule_attestation(node, fields, where, action == APPROVE, action)
        return Rule(name=head.name, action=action, users=frozenset(head.users),
                    groups=frozenset(head.groups), subject_groups=frozenset(subject_groups),
                    max_expiration=max_expiration, max_expiration_text=max_text,
                    key_types=frozenset(key_types), require_reason=require_reason,
                    attestation=attested.mode, pin_policies=frozenset(attested.pins),
                    touch_policies=frozenset(attested.touches), line=line_of(node),
                    asks_for=frozenset(asks_for), groups_not_held=frozenset(not_held))

    def named_groups(self, fields: dict[str, yaml.Node], key: str, where: str) -> list[str]:
        """A list of group names, each named (no "*"), not empty where given."""
        if key not in fields:
            return []
        values = self.strings(fields[key], f"{where}.{key}")
        if not values:
            raise self.fail(fields[key], f"{where}.{key}", "is empty (leave it out instead)")
        if ANY_GROUP in values:
            raise self.fail(fields[key], f"{where}.{key}", f"{ANY_GROUP!r} is not allowed "
                            "here: name each group")
        return values

    def attestation(self, node: yaml.Node | None) -> AttestationConfig:
        if node is None:
            return AttestationConfig(roots_pem=YUBICO_PIV_ROOTS, max_age=DEFAULT_MAX_AGE)
        fields = self.mapping(node, "attestation", ("roots", "registry", "max-age"))
        roots: list[bytes] = list(YUBICO_PIV_ROOTS)
        if "roots" in fields:
            items = self.sequence(fields["roots"], "attestation.roots")
            if not items:
                raise self.fail(fields["roots"], "attestation.roots", "is empty (leave it out "
                                "for Yubico's PIV roots)")
            roots = []
            for i, item in enumerate(items):
                roots += self.root(item, f"attestation.roots[{i}]")
        max_age = DEFAULT_MAX_AGE
        if "max-age" in fields:
            max_age, _ = self.duration(fields["max-age"], "attestation.max-age")
        registry = self.registry(fields["registry"]) if "registry" in fields else ()
        return AttestationConfig(roots_pem=tuple(roots), registry=registry, max_age=max_age)

    def root(self, node: yaml.Node, where: str) -> list[bytes]:
        text = self.string(node, where)
        if "-----BEGIN" in text:
            data = text.encode()
        else:
            path = Path(text)
            if not path.is_absolute() and self.base_dir is not None:
                path = Path(self.base_dir) / path
            try:
                data = self.read_file(str(path))
            except OSError as error:
                raise self.fail(node, where, f"cannot read {str(path)!r} "
                                f"({error.strerror or type(error).__name__})") from None
        try:
            certs = x509.load_pem_x509_certificates(data)
            problems = [(cert, root_problem(cert)) for cert in certs]
        except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
            raise self.fail(node, where, "is not PEM certificates (nor a file of them) that "
                            "cred-helper can read") from None
        for cert, problem in problems:
            if problem:
                raise self.fail(node, where, f"{_subject_text(cert)} {problem}")
        return [cert.public_bytes(Encoding.PEM) for cert in certs]

    def registry(self, node: yaml.Node) -> tuple[RegistryEntry, ...]:
        entries: list[RegistryEntry] = []
        owners: dict[tuple[str, Any], str] = {}
        for i, item in enumerate(self.sequence(node, "attestation.registry")):
            where = f"attestation.registry[{i}]"
            fields = self.mapping(item, where, ("user", "key-sha256", "serial"), ("user",))
            user = self.string(fields["user"], f"{where}.user")
            if ("key-sha256" in fields) == ("serial" in fields):
                raise self.fail(item, where, "names exactly one of key-sha256 or serial")
            if "key-sha256" in fields:
                raw = self.string(fields["key-sha256"], f"{where}.key-sha256")
                digest = raw.replace(":", "").strip().lower()
                if not _HEX64.match(digest):
                    raise self.fail(fields["key-sha256"], f"{where}.key-sha256",
                                    "is not a SHA-256 in hex (64 digits)")
                entry, key = RegistryEntry(user=user, key_sha256=digest), ("key", digest)
                value_node = fields["key-sha256"]
            else:
                serial = self.serial(fields["serial"], f"{where}.serial")
                entry, key = RegistryEntry(user=user, serial=serial), ("serial", serial)
                value_node = fields["serial"]
            if key in owners:
                raise self.fail(value_node, where, f"this {key[0]} is already registered to "
                                f"{owners[key]!r}")
            owners[key] = user
            entries.append(entry)
        return tuple(entries)


def _subject_text(cert: x509.Certificate) -> str:
    try:
        return repr(cert.subject.rfc4514_string()[:120])
    except ValueError:
        return "a certificate with an unreadable subject"


def _read_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


def load_policy(text: str, source: str, base_dir: str | None = None,
                read_file: Callable[[str], bytes] = _read_bytes) -> Policy:
    """The policy in `text` (named `source` in errors); PolicyError for anything amiss. Root
    files named by relative paths are read from `base_dir`."""
    root = compose(text, source)
    return _Reader(source, base_dir, read_file).policy(root)


def load_policy_file(path: str) -> Policy:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise PolicyError(path, 0, "", f"cannot be read ({error.strerror or error})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError(path, 0, "", "is not UTF-8") from None
    return load_policy(text, path, base_dir=str(Path(path).parent))
