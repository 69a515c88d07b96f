"""The janitor's requests (I/O only): paginated lists, the eviction, the Event. Decisions about
what the answers mean are in decide.py."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..errors import ServerError
from ..kube import KubeClient
from ..net import MAX_BODY
from .decide import (
    API_ERROR,
    CHANGED,
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
from .pods import PodFacts
from .times import http_date, rfc3339

COMPONENT = "cred-helper-janitor"
RESTART = None  # yielded by `pages` when the list starts over (a 410 on a continue token)
MAX_RESTARTS = 5
MAX_ITEMS = 200_000  # one list; 40 times the 5,000 pods bench/janitor.py measures
MAX_PAGES = 10_000
MAX_TOKEN = 4096  # kube-apiserver's tokens are a few hundred bytes
MAX_MESSAGE = 1000
# An answer is read whole, so its size is capped: a page at the network edge's 4 MiB, and a
# page of one object at more. One pod is at most what etcd stores (--max-request-bytes, 1.5 MiB
# by default), and JSON writes it at most about six times larger, the worst being text it
# escapes: `<`, `>` and `&` become `\u003c` (tried on 1.37: a pod with 1.4 MiB of `<` lists as
# 8.2 MiB of JSON).
PAGE_BODY = MAX_BODY
ITEM_BODY = 16 << 20
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,198}[a-z0-9])?")  # fullmatch: no "$" before a newline


@dataclass(frozen=True)
class Page:
    items: list[Any]
    date: float | None  # the API server's clock when it answered (its Date header)


def pages(client: KubeClient, path: str, limit: int) -> Iterator[Page | None]:
    """The items of a list, a page at a time (`limit` and `continue`). A continue token that
    expired (410) starts the list over: `RESTART` is yielded first, so the caller drops what it
    gathered. A page too large to read is asked again with half the limit, down to one object
    (so big pods anywhere slow a pass, and never stop it); the limit then grows back."""
    size, token = limit, ""
    restarts = 0
    # A server that repeats a continue token, or sends pages without end, is not followed for
    # ever: a page and item budget far above any real cluster's.
    pages_read = items_read = 0
    while True:
        params = {"limit": str(size), **({"continue": token} if token else {})}
        try:
            resp = client.request("GET", path, params=params,
                                  max_body=ITEM_BODY if size == 1 else PAGE_BODY)
        except ServerError as error:
            if error.too_large and size > 1:
                size //= 2
                continue
            if error.too_large:
                raise ServerError(f"one object in GET {path} is larger than "
                                  f"{ITEM_BODY >> 20} MiB of JSON: the janitor cannot read it",
                                  "run the janitor per namespace (--namespace), leaving out "
                                  "the one that holds it") from None
            if error.status == 410 and token and restarts < MAX_RESTARTS:
                restarts += 1
                size, token = limit, ""
                pages_read = items_read = 0
                yield RESTART
                continue
            raise
        doc = _object(resp, path)
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
        yield Page(items, http_date(resp.headers.get("Date")))
        more = meta.get("continue")
        if more is None or more == "":
            return
        if not isinstance(more, str) or more == token or len(more) > MAX_TOKEN:
            raise ServerError(f"the API server sent a continue token that cannot be followed "
                              f"(GET {path}): not a string, repeated or too long")
        size, token = min(limit, size * 2), more


def _object(resp: Any, path: str) -> dict:
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise ServerError(f"the API server sent a list that is not a JSON object (GET {path})")
    return doc


def evict(client: KubeClient, pod: PodFacts, dry_run: bool) -> Answer:
    """POST an Eviction (policy/v1) for exactly this pod as it was listed: its uid and its
    resourceVersion as preconditions, so a pod that changed since (a new debug session
    attached, a new pod under the name) gets 409 and stays. Never with a grace period: the
    pod's own terminationGracePeriodSeconds holds."""
    namespace, name = pod.namespace, pod.name
    body = {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
            "deleteOptions": {"preconditions": {"uid": pod.uid,
                                                "resourceVersion": pod.resource_version}}}
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
    GONE: "DebugPodGone", REPLACED: "DebugPodReplaced", CHANGED: "DebugPodChanged",
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
