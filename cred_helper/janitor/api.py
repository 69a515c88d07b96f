"""The janitor's requests (I/O only): the eviction and the Event (its lists are read with
kubelist.pages). Decisions about what the answers mean are in decide.py."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote

from ..errors import ServerError
from ..kube import KubeClient
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
from .times import rfc3339

COMPONENT = "cred-helper-janitor"
MAX_MESSAGE = 1000
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,198}[a-z0-9])?")  # fullmatch: no "$" before a newline
# What to do about a list too large to read (kubelist.pages, which the pass's lists use).
NARROWER = "run the janitor per namespace (--namespace)"


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
