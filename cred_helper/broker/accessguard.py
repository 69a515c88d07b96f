"""Before it signs, the broker checks that the admission policies which bind an access request
to its creator (manifests/access-admission.yaml) are in force on the API server.

Without them anybody allowed to create access requests could write somebody else's name and
groups into one, and the broker, which judges `spec.username` and `spec.groups`, would sign a
certificate for that other person's grant. So each policy must exist with the validations and
match rules of the shipped manifest, fail closed, and be bound with `Deny` to every object;
otherwise nothing is signed and the operator is told why. A request made before they were last
installed or changed was never checked by them (an attacker's, made while they were gone), so
it is denied, not signed; so is one made within ADMISSION_GRACE seconds after, which
kube-apiserver may have admitted before it enforced them. The answer is never kept: it is
asked for each signing (two GETs per policy), after the request was made, since a view older
than the request may predate the policies' removal.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import ServerError
from ..kube import KubeClient

API = "/apis/admissionregistration.k8s.io/v1"
MANIFEST = "access-admission.yaml"
# kube-apiserver enforces a policy or binding only after its informer has seen it and its
# admission plugin has reloaded them (every second: apiserver's policy_source.go); a request
# made within this many seconds after they were installed or changed may not have been
# checked. (Tried on 1.37: forged requests were still admitted 0.3 s after a binding was
# created, in the next whole second of creationTimestamp.)
ADMISSION_GRACE = 10


def shipped() -> dict[str, dict]:
    """The shipped policies by name, from the package's manifest."""
    from ..rbac import read

    found = {}
    for doc in yaml.safe_load_all(read(MANIFEST)):
        if doc and doc.get("kind") == "ValidatingAdmissionPolicy":
            found[doc["metadata"]["name"]] = doc
    return found


_UNREADABLE = [("unreadable",)]  # rules of a shape no API server sends: never the shipped ones


def _rules(spec: Any) -> list[tuple]:
    constraints = spec.get("matchConstraints") if isinstance(spec, dict) else None
    rules = constraints.get("resourceRules") if isinstance(constraints, dict) else None
    if not isinstance(rules, list):
        return []
    found = []
    for rule in rules:
        if not isinstance(rule, dict):
            return _UNREADABLE
        words = [_words(rule.get(key)) for key in ("apiGroups", "apiVersions", "operations",
                                                    "resources")]
        scope = rule.get("scope", "*")
        if any(w is None for w in words) or not isinstance(scope, str):
            return _UNREADABLE
        found.append((*words, scope))
    return sorted(found)


def _words(value: Any) -> tuple[str, ...] | None:
    """A list of strings as a tuple (absent: empty); None for anything else."""
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


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
    if _leaves_out(spec.get("matchConstraints"), ("excludeResourceRules",)):
        return f"the admission policy {name} leaves some requests out (matchConstraints)"
    return None


def _leaves_out(match: Any, rules: tuple[str, ...]) -> bool:
    """Whether a policy's matchConstraints or a binding's matchResources skip some requests:
    rules of their own, or a selector (a request's labels are its creator's to choose)."""
    if not isinstance(match, dict):
        return False
    return any(match.get(key) for key in rules) or any(
        (match.get(key) or {}) not in ({}, None) for key in ("namespaceSelector",
                                                             "objectSelector"))


def binding_problem(name: str, found: Any) -> str | None:
    spec = found.get("spec") if isinstance(found, dict) else None
    if not isinstance(spec, dict) or spec.get("policyName") != name:
        return f"the binding {name} does not bind the policy {name}"
    actions = spec.get("validationActions")
    if not isinstance(actions, list) or "Deny" not in actions:
        return f"the binding {name} does not deny (validationActions: [Deny])"
    if spec.get("paramRef"):
        return f"the binding {name} takes parameters"
    if _leaves_out(spec.get("matchResources"), ("excludeResourceRules", "resourceRules")):
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
    """problem() -> why signing must wait, or None while the policies are in force, read now;
    `since`: when they were last made or changed (a request older than that, or not
    ADMISSION_GRACE seconds younger, may never have been checked by them, and is not
    signed)."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.wanted = shipped()
        self.since = 0.0

    def problem(self) -> str | None:
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
