"""`cred-helper approver check POLICY [--csr FILE]`: a policy file judged offline, before it
is deployed. The policy is read as `approver run` reads it (one error with file, line and
field, exit 1). POLICY may also be the ConfigMap that carries it (`data.policy.yaml`, as
packaging/kubernetes/policy-configmap.yaml does), with lines counted in that file. With
`--csr`, the CSR objects in FILE (YAML or JSON, as `kubectl get csr NAME -o yaml` or `kubectl
get csr -o json` prints them) are judged as the broker would judge them now, and each decision
is the JSON line `approver run` would print, marked `"dryRun": true`. Nothing is sent
anywhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ..errors import CredHelperError

LIST_KINDS = ("List", "CertificateSigningRequestList")


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML as kubectl writes it, timestamps kept as the strings the API server sent."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def summary(policy: Any) -> str:
    rules = ", ".join(f"{rule.name} ({rule.action})" for rule in policy.rules) or "none"
    return f"policy {policy.source}: valid; rules in order: {rules}; default {policy.default}"


def csr_objects(path: str) -> list[dict]:
    """The CertificateSigningRequest objects in a file: one object, or a list of them."""
    from ..kubeconfig import read_file

    data = read_file(path, "CSR file", "--csr")
    try:
        doc = yaml.load(data.decode("utf-8"), Loader=_Loader)  # a SafeLoader, without timestamps
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError):
        raise CredHelperError(f"--csr: {path} is not YAML or JSON",
                              "save the object with kubectl get csr NAME -o yaml") from None
    items = doc.get("items") if isinstance(doc, dict) and doc.get("kind") in LIST_KINDS \
        else [doc]
    if not isinstance(items, list):
        raise CredHelperError(f"--csr: {path}: the list's items are not a list")
    from .run import shape_problem

    for i, obj in enumerate(items):
        where = f"{path}" + (f" (item {i})" if len(items) > 1 else "")
        kind = obj.get("kind") if isinstance(obj, dict) else None
        if kind != "CertificateSigningRequest":
            raise CredHelperError(f"--csr: {where} is not a CertificateSigningRequest "
                                  f"(kind: {str(kind)[:60]!r})",
                                  "save the object with kubectl get csr NAME -o yaml")
        problem = shape_problem(obj)
        if problem:
            raise CredHelperError(f"--csr: {where}: {problem}")
    return items


def in_configmap(text: str) -> tuple[str, int] | None:
    """(the policy, the file line before its first line) when `text` is a ConfigMap carrying
    `data.policy.yaml` as a block scalar; None when it is not a ConfigMap."""
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None  # the policy reader says what is wrong with it
    fields = _scalar_keys(root)
    kind = fields.get("kind")
    if not isinstance(kind, yaml.ScalarNode) or kind.value != "ConfigMap":
        return None
    value = _scalar_keys(fields.get("data")).get("policy.yaml")
    if not isinstance(value, yaml.ScalarNode) or value.style not in ("|", ">"):
        raise CredHelperError("the ConfigMap has no data.policy.yaml block (policy.yaml: |)")
    return value.value, value.start_mark.line + 1


def _scalar_keys(node: Any) -> dict[str, Any]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {key.value: value for key, value in node.value if isinstance(key, yaml.ScalarNode)}


def load(path: str) -> Any:
    """The policy in `path` (a policy file, or a ConfigMap carrying one)."""
    from .policy import PolicyError, load_policy, load_policy_file

    try:
        text = Path(path).read_text(encoding="utf-8")
        found = in_configmap(text)
    except (OSError, UnicodeDecodeError):
        found = None  # the policy reader says so, as `approver run` would
    try:
        if found is None:
            return load_policy_file(path)
        policy_text, offset = found
        try:
            return load_policy(policy_text, path, base_dir=str(Path(path).parent))
        except PolicyError as exc:
            raise PolicyError(exc.source, exc.line + offset if exc.line else 0, exc.field,
                              exc.problem) from None
    except PolicyError as exc:
        raise CredHelperError(exc.message, "fix the policy file (docs/admin/policy.md)"
                              ) from None


def check(policy_path: str, csr_path: str | None, now: float, out: Callable[[str], None],
          say: Callable[[str], None]) -> int:
    from .main import policy_judge
    from .run import decision_line

    policy = load(policy_path)
    objects = csr_objects(csr_path) if csr_path is not None else []
    say(summary(policy))
    judge = policy_judge(policy, lambda: now)
    for obj in objects:
        decision, attestation, facts = judge(obj)
        out(json.dumps(decision_line(obj, decision, attestation, facts, now, dry_run=True),
                       sort_keys=True))
    return 0
