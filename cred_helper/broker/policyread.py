"""Reading the broker's policy file (YAML) so that every complaint names its source, line and
field: the file is read whole and checked whole, anything it does not understand is a
PolicyError, and no part of it is used. policy.py reads the CSR rules with it, accesspolicy.py
the `access:` section's; what their rules share (a name, an action, whom they match, the
attestation they ask for) is read here, once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from ..durations import parse_duration
from ..errors import CredHelperError
from .verdict import APPROVE, DENY, MANUAL

ATTESTATION_MODES = ("required", "registry-key", "none")
PIN_POLICIES = ("never", "once", "always")
TOUCH_POLICIES = ("never", "always", "cached")
MAX_DEPTH = 16  # the schema nests 5 deep
RULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,62}\Z")
_DECIMAL = re.compile(r"[1-9][0-9]*")
MAX_SERIAL = (1 << 64) - 1  # the attestation states it in at most 8 bytes, unsigned
SCALAR_TAGS = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:bool",
               "tag:yaml.org,2002:null", "tag:yaml.org,2002:float"}
# libyaml where PyYAML was built with it (ten times quicker), the same marks either way.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class PolicyError(CredHelperError):
    """A policy file that cannot be used; nothing of it is applied."""

    exit_code = 2

    def __init__(self, source: str, line: int, where: str, problem: str) -> None:
        place = f"{source}:{line}" if line else source
        text = f"{place}: {where}: {problem}" if where else f"{place}: {problem}"
        super().__init__(f"policy {text}",
                         "fix the policy file; it was not applied (docs/admin/policy.md)")
        self.source, self.line, self.field, self.problem = source, line, where, problem


def line_of(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 0


def compose(text: str, source: str) -> yaml.Node:
    """The file's YAML tree; PolicyError for anything that is not plain YAML of a sane size."""
    try:
        # Aliases would let a small file expand into a huge tree, and deep nesting would take
        # the composer (which recurses) a long time to refuse: a policy needs neither.
        depth = 0
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent):
                raise PolicyError(source, _event_line(event), "",
                                  "aliases (*name) are not allowed")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise PolicyError(source, _event_line(event), "", "is nested too deeply")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        problem = getattr(error, "problem", None) or "is not YAML"
        raise PolicyError(source, mark.line + 1 if mark else 0, "", f"not YAML: {problem}") \
            from None
    if root is None:
        raise PolicyError(source, 0, "", "is empty")
    return root


def _event_line(event: yaml.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark else 0


@dataclass(frozen=True)
class RuleHead:
    """What every rule starts with: its fields, name, action and whom it matches."""

    fields: dict[str, yaml.Node]
    match: dict[str, yaml.Node]
    name: str
    action: str  # APPROVE, MANUAL or DENY
    users: list[str]
    groups: list[str]


@dataclass(frozen=True)
class RuleAttestation:
    mode: str  # of ATTESTATION_MODES
    pins: list[str]  # of PIN_POLICIES; empty: any
    touches: list[str]  # of TOUCH_POLICIES; empty: any


class Reader:
    """Walks the composed YAML tree, so that every complaint can name its line."""

    def __init__(self, source: str, base_dir: str | None,
                 read_file: Callable[[str], bytes]) -> None:
        self.source = source
        self.base_dir = base_dir
        self.read_file = read_file

    def fail(self, node: yaml.Node | None, where: str, problem: str) -> PolicyError:
        return PolicyError(self.source, line_of(node), where, problem)

    def mapping(self, node: yaml.Node, where: str, known: tuple[str, ...],
                required: tuple[str, ...] = ()) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, where or "(top level)", "is not a mapping")
        if node.tag != "tag:yaml.org,2002:map":
            raise self.fail(node, where or "(top level)", f"tag {node.tag} is not allowed")
        found: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node, where)
            if not isinstance(key, str):
                raise self.fail(key_node, where or "(top level)", f"key {key!r} is not a string")
            field = f"{where}.{key}" if where else key
            if key not in known:
                raise self.fail(key_node, where or "(top level)",
                                f"unknown field {key!r} (known: {', '.join(known)})")
            if key in found:
                raise self.fail(key_node, field, "appears twice")
            found[key] = value_node
        for key in required:
            if key not in found:
                field = f"{where}.{key}" if where else key
                raise self.fail(node, field, "is required")
        return found

    def scalar(self, node: yaml.Node, where: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, where, "is not a single value")
        if node.tag not in SCALAR_TAGS:
            raise self.fail(node, where, f"tag {node.tag} is not allowed")
        try:
            return yaml.SafeLoader("").construct_object(node)
        except (yaml.YAMLError, ValueError) as error:
            raise self.fail(node, where, f"cannot be read ({' '.join(str(error).split())})") \
                from None

    def string(self, node: yaml.Node, where: str) -> str:
        value = self.scalar(node, where)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(node, where, "must be a non-empty string")
        if any(ch < " " and ch != "\n" for ch in value):
            raise self.fail(node, where, "holds control characters")
        return value

    def choice(self, node: yaml.Node, where: str, choices: tuple[str, ...]) -> str:
        value = self.scalar(node, where)
        if value not in choices:
            raise self.fail(node, where, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def boolean(self, node: yaml.Node, where: str) -> bool:
        value = self.scalar(node, where)
        if not isinstance(value, bool):
            raise self.fail(node, where, f"{value!r} is not true or false")
        return value

    def duration(self, node: yaml.Node, where: str) -> tuple[int, str]:
        value = self.scalar(node, where)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.fail(node, where, f"{value!r} is not a duration (1800, 30m, 1h30m)")
        if isinstance(value, int):
            seconds, text = value, f"{value}s"
        else:
            try:
                seconds, text = parse_duration(value), value.strip()
            except ValueError:
                raise self.fail(node, where, f"{value!r} is not a duration (1800, 30m, 1h30m)") \
                    from None
        if seconds <= 0:
            raise self.fail(node, where, f"{value!r} is not a positive duration")
        return seconds, text

    def serial(self, node: yaml.Node, where: str) -> int:
        """A device serial as written: plain decimal digits. YAML 1.1 reads `0123` as octal
        83, `190:20:30` as base 60 and `1_234` as 1234: each would register another device
        without a word, so only the plain spelling is taken."""
        value = self.scalar(node, where)
        text = node.value if isinstance(node, yaml.ScalarNode) else ""
        if isinstance(value, bool) or not isinstance(value, int) or node.style \
                or not _DECIMAL.fullmatch(text):
            raise self.fail(node, where, f"{text!r} is not a device serial in plain decimal "
                            "digits (no leading zero, sign, quotes, '_' or ':')")
        if value > MAX_SERIAL:
            raise self.fail(node, where, f"{text} is larger than any device serial")
        return value

    def sequence(self, node: yaml.Node, where: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, where, "is not a list")
        if node.tag != "tag:yaml.org,2002:seq":
            raise self.fail(node, where, f"tag {node.tag} is not allowed")
        return list(node.value)

    def strings(self, node: yaml.Node, where: str, choices: tuple[str, ...] = ()) -> list[str]:
        values = []
        for i, item in enumerate(self.sequence(node, where)):
            value = self.choice(item, f"{where}[{i}]", choices) if choices else \
                self.string(item, f"{where}[{i}]")
            if value in values:
                raise self.fail(item, f"{where}[{i}]", f"{value!r} is listed twice")
            values.append(value)
        return values

    # -- what every rule holds --

    def rule_head(self, node: yaml.Node, where: str, known: tuple[str, ...],
                  required: tuple[str, ...], match_keys: tuple[str, ...]) -> RuleHead:
        fields = self.mapping(node, where, known, required)
        name = self.string(fields["name"], f"{where}.name")
        if not RULE_NAME.match(name):
            raise self.fail(fields["name"], f"{where}.name", f"{name!r} is not a rule name "
                            "(letters, digits, . _ : -; at most 63)")
        action = self.choice(fields["action"], f"{where}.action", (APPROVE, MANUAL, DENY))
        match = self.mapping(fields["match"], f"{where}.match", match_keys)
        users = self.strings(match["users"], f"{where}.match.users") if "users" in match else []
        groups = self.strings(match["groups"], f"{where}.match.groups") \
            if "groups" in match else []
        if not users and not groups:
            raise self.fail(fields["match"], f"{where}.match", "names no users and no groups "
                            "(to match everyone: groups: [system:authenticated])")
        return RuleHead(fields, match, name, action, users, groups)

    def key_types(self, fields: dict[str, yaml.Node], where: str, choices: tuple[str, ...],
                  default: tuple[str, ...]) -> list[str]:
        if "key-types" not in fields:
            return list(default)
        found = self.strings(fields["key-types"], f"{where}.key-types", choices)
        if not found:
            raise self.fail(fields["key-types"], f"{where}.key-types", "allows no key type")
        return found

    def rule_attestation(self, node: yaml.Node, fields: dict[str, yaml.Node], where: str,
                         required: bool, action: str) -> RuleAttestation:
        """`attestation` (required where `required`: in a rule that lets requests through),
        and the PIN and touch policies only an attestation can state."""
        if "attestation" in fields:
            mode = self.choice(fields["attestation"], f"{where}.attestation", ATTESTATION_MODES)
        elif required:
            raise self.fail(node, f"{where}.attestation", f"is required in {a_rule_that(action)} "
                            f"({', '.join(ATTESTATION_MODES)})")
        else:
            mode = "none"
        pins = self.strings(fields["pin-policies"], f"{where}.pin-policies", PIN_POLICIES) \
            if "pin-policies" in fields else []
        touches = self.strings(fields["touch-policies"], f"{where}.touch-policies",
                               TOUCH_POLICIES) if "touch-policies" in fields else []
        if (pins or touches) and mode != "required":
            field = "pin-policies" if pins else "touch-policies"
            raise self.fail(fields[field], f"{where}.{field}", "only an attestation can state "
                            "these: set attestation: required")
        return RuleAttestation(mode, pins, touches)


def a_rule_that(action: str) -> str:
    """How a reason names a rule by its action ("a rule that approves")."""
    return {APPROVE: "a rule that approves", MANUAL: "a rule that leaves requests for a person",
            DENY: "a rule that denies"}[action]
