"""Label selectors: the `--exclude-selector` text (kubectl's syntax, read in selector_text.py)
and a PodDisruptionBudget's `spec.selector` object, both turned into the same requirements and
matched against pod labels.

The janitor counts the budgets the server will apply. A policy/v1 PDB's empty selector (`{}`)
selects every pod in its namespace (tried on kube-apiserver 1.37: the Eviction API and the
disruption controller both count such a budget), a missing one selects nothing; one the janitor
cannot read selects nothing here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .selector_text import Requirement, as_int64, parse_requirements


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
    if op == "notin":
        return key not in labels or labels[key] not in values  # as Kubernetes reads it
    # gt, lt: the label's value and the requirement's one value as integers
    have = as_int64(labels[key]) if key in labels else None
    want = as_int64(next(iter(values))) if len(values) == 1 else None
    if have is None or want is None:
        return False
    return have > want if op == "gt" else have < want


def parse_selector(text: str) -> Selector:
    """`--exclude-selector`'s text, as kubectl reads it (selector_text.py); ValueError with
    what is wrong. An empty selector would select every pod, so it is refused here."""
    requirements = parse_requirements(text)
    if not requirements:
        raise ValueError("the selector is empty")
    return Selector(tuple(requirements))


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
