"""The gateway's request-and-answer API calls, through kube.KubeClient (blocking; the server
runs them in threads):

- as itself, its ServiceAccount: read one access request, list them, and watch them (the
  revocation feed: `RequestWatch`, a thread that re-lists after a break or a 410);
- as the person, with the impersonation headers: list the pods of a namespace.

Streams (exec, port-forward, logs) are in streams.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from .. import accessrequest as ar
from .. import kubelist
from ..errors import CredHelperError, ServerError
from ..kube import Auth, Endpoint, KubeClient

WATCH_SECONDS = 240
# Objects to a page of a list (kubelist.pages, which asks again with fewer where a page is too
# large to read: an access request is up to about 250 KB of JSON, as its requester chooses).
PAGE = 50


@dataclass(frozen=True)
class Pod:
    name: str
    phase: str
    containers: tuple[str, ...]


class Cluster:
    def __init__(self, endpoint: Endpoint, auth: Auth) -> None:
        self.endpoint = endpoint
        self.auth = auth
        self._own = KubeClient(endpoint, auth, timeout=30)

    def as_person(self, headers: tuple[tuple[str, str], ...]) -> KubeClient:
        return KubeClient(self.endpoint, self.auth, timeout=30, extra_headers=headers)

    def get_request(self, name: str) -> ar.AccessRequest | None:
        """The request, None when there is none; AccessRequestError when it cannot be read."""
        try:
            return ar.parse(self._own.get(f"{ar.PATH}/{name}"))
        except ServerError as exc:
            if exc.status == 404:
                return None
            raise

    def list_requests(self) -> tuple[dict[str, ar.AccessRequest | None], str]:
        """Every request by name (None: present but unreadable) and the list's
        resourceVersion, read a page at a time: the requests accumulate (nothing removes
        them), and anyone who may create one chooses how large it is, so one answer for all
        of them would outgrow what an answer may be, and the gateway would stop seeing
        revocations (a list is its watch's start)."""
        found: dict[str, ar.AccessRequest | None] = {}
        version = ""
        for page in kubelist.pages(self._own, ar.PATH, PAGE):
            if page is kubelist.RESTART:
                found = {}
                continue
            version = str(page.metadata.get("resourceVersion", ""))  # each page's: the list's
            for item in page.items:
                name = _name(item)
                if name:
                    found[name] = _parse_or_none(item)
        return found, version

    def watch_requests(self, resource_version: str):
        return self._own.watch(ar.PATH, {"resourceVersion": resource_version,
                                         "allowWatchBookmarks": "true"}, WATCH_SECONDS)


def list_pods(client: KubeClient, namespace: str) -> list[Pod]:
    pods: list[Pod] = []
    for page in kubelist.pages(client, f"/api/v1/namespaces/{namespace}/pods", PAGE):
        if page is kubelist.RESTART:
            pods = []
            continue
        for item in page.items:
            if not isinstance(item, dict):
                continue
            name = _name(item)
            spec = item.get("spec") if isinstance(item.get("spec"), dict) else {}
            status = item.get("status") if isinstance(item.get("status"), dict) else {}
            listed = spec.get("containers")
            containers = tuple(c["name"] for c in (listed if isinstance(listed, list) else [])
                               if isinstance(c, dict) and isinstance(c.get("name"), str))
            phase = status.get("phase") if isinstance(status.get("phase"), str) else "Unknown"
            if name:
                pods.append(Pod(name, phase, containers))
    return sorted(pods, key=lambda p: p.name)


def _name(item: object) -> str:
    meta = item.get("metadata") if isinstance(item, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


def _parse_or_none(item: object) -> ar.AccessRequest | None:
    try:
        return ar.parse(item)
    except ar.AccessRequestError:
        return None


Changed = Callable[[str, "ar.AccessRequest | None"], None]
Synced = Callable[[dict[str, "ar.AccessRequest | None"]], None]


class RequestWatch(threading.Thread):
    """Lists, then watches access requests, for as long as `stop` is not set: each change
    goes to `changed(name, request)` (None: deleted or unreadable), each full list to
    `synced(requests)`. A broken watch is listed again, with a short backoff, so that a
    change made while it was down is seen at the next list. `failed(message)` is told when
    a list fails."""

    def __init__(self, cluster: Cluster, changed: Changed, synced: Synced,
                 failed: Callable[[CredHelperError], None], stop: threading.Event) -> None:
        super().__init__(name="accessrequest-watch", daemon=True)
        self.cluster = cluster
        self.changed = changed
        self.synced = synced
        self.failed = failed
        self.stop = stop

    def run(self) -> None:
        backoff = 0.2
        while not self.stop.is_set():
            try:
                found, version = self.cluster.list_requests()
                self.synced(found)
                backoff = 0.2
                self._follow(version)
                self.stop.wait(0.1)  # the server ended the watch: list again
            except CredHelperError as exc:
                self.failed(exc)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)

    def _follow(self, version: str) -> None:
        for event in self.cluster.watch_requests(version):
            if self.stop.is_set():
                return
            kind, obj = event["type"], event["object"]
            if kind == "ERROR":  # 410 Gone and friends: list again
                return
            if kind == "BOOKMARK":
                continue
            name = _name(obj)
            if name:
                self.changed(name, None if kind == "DELETED" else _parse_or_none(obj))
