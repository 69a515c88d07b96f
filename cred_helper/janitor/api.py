"""The janitor's requests (I/O only): paginated lists, the eviction, the Event. Decisions about
what the answers mean are in decide.py."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from ..errors import ServerError
from ..kube import KubeClient
from .decide import (
    API_ERROR,
    EVICTED,
    GONE,
    NO_PDB,
    PDB_BLOCKED,
    REPLACED,
    THROTTLED,
    UNKNOWN,
    WOULD_EVICT,
    Answer,
    Decision,
)
from .times import rfc3339

COMPONENT = "cred-helper-janitor"
RESTART = None  # yielded by `pages` when the list starts over (a 410 on a continue token)
MAX_RESTARTS = 5
MAX_ITEMS = 200_000  # one list; 40 times the 5,000 pods bench/janitor.py measures
MAX_PAGES = 10_000
MAX_TOKEN = 4096  # kube-apiserver's tokens are a few hundred bytes
MAX_MESSAGE = 1000
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,198}[a-z0-9])?")  # fullmatch: no "$" before a newline


def pages(client: KubeClient, path: str, limit: int) -> Iterator[list[Any] | None]:
    """The items of a list, a page at a time (`limit` and `continue`). A continue token that
    expired (410) starts the list over: `RESTART` is yielded first, so the caller drops what it
    gathered."""
    params: dict[str, str] = {"limit": str(limit)}
    restarts = 0
    # A server that repeats a continue token, or sends pages without end, is not followed for
    # ever: a page and item budget far above any real cluster's.
    pages_read = items_read = 0
    while True:
        try:
            doc = client.get(path, params)
        except ServerError as error:
            if error.status == 410 and "continue" in params and restarts < MAX_RESTARTS:
                restarts += 1
                params = {"limit": str(limit)}
                pages_read = items_read = 0
                yield RESTART
                continue
            raise
        meta, items = doc.get("metadata"), doc.get("items")
        if not isinstance(meta, dict) or not isinstance(items, list):
            raise ServerError(f"the API server sent a list without items or metadata "
                              f"(GET {path})")
        pages_read += 1
        items_read += len(items)
        if items_read > MAX_ITEMS or pages_read > MAX_PAGES:
            raise ServerError(f"the API server listed more than {MAX_ITEMS} items or "
                              f"{MAX_PAGES} pages (GET {path})",
                              "run the janitor per namespace (--namespace)")
        yield items
        more = meta.get("continue")
        if not (isinstance(more, str) and more):
            return
        if more == params.get("continue") or len(more) > MAX_TOKEN:
            raise ServerError(f"the API server sent a continue token that cannot be followed "
                              f"(GET {path}): repeated or too long")
        params = {"limit": str(limit), "continue": more}


def evict(client: KubeClient, namespace: str, name: str, uid: str, dry_run: bool) -> Answer:
    """POST an Eviction (policy/v1) for exactly this pod (uid precondition), never with a
    grace period: the pod's own terminationGracePeriodSeconds holds."""
    body = {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
            "deleteOptions": {"preconditions": {"uid": uid}}}
    path = f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(name, safe='')}/eviction"
    try:
        resp = client.request("POST", path, body=body,
                              params={"dryRun": "All"} if dry_run else None)
    except ServerError as error:
        if error.status is None and error.unsent:
            raise  # the API server cannot be reached: the pass stops here
        return Answer(error.status, error.status_reason, error.cause_types, error.unsent,
                      error.status_message or error.message)
    return Answer(resp.status_code)


def event_name(decision: Decision) -> str:
    """One name per pod uid and action: creating it again is refused (409), which is how a
    block already announced is not announced on every run."""
    digest = hashlib.sha256(f"{decision.pod.uid}\0{decision.action}".encode()).hexdigest()
    prefix = decision.pod.name if _NAME.fullmatch(decision.pod.name) else "pod"
    return f"{prefix}.janitor-{digest[:16]}"


EVENT_REASONS = {
    EVICTED: "DebugPodEvicted", WOULD_EVICT: "DebugPodWouldEvict",
    PDB_BLOCKED: "DebugPodEvictionBlocked", NO_PDB: "DebugPodNoDisruptionBudget",
    GONE: "DebugPodGone", REPLACED: "DebugPodReplaced",
    THROTTLED: "DebugPodEvictionThrottled", UNKNOWN: "DebugPodEvictionUnknown",
}
WARNINGS = {PDB_BLOCKED, NO_PDB, UNKNOWN, THROTTLED, API_ERROR}


def announce(client: KubeClient, decision: Decision, now: float) -> bool:
    """Create the pod's Event for this decision; False when it was said before."""
    pod = decision.pod
    when = rfc3339(now)
    reason = EVENT_REASONS.get(decision.action, "DebugPodSkipped")
    message = " ".join(f"{decision.action}: {decision.reason}".split())[:MAX_MESSAGE]
    event = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": event_name(decision), "namespace": pod.namespace,
                     "labels": {"app.kubernetes.io/name": COMPONENT}},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": pod.namespace,
                           "name": pod.name, "uid": pod.uid},
        "reason": reason, "message": message,
        "type": "Warning" if decision.action in WARNINGS else "Normal",
        "source": {"component": COMPONENT},
        "firstTimestamp": when, "lastTimestamp": when, "count": 1,
    }
    try:
        client.post(f"/api/v1/namespaces/{quote(pod.namespace, safe='')}/events", event)
    except ServerError as error:
        if error.status == 409:
            return False
        raise
    return True
