"""The janitor's decisions (pure): which pods are in scope, which protection spares a due pod,
and what an Eviction API answer means. Every spared pod carries a named reason, as descheduler's
`PodProtection` values do, so each JSON line and Event says exactly why."""

from __future__ import annotations

from dataclasses import dataclass, field

from .pods import FRESH, NO_TIME, Debug, PodFacts, pod_verdict
from .selectors import Selector
from .times import rfc3339

# The controller kinds the janitor knows, by API group. `--owner-kinds` picks among them;
# a kind of the same name in another group is a custom resource, and is left.
KNOWN_KINDS = {"ReplicaSet": "apps", "StatefulSet": "apps", "DaemonSet": "apps",
               "Job": "batch", "ReplicationController": ""}
DEFAULT_OWNER_KINDS = frozenset({"ReplicaSet", "StatefulSet"})

EVICTED, WOULD_EVICT, PDB_BLOCKED, NO_PDB = "evicted", "would-evict", "pdb-blocked", "no-pdb"
GONE, REPLACED, THROTTLED, UNKNOWN = "gone", "replaced", "throttled", "unknown"
CHANGED = "changed"
NAMESPACE_TERMINATING = "namespace-terminating"
# The cause kube-apiserver's NamespaceLifecycle admission gives for a create in a namespace
# being deleted (an eviction or an Event alike).
TERMINATING_CAUSE = "NamespaceTerminating"
API_ERROR = "skipped:api-error"
# Answers that say the eviction was not done: the request itself was refused.
REFUSED = frozenset({400, 401, 403, 405, 413, 415, 422})

# Workload facts: bits per controller uid, collected over every pod listed.
TERMINATING, NOT_READY = 1, 2


@dataclass(frozen=True)
class Options:
    after_exit: float = 15 * 60
    max_age: float = 8 * 3600
    owner_kinds: frozenset[str] = DEFAULT_OWNER_KINDS
    bare_pods: bool = False  # --bare-pods evict
    without_pdb: bool = False  # --without-pdb evict
    max_evictions: int = 10
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    exclude_namespaces: frozenset[str] = frozenset({"kube-system"})
    exclude_selector: Selector | None = None
    dry_run: bool = False

    def in_scope(self, namespace: str) -> bool:
        if self.namespaces and namespace not in self.namespaces:
            return False
        return namespace not in self.exclude_namespaces

    def selected(self, pod: PodFacts) -> bool:
        """Not excluded by --exclude-selector."""
        return self.exclude_selector is None or not self.exclude_selector.matches(pod.labels)


def exclusions(namespaces: tuple[str, ...], excluded: tuple[str, ...]) -> frozenset[str]:
    """kube-system is excluded unless named in --namespace."""
    default = set() if "kube-system" in namespaces else {"kube-system"}
    return frozenset(default | set(excluded))


@dataclass
class Limits:
    """What this run has done so far: workloads touched and evictions made (or possibly made)."""

    workloads: set[str] = field(default_factory=set)
    evictions: int = 0

    def record(self, pod: PodFacts, action: str) -> None:
        if action in (EVICTED, WOULD_EVICT, UNKNOWN):
            self.evictions += 1
        if action != API_ERROR:
            # Blocked, throttled, done or maybe done, or the workload changed since the list
            # (gone, replaced: its new pod is likely not Ready): no second pod of it this run.
            self.workloads.add(pod.workload)


@dataclass(frozen=True)
class Decision:
    pod: PodFacts
    container: Debug | None
    action: str
    reason: str
    status: int | None = None

    def line(self) -> dict:
        pod, debug = self.pod, self.container
        return {
            "namespace": pod.namespace, "pod": pod.name, "uid": pod.uid,
            "owner": pod.owner.line() if pod.owner else None,
            "container": debug.name if debug else None,
            "image": debug.image if debug else None,
            "started": rfc3339(debug.started) if debug else None,
            "terminated": rfc3339(debug.terminated) if debug else None,
            "reason": self.reason, "status": self.status, "action": self.action,
        }


def plan(pod: PodFacts, workloads: dict[str, int], pdbs: int, options: Options,
         limits: Limits) -> Decision | None:
    """The decision for a pod with debug containers, or None: evict it now."""
    verdict, debug = pod_verdict(pod.debug)

    def skip(why: str, reason: str) -> Decision:
        return Decision(pod, debug, f"skipped:{why}", reason)

    if pod.terminating:
        return skip("terminating", "the pod is being deleted")
    if verdict == FRESH:
        return skip("fresh", f"debug container {debug.name} is still in use or exited "
                             "recently")
    if verdict == NO_TIME:
        return skip("no-start-time", f"debug container {debug.name} has no usable time"
                                     + (f": {debug.note}" if debug.note else ""))
    if pod.owner_problem:
        return skip("owner-malformed", pod.owner_problem)
    owner = pod.owner
    if owner is None and pod.owners:
        return skip("no-controller", "the pod's owners include no controller")
    if owner is None and not options.bare_pods:
        return skip("bare-pod", "the pod has no owner (--bare-pods evict evicts it)")
    if owner is not None:
        if KNOWN_KINDS.get(owner.kind) != owner.group or owner.api_version.count("/") > 1:
            return skip("custom-owner", f"owned by {owner.kind} of {owner.api_version}, "
                                        "not a built-in controller")
        if owner.kind not in options.owner_kinds:
            return skip("owner-kind", f"owned by a {owner.kind}, not in --owner-kinds")
    facts = workloads.get(pod.workload, 0)
    if facts & TERMINATING:
        return skip("workload-terminating", "a pod of its workload is terminating")
    if facts & NOT_READY:
        return skip("workload-not-ready", "a pod of its workload is not Ready")
    if pdbs > 1:
        return Decision(pod, debug, NO_PDB, f"{pdbs} PodDisruptionBudgets cover it; the "
                                            "Eviction API refuses such a pod")
    if pdbs == 0 and not options.without_pdb:
        return Decision(pod, debug, NO_PDB, "no PodDisruptionBudget covers it "
                                            "(--without-pdb evict evicts it)")
    if pod.workload in limits.workloads:
        return skip("workload-limit", "a pod of its workload was handled in this run")
    if limits.evictions >= options.max_evictions:
        return skip("max-evictions", f"--max-evictions {options.max_evictions} reached")
    return None


def note_workload(workloads: dict[str, int], pod: PodFacts) -> None:
    """What this pod says about its workload. A finished pod (Succeeded, Failed: evicted, or
    its node shut down) is no replica that is short: a ReplicaSet made another, and keeps the
    leftover until pod garbage collection, which starts only past thousands of them."""
    if pod.terminal:
        bits = 0
    else:
        bits = (TERMINATING if pod.terminating else 0) | (0 if pod.ready else NOT_READY)
    if bits or pod.workload not in workloads:
        workloads[pod.workload] = workloads.get(pod.workload, 0) | bits


def note_unreadable(workloads: dict[str, int], workload: str | None) -> None:
    """A pod the janitor could not read counts as a sibling that is not Ready, where its
    workload can be told (pods.workload_of): that workload is left alone."""
    if workload is not None:
        workloads[workload] = workloads.get(workload, 0) | NOT_READY


def due_reason(pod: PodFacts, options: Options) -> str:
    _, debug = pod_verdict(pod.debug)
    if debug.terminated is not None:
        return f"debug container {debug.name} exited over {_span(options.after_exit)} ago"
    return f"debug container {debug.name} has been there over {_span(options.max_age)}"


def _span(seconds: float) -> str:
    from ..durations import format_duration

    return format_duration(seconds)


@dataclass(frozen=True)
class Answer:
    """The Eviction API's answer, as much as arrived: an HTTP status (None: no answer), the
    `Status` reason and cause types, whether the request never left, and the message."""

    status: int | None
    reason: str = ""
    causes: tuple[str, ...] = ()
    unsent: bool = False
    message: str = ""


def outcome(answer: Answer, dry_run: bool) -> str:
    """The action an eviction's answer means. An answer lost after the request was sent is
    `unknown`: the pod may or may not be gone, so it is never claimed evicted."""
    status = answer.status
    if status is None:
        return UNKNOWN
    if 200 <= status < 300:
        return WOULD_EVICT if dry_run else EVICTED
    if status == 429:
        return PDB_BLOCKED if "DisruptionBudget" in answer.causes else THROTTLED
    if status == 404:
        return GONE
    if status == 403 and TERMINATING_CAUSE in answer.causes:
        return NAMESPACE_TERMINATING  # the pod goes with its namespace
    if status == 409:
        # A precondition failed: the uid (a new pod has the name) or the resourceVersion (the
        # pod changed since the list: a new `kubectl debug`, a status update). Either way the
        # pod listed is not the pod there now; kube-apiserver's message says which.
        return REPLACED if "UID" in answer.message else CHANGED
    if status in REFUSED:
        return API_ERROR
    # A 5xx (kube-apiserver's own 504 timeout, an etcd timeout, a proxy's 502/503) or anything
    # else: the eviction may have gone through after all.
    return UNKNOWN
