"""Label selectors: the `--exclude-selector` text (kubectl's syntax) and a PodDisruptionBudget's
`spec.selector` object, both turned into the same requirements and matched against pod labels.

The janitor counts the budgets the server will apply. A policy/v1 PDB's empty selector (`{}`)
selects every pod in its namespace (tried on kube-apiserver 1.37: the Eviction API and the
disruption controller both count such a budget), a missing one selects nothing; one the janitor
cannot read selects nothing here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# (key, operator, values); operators: in, notin, exists, !exists
Requirement = tuple[str, str, frozenset[str]]

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}"
                  r"[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_SET = re.compile(r"^\s*(!?)\s*([^\s=!(),]+)\s*(?:(notin|in)\s*\(([^()]*)\)|(==|=|!=)\s*"
                  r"([^\s=!(),]*))?\s*$")


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...]
    everything: bool = False  # a PDB's `{}`: no requirement, every pod

    def matches(self, labels: Mapping[str, str]) -> bool:
        if not self.requirements:
            return self.everything
        return all(_holds(req, labels) for req in self.requirements)


def _holds(req: Requirement, labels: Mapping[str, str]) -> bool:
    key, op, values = req
    if op == "exists":
        return key in labels
    if op == "!exists":
        return key not in labels
    if op == "in":
        return key in labels and labels[key] in values
    return key not in labels or labels[key] not in values  # notin, as Kubernetes reads it


def parse_selector(text: str) -> Selector:
    """`app=web,tier!=db,env in (a,b),!canary`; ValueError with what is wrong."""
    requirements: list[Requirement] = []
    for part in _split(text):
        match = _SET.match(part)
        if not match:
            raise ValueError(f"cannot read {part.strip()!r}")
        negated, key, set_op, set_values, op, value = match.groups()
        _check_key(key)
        if negated:
            if set_op or op:
                raise ValueError(f"cannot read {part.strip()!r}")
            requirements.append((key, "!exists", frozenset()))
        elif set_op:
            values = frozenset(v.strip() for v in set_values.split(",") if v.strip())
            for v in values:
                _check_value(v)
            requirements.append((key, set_op, values))
        elif op:
            _check_value(value)
            requirements.append((key, "notin" if op == "!=" else "in", frozenset([value])))
        else:
            requirements.append((key, "exists", frozenset()))
    if not requirements:
        raise ValueError("the selector is empty")
    return Selector(tuple(requirements))


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def _check_key(key: str) -> None:
    if not _KEY.match(key):
        raise ValueError(f"{key!r} is not a label key")


def _check_value(value: str) -> None:
    if not _VALUE.match(value):
        raise ValueError(f"{value!r} is not a label value")


def selector_object(obj: Any) -> Selector:
    """A `metav1.LabelSelector` from the server; anything malformed selects nothing."""
    nothing = Selector(())
    if not isinstance(obj, dict):
        return nothing
    requirements: list[Requirement] = []
    match_labels = obj.get("matchLabels") or {}
    expressions = obj.get("matchExpressions") or []
    if not isinstance(match_labels, dict) or not isinstance(expressions, list):
        return nothing
    for key, value in match_labels.items():
        if not isinstance(value, str):
            return nothing
        requirements.append((key, "in", frozenset([value])))
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expr in expressions:
        if not isinstance(expr, dict) or expr.get("operator") not in ops \
                or not isinstance(expr.get("key"), str):
            return nothing
        values = expr.get("values") or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            return nothing
        requirements.append((expr["key"], ops[expr["operator"]], frozenset(values)))
    return Selector(tuple(requirements), everything=not requirements)


def labels_of(meta: Mapping[str, Any]) -> dict[str, str]:
    """A pod's labels, keeping only string pairs (the server's map, checked)."""
    labels = meta.get("labels")
    if not isinstance(labels, dict):
        return {}
    return {k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)}
