"""The broker's way of following one kind of object: list, then watch from the list's
`resourceVersion`, and hand each object that wants a decision to `handle`.

A watch that breaks is started again with backoff from the last version seen; a `410 Gone` or
an ERROR event lists afresh; a full list comes every RESYNC_SECONDS, so that a reloaded policy
meets what is still waiting. Leadership (`leading()`) is asked before each object is handed on:
a replica that lost the Lease stops acting at once and lists again once it leads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import kubelist
from ..errors import ServerError
from ..issuers.approval import backoff
from ..kube import KubeClient

WATCH_SECONDS = 300.0  # one watch stream at most; then a new one from the last version
RESYNC_SECONDS = 600.0  # a full list this often, so a reloaded policy sees old pending objects
PAGE = 500  # objects to a page of the list (fewer where a page is too large to read)


class Stream:
    """`path` listed and watched with `params`; `usable(obj)` says whether an object from the
    server has the shape `handle` needs, `wanted(obj)` whether it waits for a decision."""

    def __init__(self, client: KubeClient, path: str, params: dict[str, str], what: str, *,
                 usable: Callable[[Any], bool], wanted: Callable[[dict], bool],
                 handle: Callable[[dict], None], warn: Callable[[str], None],
                 clock: Callable[[], float], sleep: Callable[[float], None],
                 leading: Callable[[], bool], beat: Callable[[], None] = lambda: None,
                 observe: Callable[[str], None] = lambda why: None) -> None:
        self.client = client
        self.path = path
        self.params = params
        self.what = what  # "CSR list", for messages
        self.usable = usable
        self.wanted = wanted
        self.handle = handle
        self.warn = warn
        self.clock = clock
        self.sleep = sleep
        self.leading = leading
        self.beat = beat  # a sign of life: each pass of the loop and each watch event
        self.observe = observe  # the API server's answers: "" or why it failed (health.py)

    def run_once(self) -> None:
        """One pass over what is listed now."""
        items, _ = self.list()
        for obj in items:
            if not self.leading():
                return
            if self.wanted(obj):
                self.handle(obj)

    def run(self, until: Callable[[], bool] = lambda: False) -> None:
        """List and watch until `until()`; breaks are retried with backoff, never the end."""
        tries = 0
        while not until():
            self.beat()
            if not self.leading():
                self.sleep(0.2)
                continue
            try:
                items, version = self.list()
                self.observe("")
                for obj in items:
                    if not self.leading() or until():
                        break
                    if self.wanted(obj):
                        self.handle(obj)
                listed = self.clock()
                while not until() and self.leading() \
                        and self.clock() - listed < RESYNC_SECONDS:
                    version, gone, news = self.watch(version, until)
                    if news:
                        tries = 0
                    if gone:
                        break  # 410 or an ERROR event: list afresh
                    if not news:
                        tries += 1
                        self.sleep(backoff(tries))
            except ServerError as error:
                self.observe(error.message)
                # 401 and 403 pass too: a kube-apiserver just restarted answers 403 until its
                # RBAC caches are filled (seen here), and a token rotates; client-go's
                # reflectors retry them the same way, saying why each time.
                if not (error.transient or error.status in (401, 403, 409, 410)):
                    raise
                tries += 1
                self.warn(f"{error.message}; trying again")
                self.sleep(backoff(tries))

    def list(self) -> tuple[list[dict], str]:
        """What is there now and the list's resourceVersion, a page at a time (kubelist):
        whoever may create a CSR or an access request chooses its size, and one answer for
        all of them could outgrow what an answer may be, which no retry mends."""
        items: list[dict] = []
        version = ""
        for page in kubelist.pages(self.client, self.path, PAGE, self.params):
            if page is kubelist.RESTART:
                items = []
                continue
            items += [obj for obj in page.items if self.usable(obj)]
            found = page.metadata.get("resourceVersion")
            version = found if isinstance(found, str) else ""
        return items, version

    def watch(self, version: str, until: Callable[[], bool]) -> tuple[str, bool, bool]:
        """Follow one stream: (last version, whether to list afresh, whether it brought news)."""
        self.beat()
        params = {**self.params, "allowWatchBookmarks": "true"}
        if version:
            params["resourceVersion"] = version
        news = False
        for event in self.client.watch(self.path, params, WATCH_SECONDS):
            self.beat()
            self.observe("")
            kind, obj = event["type"], event["object"]
            if kind == "ERROR":
                return version, True, news  # a Status: 410 Gone or worse; list afresh
            meta = obj.get("metadata")
            seen = meta.get("resourceVersion") if isinstance(meta, dict) else None
            version, news = (seen if isinstance(seen, str) and seen else version), True
            if kind in ("ADDED", "MODIFIED") and self.usable(obj) and self.wanted(obj):
                if not self.leading():
                    return version, True, news  # lost the lease: list again once we lead
                self.handle(obj)
            if until():
                break
        return version, False, news
