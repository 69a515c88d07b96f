"""Pod objects as the API server sends them, for the janitor's unit tests."""

from __future__ import annotations

import time

NOW = 1_800_000_000.0  # 2027-01-15
HOUR = 3600.0


def stamp(seconds_ago: float, now: float = NOW) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - seconds_ago))


def exited(seconds_ago: float) -> dict:
    return {"terminated": {"exitCode": 0, "startedAt": stamp(seconds_ago + 60),
                           "finishedAt": stamp(seconds_ago)}}


def running(seconds_ago: float) -> dict:
    return {"running": {"startedAt": stamp(seconds_ago)}}


def owner(kind: str = "ReplicaSet", uid: str = "rs-1", api_version: str = "apps/v1",
          controller: bool = True) -> dict:
    return {"apiVersion": api_version, "kind": kind, "name": f"{kind.lower()}-x", "uid": uid,
            "controller": controller}


def pod(name: str = "web-1", *, namespace: str = "shop", uid: str | None = None,
        owners: list | None = None, ready: bool = True, debug: dict | None = None,
        statuses: dict | None = None, added: float | None = None,
        deleting: bool = False, labels: dict | None = None, created: float = 48 * HOUR,
        phase: str = "Running") -> dict:
    """`debug`: container name -> state (None: no status at all); `added`, `created`: how
    long ago the last debug container was added (managedFields) and the pod was created."""
    meta: dict = {"name": name, "namespace": namespace, "uid": uid or f"uid-{name}",
                  "resourceVersion": "4711", "creationTimestamp": stamp(created),
                  "labels": labels if labels is not None else {"app": "web"}}
    if owners is None:
        owners = [owner()]
    if owners:
        meta["ownerReferences"] = owners
    if deleting:
        meta["deletionTimestamp"] = stamp(10)
    if added is not None:
        meta["managedFields"] = [
            {"manager": "kubectl-debug", "operation": "Update", "subresource":
             "ephemeralcontainers", "time": stamp(added)}]
    debug = debug or {}
    states = statuses if statuses is not None else {
        n: s for n, s in debug.items() if s is not None}
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "app", "image": "app"}],
                 "ephemeralContainers": [{"name": n, "image": f"img-{n}"} for n in debug]},
        "status": {"phase": phase,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                   "ephemeralContainerStatuses": [{"name": n, "state": s}
                                                  for n, s in states.items()]},
    }
