"""What the janitor reads from one pod (pure): its identity, controller owner, readiness, and a
verdict on its debug containers. Pod objects come from the server: every field is checked before
use, and anything unreadable is no evidence (a container with no sane time is never stale).

Debug containers are the pod's `spec.ephemeralContainers`, with their state from
`status.ephemeralContainerStatuses` (matched by name; a status naming no container is ignored).
A container is stale when it terminated more than `after_exit` ago, or has been running or
waiting longer than `max_age`. A waiting container (or one with no status yet) has no
`startedAt`: the time of the pod's `ephemeralcontainers` managedFields entry is when a debug
container was last added, so it is at least that old; with no such entry it has no time.

Times come from two clocks: `creationTimestamp` and managedFields from the API server's,
`startedAt` and `finishedAt` from the node's. A debug container cannot start before its pod
was created, nor before it was added: the last one in the spec was added exactly when the
latest `ephemeralcontainers` entry was written (the subresource only ever appends). A time
further before those than clocks drift (`BEHIND`) says the node's clock is wrong, so that
container has no time. Lists beyond a cap are not read, and a pod with more than the cap has no
time: a cap never leaves out the one container that would have spared the pod."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .times import BEHIND, parse_time

STALE, FRESH, NO_TIME = "stale", "fresh", "no-time"
MAX_CONTAINERS = 1000  # a pod has a handful; a server sending more is not believed further
MAX_FIELDS = 1000  # managedFields entries: one per manager and operation, a handful
MAX_VERSION = 64  # a resourceVersion is an etcd revision: a few digits
TERMINAL = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Owner:
    api_version: str
    kind: str
    name: str
    uid: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0] if "/" in self.api_version else ""

    def line(self) -> dict:
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name,
                "uid": self.uid}


@dataclass(frozen=True)
class Debug:
    """One debug container and its verdict; times are epoch seconds or None."""

    name: str
    image: str
    verdict: str
    started: float | None = None
    terminated: float | None = None
    seen: float | None = None  # the time the verdict rests on
    note: str = ""  # why it has no time, where that is more than "no usable time"


@dataclass(frozen=True)
class PodFacts:
    namespace: str
    name: str
    uid: str
    owner: Owner | None  # the controller owner
    owners: int  # all owner references (non-controller ones included)
    owner_problem: str  # a malformed or ambiguous owner list, else ""
    terminating: bool
    ready: bool
    labels: dict[str, str]
    debug: tuple[Debug, ...]
    resource_version: str = ""  # as listed: the eviction's precondition
    terminal: bool = False  # phase Succeeded or Failed: it runs nothing, no replica is short

    @property
    def workload(self) -> str:
        """The controller owner's uid within the pod's namespace; a pod with none is its own
        workload."""
        return _workload(self.namespace, self.owner.uid) if self.owner else f"pod:{self.uid}"


def _workload(namespace: str, uid: str) -> str:
    # An owner reference names an owner in the pod's own namespace, and kube-apiserver takes
    # any uid in one: a pod elsewhere naming a workload's uid is not of that workload.
    return f"{namespace}/{uid}"


def read_pod(obj: Any, now: float, after_exit: float, max_age: float) -> PodFacts | None:
    """The facts of a pod object, or None when it has no usable name, namespace, uid or
    resourceVersion."""
    if not isinstance(obj, dict):
        return None
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return None
    names = [meta.get("namespace"), meta.get("name"), meta.get("uid")]
    if not all(isinstance(n, str) and 0 < len(n) <= 253 for n in names):
        return None
    version = meta.get("resourceVersion")
    if not (isinstance(version, str) and 0 < len(version) <= MAX_VERSION):
        return None
    from .selectors import labels_of

    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
    owner, owners, problem = _owner(meta.get("ownerReferences"))
    return PodFacts(namespace=names[0], name=names[1], uid=names[2], owner=owner,
                    owners=owners, owner_problem=problem,
                    terminating=meta.get("deletionTimestamp") is not None,
                    ready=_ready(status), labels=labels_of(meta),
                    debug=_debug(meta, spec, status, now, after_exit, max_age),
                    resource_version=version, terminal=status.get("phase") in TERMINAL)


def workload_of(obj: Any) -> str | None:
    """The workload (PodFacts.workload) of a pod that cannot be read whole, where its
    namespace and controller owner can be."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("namespace"), str):
        return None
    owner = _owner(meta.get("ownerReferences"))[0]
    return _workload(meta["namespace"], owner.uid) if owner else None


def pod_verdict(debug: tuple[Debug, ...]) -> tuple[str, Debug]:
    """(verdict, the container it rests on): fresh if any is fresh, else no-time if any has no
    time, else stale, naming the container that became stale last."""
    for verdict in (FRESH, NO_TIME):
        for d in debug:
            if d.verdict == verdict:
                return verdict, d
    return STALE, max(debug, key=lambda d: d.seen or 0.0)


def _debug(meta: dict, spec: dict, status: dict, now: float, after_exit: float,
           max_age: float) -> tuple[Debug, ...]:
    containers = spec.get("ephemeralContainers")
    if not isinstance(containers, list) or not containers:
        return ()
    listed = status.get("ephemeralContainerStatuses")
    listed = listed if isinstance(listed, list) else []
    if len(containers) > MAX_CONTAINERS or len(listed) > MAX_CONTAINERS:
        return (_unread(containers[-1], f"the pod has more than {MAX_CONTAINERS} debug "
                                        "containers or statuses: they are not all read"),)
    statuses: dict[str, dict] = {}
    for s in listed:
        if isinstance(s, dict) and isinstance(s.get("name"), str):
            statuses.setdefault(s["name"], s)
    added, readable = _added_at(meta.get("managedFields"), now)
    if not readable:
        return (_unread(containers[-1], "the pod's managedFields for debug containers cannot "
                                        "be read"),)
    created = parse_time(meta.get("creationTimestamp"), now)
    debug = []
    for i, container in enumerate(containers):
        if not (isinstance(container, dict) and isinstance(container.get("name"), str)
                and container["name"]):
            debug.append(_unread(container, "a debug container cannot be read"))
            continue
        last = i == len(containers) - 1
        bounds = {"the pod was created": created, "it was added": added if last else None}
        debug.append(_verdict(container, statuses.get(container["name"]), now, added, bounds,
                              after_exit, max_age))
    return tuple(debug)


def _unread(container: Any, why: str) -> Debug:
    name = container.get("name") if isinstance(container, dict) else None
    return Debug(name[:253] if isinstance(name, str) else "", "", NO_TIME, note=why)


def _verdict(container: dict, status: dict | None, now: float, added: float | None,
             bounds: dict[str, float | None], after_exit: float, max_age: float) -> Debug:
    name = container["name"][:253]
    image = container.get("image")
    image = image[:1000] if isinstance(image, str) else ""
    state = status.get("state") if isinstance(status, dict) else None
    state = state if isinstance(state, dict) else {}

    def too_early(*times: float | None) -> str:
        """Why a start or finish is impossible: before the pod or the container existed."""
        for event, bound in bounds.items():
            if bound is not None and any(t is not None and t < bound - BEHIND for t in times):
                return (f"it started before {event}, by the node's clock: that clock is behind "
                        "the API server's")
        return ""

    terminated = state.get("terminated")
    if isinstance(terminated, dict):
        started = parse_time(terminated.get("startedAt"), now)
        finished = parse_time(terminated.get("finishedAt"), now)
        if finished is None or (started is not None and finished < started):
            return Debug(name, image, NO_TIME, started)
        why = too_early(started, finished)
        if why:
            return Debug(name, image, NO_TIME, started, finished, note=why)
        verdict = STALE if now - finished > after_exit else FRESH
        return Debug(name, image, verdict, started, finished, finished)
    running = state.get("running")
    if isinstance(running, dict):
        # A running container has its own start; one that does not parse is no time, not a
        # cue to use another.
        started = parse_time(running.get("startedAt"), now)
        if started is None:
            return Debug(name, image, NO_TIME)
        why = too_early(started)
        if why:
            return Debug(name, image, NO_TIME, started, note=why)
        return Debug(name, image, STALE if now - started > max_age else FRESH, started, None,
                     started)
    if added is None:  # waiting, or no status yet: when it was added bounds its age
        return Debug(name, image, NO_TIME)
    return Debug(name, image, STALE if now - added > max_age else FRESH, None, None, added)


def _added_at(managed: Any, now: float) -> tuple[float | None, bool]:
    """(the latest time a debug container was added: the `ephemeralcontainers` entries, or
    None where there is none; whether they could be read). One such entry without a sane time
    makes them unreadable: that one may be the latest."""
    if managed is None:
        return None, True
    if not isinstance(managed, list) or len(managed) > MAX_FIELDS:
        return None, False
    times = [parse_time(entry.get("time"), now) for entry in managed
             if isinstance(entry, dict) and entry.get("subresource") == "ephemeralcontainers"]
    if None in times:
        return None, False
    return max((t for t in times if t is not None), default=None), True


def _ready(status: dict) -> bool:
    conditions = status.get("conditions")
    if not isinstance(conditions, list):
        return False
    return any(isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
               for c in conditions[:MAX_CONTAINERS])


def _owner(refs: Any) -> tuple[Owner | None, int, str]:
    if refs is None:
        return None, 0, ""
    if not isinstance(refs, list):
        return None, 1, "ownerReferences is not a list"
    controllers = []
    if len(refs) > MAX_CONTAINERS:
        return None, len(refs), f"more than {MAX_CONTAINERS} owner references"
    for ref in refs:
        if not isinstance(ref, dict):
            return None, len(refs), "an owner reference is not an object"
        if ref.get("controller") is True:
            fields = [ref.get(k) for k in ("apiVersion", "kind", "name", "uid")]
            if not all(isinstance(f, str) and 0 < len(f) <= 253 for f in fields):
                return None, len(refs), "the controller owner reference is malformed"
            controllers.append(Owner(*fields))
    if len(controllers) > 1:
        return None, len(refs), "more than one controller owner"
    return (controllers[0] if controllers else None), len(refs), ""
