"""Before it signs, the broker checks that the admission policies which bind an access request
to its creator (manifests/access-admission.yaml) are in force on the API server.

Without them anybody allowed to create access requests could write somebody else's name and
groups into one, and the broker, which judges `spec.username` and `spec.groups`, would sign a
certificate for that other person's grant. So each policy must exist with the validations and
match rules of the shipped manifest, fail closed, and be bound with `Deny` to every object;
otherwise nothing is signed and the operator is told why. A request made before they were last
installed or changed was never checked by them (an attacker's, made while they were gone), so
it is denied, not signed. The answer is kept for a short while (two GETs per policy each time
it is asked again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from ..errors import ServerError
from ..kube import KubeClient

API = "/apis/admissionregistration.k8s.io/v1"
MANIFEST = "access-admission.yaml"
KEEP_SECONDS = 30.0


def shipped() -> dict[str, dict]:
    """The shipped policies by name, from the package's manifest."""
    from ..rbac import read

    found = {}
    for doc in yaml.safe_load_all(read(MANIFEST)):
        if doc and doc.get("kind") == "ValidatingAdmissionPolicy":
            found[doc["metadata"]["name"]] = doc
    return found


def _rules(spec: Any) -> list[tuple]:
    constraints = spec.get("matchConstraints") if isinstance(spec, dict) else None
    rules = constraints.get("resourceRules") if isinstance(constraints, dict) else None
    if not isinstance(rules, list):
        return []
    return sorted((tuple(r.get("apiGroups") or ()), tuple(r.get("apiVersions") or ()),
                   tuple(r.get("operations") or ()), tuple(r.get("resources") or ()),
                   r.get("scope", "*")) for r in rules if isinstance(r, dict))


def _checks(spec: Any, key: str) -> list[str]:
    items = spec.get(key) if isinstance(spec, dict) else None
    if not isinstance(items, list):
        return []
    return [" ".join(str(item.get("expression", "")).split()) for item in items
            if isinstance(item, dict)]


def policy_problem(name: str, wanted: dict, found: Any) -> str | None:
    """Why the policy `found` on the server does not do what the shipped one does, or None."""
    spec = found.get("spec") if isinstance(found, dict) else None
    want = wanted["spec"]
    if not isinstance(spec, dict):
        return f"the admission policy {name} has no spec"
    if spec.get("failurePolicy", "Fail") != "Fail":
        return f"the admission policy {name} does not fail closed (failurePolicy: Fail)"
    if _rules(spec) != _rules(want):
        return f"the admission policy {name} matches other requests than the shipped one"
    if _checks(spec, "validations") != _checks(want, "validations") \
            or _checks(spec, "variables") != _checks(want, "variables"):
        return f"the admission policy {name} checks other things than the shipped one"
    if spec.get("matchConditions"):
        return f"the admission policy {name} has match conditions (it may skip requests)"
    return None


def binding_problem(name: str, found: Any) -> str | None:
    spec = found.get("spec") if isinstance(found, dict) else None
    if not isinstance(spec, dict) or spec.get("policyName") != name:
        return f"the binding {name} does not bind the policy {name}"
    if "Deny" not in (spec.get("validationActions") or []):
        return f"the binding {name} does not deny (validationActions: [Deny])"
    if spec.get("paramRef"):
        return f"the binding {name} takes parameters"
    resources = spec.get("matchResources") or {}
    narrowed = any(resources.get(key) for key in ("excludeResourceRules", "resourceRules")) \
        or any((resources.get(key) or {}) not in ({}, None)
               for key in ("namespaceSelector", "objectSelector"))
    if narrowed:
        return f"the binding {name} leaves some requests out (matchResources)"
    return None


def last_change(obj: Any) -> float:
    """When an object was created or last written (its managedFields' times), in unix
    seconds; 0 when it says nothing readable."""
    from ..accessrequest import AccessRequestError, parse_time

    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        return 0.0
    stamps = [meta.get("creationTimestamp")]
    fields = meta.get("managedFields")
    if isinstance(fields, list):
        stamps += [entry.get("time") for entry in fields if isinstance(entry, dict)]
    found = 0.0
    for stamp in stamps:
        try:
            found = max(found, parse_time(stamp, "time"))
        except AccessRequestError:
            continue
    return found


class Guard:
    """problem() -> why signing must wait, or None while the policies are in force; `since`:
    when they were last made or changed (a request older than that was never checked by
    them, and is not signed)."""

    def __init__(self, client: KubeClient, clock: Callable[[], float]) -> None:
        self.client = client
        self.clock = clock
        self.wanted = shipped()
        self.since = 0.0
        self._answer: str | None = None
        self._at: float | None = None

    def problem(self) -> str | None:
        now = self.clock()
        if self._at is None or now - self._at >= KEEP_SECONDS:
            self._answer, self._at = self._check(), now
        return self._answer

    def _check(self) -> str | None:
        since = 0.0
        for name, wanted in self.wanted.items():
            try:
                policy = self.client.get(f"{API}/validatingadmissionpolicies/{name}")
                binding = self.client.get(f"{API}/validatingadmissionpolicybindings/{name}")
            except ServerError as error:
                if error.status == 404:
                    return (f"the admission policy {name} or its binding is not installed "
                            "(kubectl apply -f access-admission.yaml)")
                if error.status == 403:
                    return f"the broker may not read the admission policy {name} (RBAC)"
                return f"the admission policy {name} cannot be read: {error.message}"
            problem = policy_problem(name, wanted, policy) or binding_problem(name, binding)
            if problem:
                return problem
            since = max(since, last_change(policy), last_change(binding))
        self.since = since
        return None
