"""The policy file's `access:` section: whose access requests (accessrequest.py) the broker
approves, which wait for a person, and what an approved one grants at the SSH gateway.

Rules are tried in order; the first whose `match` names the requester (`spec.username`,
`spec.groups`, set by admission) and whose `namespaces` hold the requested namespace decides,
with no falling through: a request that fails one of its checks is denied, with the check and
the values in the reason. A request no rule takes is denied: without a rule there is no grant
to sign. Parsing shares policy.py's reader (policyread.py), so a bad section is a PolicyError
with file, line and field, and nothing of the file is used. Pure: facts and the attestation
result in, a verdict out.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import accessrequest as ar
from .policyread import Reader, a_rule_that, line_of
from .rulecheck import attestation_failure, attested_text, needs_proof, shows_something
from .verdict import APPROVE, DENY, MANUAL, Attestation, Decision

if TYPE_CHECKING:
    import yaml

    from .accessfacts import AccessFacts

KEY_TYPES = {"ed25519": "ssh-ed25519", "p256": "ecdsa-sha2-nistp256"}
ANY_NAMESPACE = "*"
_GLOB = frozenset("*?[")


@dataclass(frozen=True)
class GrantRule:
    """What a rule grants besides the scope (the namespace and pods come from the request)."""

    commands: tuple[str, ...]
    exec: tuple[tuple[str, ...], ...]
    shell: bool
    ports: tuple[int, ...]


@dataclass(frozen=True)
class AccessRule:
    name: str
    action: str  # APPROVE, MANUAL or DENY
    users: frozenset[str]
    groups: frozenset[str]
    namespaces: frozenset[str]  # ANY_NAMESPACE: any
    pods: tuple[str, ...]  # pod names or globs a request may name; empty: any pod
    max_expiration: int  # seconds; 0 in a rule that denies
    max_expiration_text: str
    key_types: frozenset[str]  # of KEY_TYPES
    require_reason: bool
    attestation: str
    pin_policies: frozenset[str]
    touch_policies: frozenset[str]
    grant: GrantRule | None  # None in a rule that denies
    line: int = 0

    def takes(self, username: str, groups: tuple[str, ...], namespace: str) -> bool:
        who = username in self.users or not self.groups.isdisjoint(groups)
        return who and (ANY_NAMESPACE in self.namespaces or namespace in self.namespaces)


@dataclass(frozen=True)
class AccessVerdict:
    decision: Decision
    grant: ar.Grant | None = None  # what an approved request may do (None unless approved)
    seconds: int = 0  # the certificate's lifetime, never beyond the rule's


@dataclass(frozen=True)
class AccessPolicy:
    rules: tuple[AccessRule, ...]

    def rule_for(self, facts: AccessFacts) -> AccessRule | None:
        for rule in self.rules:
            if rule.takes(facts.username, facts.groups, facts.namespace):
                return rule
        return None

    def needs_attestation(self, facts: AccessFacts) -> bool:
        """Whether the request's proof must be verified (rulecheck.needs_proof)."""
        return needs_proof(self.rule_for(facts), facts.proof is not None)

    def decide(self, facts: AccessFacts, attestation: Attestation) -> AccessVerdict:
        rule = self.rule_for(facts)
        name = rule.name if rule else ""
        who = f"requester {facts.username!r}"
        if attestation.mode != "none" and not attestation.ok:
            prefix = f"rule {name}" if rule else "no rule"
            return _deny(name, "proof", f"{prefix}: the attestation proof fails: "
                         f"{attestation.reason}")
        if rule is None:
            groups = ", ".join(facts.groups) or "none"
            return _deny("", "no-rule", f"no access rule takes {who} (groups: {groups}) in "
                         f"namespace {facts.namespace!r}")
        if rule.action == DENY:
            return _deny(name, "rule-denies", f"rule {name}: denies every request it takes "
                         f"({who}, namespace {facts.namespace!r})")
        failure = _first_failure(rule, facts, attestation)
        if failure is not None:
            return _deny(name, failure[0], f"rule {name}: {failure[1]}")
        assert rule.grant is not None  # a rule that does not deny always has one (parsed so)
        grant = ar.Grant(namespace=facts.namespace, pods=facts.pods or rule.pods,
                         commands=rule.grant.commands, exec=rule.grant.exec,
                         shell=rule.grant.shell, ports=rule.grant.ports)
        seconds = min(facts.expiration_seconds, rule.max_expiration)
        if rule.action == MANUAL:
            return AccessVerdict(Decision(MANUAL, name, f"rule {name}: every check passed; "
                                          f"this rule leaves the request for a person ({who})",
                                          {"check": "manual"}), grant, seconds)
        return AccessVerdict(Decision(APPROVE, name, f"rule {name}: every check passed ({who}, "
                                      f"{attested_text(attestation)})", {"check": "passed"}),
                             grant, seconds)


def _deny(rule: str, check: str, reason: str) -> AccessVerdict:
    return AccessVerdict(Decision(DENY, rule, reason, {"check": check}))


def _first_failure(rule: AccessRule, facts: AccessFacts,
                   att: Attestation) -> tuple[str, str] | None:
    for check in (_pods_failure, _key_failure, _expiration_failure, _reason_failure,
                  _attestation_failure):
        failure = check(rule, facts, att)
        if failure is not None:
            return failure
    return None


def pod_within(asked: str, allowed: tuple[str, ...]) -> bool:
    """Whether every pod the request's name or glob `asked` can match is one `allowed`
    holds. Glob containment is undecidable in general, so a glob is only within a list that
    holds exactly that glob (or is empty: any pod); a plain name must match one entry."""
    if not allowed:
        return True
    if asked in allowed:
        return True
    return not (_GLOB & set(asked)) and any(fnmatch.fnmatchcase(asked, p) for p in allowed)


def _pods_failure(rule: AccessRule, facts: AccessFacts, _: Attestation) -> tuple[str, str] | None:
    for pod in facts.pods:
        if not pod_within(pod, rule.pods):
            return "scope", (f"pod {pod!r} is not within the rule's pods "
                             f"({', '.join(rule.pods)})")
    return None


def _key_failure(rule: AccessRule, facts: AccessFacts, _: Attestation) -> tuple[str, str] | None:
    if facts.key_type not in rule.key_types:
        allowed = ", ".join(k for k in KEY_TYPES if k in rule.key_types)
        return "key-type", f"key type {facts.key_type} is not allowed ({allowed})"
    return None


def _expiration_failure(rule: AccessRule, facts: AccessFacts,
                        _: Attestation) -> tuple[str, str] | None:
    if facts.expiration_seconds > rule.max_expiration:
        return "expiration", (f"expirationSeconds {facts.expiration_seconds} exceeds "
                              f"{rule.max_expiration_text}")
    return None


def _reason_failure(rule: AccessRule, facts: AccessFacts,
                    _: Attestation) -> tuple[str, str] | None:
    if rule.require_reason and not shows_something(facts.reason):
        return "reason", ("spec.reason is empty or shows nothing (cred-helper ssh-config "
                          "--reason writes it)")
    return None


def _attestation_failure(rule: AccessRule, facts: AccessFacts,
                         att: Attestation) -> tuple[str, str] | None:
    return attestation_failure(rule, facts.username, att)


# ---- reading the section ----------------------------------------------------------------------

RULE_FIELDS = ("name", "match", "namespaces", "pods", "action", "max-expiration", "key-types",
               "require-reason", "attestation", "pin-policies", "touch-policies", "grant")


def read_access(reader: Reader, node: yaml.Node) -> AccessPolicy:
    """The `access:` section, read with policy.py's reader (PolicyError with line and field)."""
    fields = reader.mapping(node, "access", ("rules",), ("rules",))
    rules: list[AccessRule] = []
    names: dict[str, int] = {}
    for i, item in enumerate(reader.sequence(fields["rules"], "access.rules")):
        rule = _rule(reader, item, f"access.rules[{i}]")
        if rule.name in names:
            raise reader.fail(item, f"access.rules[{i}].name", f"{rule.name!r} is already the "
                              f"name of the rule on line {names[rule.name]}")
        names[rule.name] = rule.line
        rules.append(rule)
    return AccessPolicy(tuple(rules))


def _rule(reader: Reader, node: yaml.Node, where: str) -> AccessRule:
    head = reader.rule_head(node, where, RULE_FIELDS, ("name", "match", "namespaces", "action"),
                            ("users", "groups"))
    fields, action = head.fields, head.action
    namespaces = reader.strings(fields["namespaces"], f"{where}.namespaces")
    if not namespaces:
        raise reader.fail(fields["namespaces"], f"{where}.namespaces", "names no namespace "
                          f"(any namespace: [{ANY_NAMESPACE!r}])")
    for i, value in enumerate(namespaces):
        if value != ANY_NAMESPACE and not ar.is_namespace(value):
            raise reader.fail(fields["namespaces"], f"{where}.namespaces[{i}]",
                              f"{value!r} is not a namespace name (or '*')")
    pods: list[str] = []
    if "pods" in fields:
        pods = reader.strings(fields["pods"], f"{where}.pods")
        for i, value in enumerate(pods):
            if not ar.is_pod_pattern(value):
                raise reader.fail(fields["pods"], f"{where}.pods[{i}]",
                                  f"{value!r} is not a pod name or a glob of one")
    approving = action != DENY
    seconds, text = 0, ""
    if "max-expiration" in fields:
        seconds, text = reader.duration(fields["max-expiration"], f"{where}.max-expiration")
        if not ar.MIN_SECONDS <= seconds <= ar.MAX_SECONDS:
            raise reader.fail(fields["max-expiration"], f"{where}.max-expiration",
                              f"{text} is not from 10m to 24h (an access request's range)")
    elif approving:
        raise reader.fail(node, f"{where}.max-expiration", f"is required in "
                          f"{a_rule_that(action)}")
    key_types = reader.key_types(fields, where, tuple(KEY_TYPES), tuple(KEY_TYPES))
    require_reason = reader.boolean(fields["require-reason"], f"{where}.require-reason") \
        if "require-reason" in fields else False
    attested = reader.rule_attestation(node, fields, where, approving, action)
    grant = None
    if "grant" in fields:
        grant = _grant(reader, fields["grant"], f"{where}.grant")
    elif approving:
        raise reader.fail(node, f"{where}.grant", f"is required in {a_rule_that(action)} "
                          "(what the gateway may run)")
    return AccessRule(name=head.name, action=action, users=frozenset(head.users),
                      groups=frozenset(head.groups), namespaces=frozenset(namespaces),
                      pods=tuple(pods), max_expiration=seconds, max_expiration_text=text,
                      key_types=frozenset(key_types), require_reason=require_reason,
                      attestation=attested.mode, pin_policies=frozenset(attested.pins),
                      touch_policies=frozenset(attested.touches), grant=grant,
                      line=line_of(node))


def _grant(reader: Reader, node: yaml.Node, where: str) -> GrantRule:
    """The grant's fields, checked by the model's own parse (what the gateway will read)."""
    fields = reader.mapping(node, where, ("commands", "exec", "shell", "ports"))
    doc: dict = {"namespace": "default"}  # the request's, put in when a request is approved
    if "commands" in fields:
        doc["commands"] = reader.strings(fields["commands"], f"{where}.commands", ar.COMMANDS)
    if "exec" in fields:
        patterns = []
        for i, item in enumerate(reader.sequence(fields["exec"], f"{where}.exec")):
            argv = [reader.string(arg, f"{where}.exec[{i}][{j}]")
                    for j, arg in enumerate(reader.sequence(item, f"{where}.exec[{i}]"))]
            patterns.append(argv)
        doc["exec"] = patterns
    if "shell" in fields:
        doc["shell"] = reader.boolean(fields["shell"], f"{where}.shell")
    if "ports" in fields:
        ports = []
        for i, item in enumerate(reader.sequence(fields["ports"], f"{where}.ports")):
            value = reader.scalar(item, f"{where}.ports[{i}]")
            if type(value) is not int or not 1 <= value <= 65535:
                raise reader.fail(item, f"{where}.ports[{i}]", f"{value!r} is not a port "
                                  "number (1-65535)")
            ports.append(value)
        doc["ports"] = ports
    try:
        parsed = ar.parse_grant(doc, where)
    except ar.AccessRequestError as error:
        raise reader.fail(fields.get(error.field.rsplit(".", 1)[-1].split("[")[0], node),
                          error.field, error.why) from None
    if parsed.exec and "exec" not in parsed.commands:
        raise reader.fail(fields["exec"], f"{where}.exec", "patterns without the exec "
                          "command grant nothing: add exec to commands")
    return GrantRule(parsed.commands, parsed.exec, parsed.shell, parsed.ports)
