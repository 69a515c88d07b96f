"""Following one CertificateSigningRequest until it is decided: one watch on that CSR alone (a
field selector on its name) from the `resourceVersion` its create returned, so that an approval
and the signature that follows arrive on the stream already open. A CSR issued at once costs
SelfSubjectReview, create and this one watch: three round trips.

The wait outlives its API server, as during a control-plane upgrade: a watch that ends (EOF,
reset, refused, 5xx) is re-established with backoff from the last `resourceVersion` seen, and
after a `410 Gone` (our version was compacted away) from a fresh GET. Only the deadline ends
the wait. Without permission to watch, it polls.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from ..errors import CSRDenied, ServerError, server_text
from ..kube import KubeClient

CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
POLL_INTERVAL = 2.0
FIRST_BACKOFF = 0.25
MAX_BACKOFF = 4.0
# Refusals that mean "this user may not watch here" rather than "try again".
NO_WATCH = (403, 404, 405)


def backoff(tries: int) -> float:
    """Seconds to wait before the `tries`-th retry in a row (1, 2, ...): doubling, capped."""
    return min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** max(0, tries - 1))


def csr_state(obj: dict[str, Any]) -> tuple[str, str]:
    """("issued", cert PEM), ("denied"/"failed", why), ("approved", "") when approved but not
    signed yet, or ("pending", ""). `obj` has passed csr.csr_shape_problem."""
    status = obj.get("status") or {}
    approved = False
    for cond in status.get("conditions") or []:
        kind = cond.get("type")
        if cond.get("status", "True") != "True":
            continue
        if kind in ("Denied", "Failed"):
            why = ": ".join(x for x in (cond.get("reason"), cond.get("message")) if x)
            return kind.lower(), server_text(why) or "no reason given"
        approved = approved or kind == "Approved"
    cert = status.get("certificate")
    if cert:
        try:
            return "issued", base64.b64decode(cert, validate=True).decode("ascii")
        except (ValueError, UnicodeDecodeError):
            return "failed", "the signer's certificate is not base64 PEM"
    return ("approved", "") if approved else ("pending", "")


def decided(obj: dict[str, Any]) -> bool:
    """Whether nothing more will happen to the CSR: issued, denied or failed."""
    return csr_state(obj)[0] not in ("approved", "pending")


def _version(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata")
    version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
    return version if isinstance(version, str) else ""


class Follow:
    """One wait on CSR `name`. `shape` checks (and returns) a CSR object from the server.
    Another kind of object is followed the same way with its `path`, `done` (whether nothing
    more will happen to it) and `what` (its name in messages): an access request."""

    def __init__(self, client: KubeClient, name: str, shape: Callable[[Any], dict[str, Any]],
                 clock: Callable[[], float], sleep: Callable[[float], None], *,
                 path: str = CSR_PATH, done: Callable[[dict[str, Any]], bool] = decided,
                 what: str = "certificate signing request") -> None:
        self.client = client
        self.name = name
        self.shape = shape
        self.clock = clock
        self.sleep = sleep
        self.path = path
        self.done = done
        self.what = what
        # The failure that stood when the wait ended, if the server was away at the end.
        self.unreachable: ServerError | None = None

    def until(self, obj: dict[str, Any], deadline: float) -> dict[str, Any]:
        """The CSR once decided, or as last seen when `deadline` passes. Raises CSRDenied when
        the CSR is deleted, and the error of any refusal that will not pass by itself."""
        version = _version(obj)
        stale = not version  # no version to watch from: read the CSR first
        watching = True
        quiet = 0  # tries in a row that brought no news: each waits longer before the next

        def pause() -> None:
            nonlocal quiet
            quiet += 1
            self.sleep(min(backoff(quiet), max(0.0, deadline - self.clock())))

        while not self.done(obj):
            left = deadline - self.clock()
            if left <= 0:
                return obj
            try:
                self.unreachable = None
                if stale:
                    obj = self._get()
                    version, stale = _version(obj), False
                elif not watching:
                    self.sleep(min(POLL_INTERVAL, left))
                    obj = self._get()
                    quiet = 0
                else:
                    obj, version, stale, news = self._watch(obj, version, left)
                    if news:
                        quiet = 0
                    else:
                        pause()  # a stream that ended with nothing, or 410: do not spin
            except ServerError as error:
                if error.status == 410 and watching and not stale:
                    stale = True  # our version was compacted away: read afresh, then watch
                    pause()
                elif error.status in NO_WATCH and watching and not stale:
                    watching = False  # no watch permission or support: poll instead
                elif error.transient:
                    self.unreachable = error
                    pause()
                else:
                    raise
        return obj

    def _get(self) -> dict[str, Any]:
        try:
            return self.shape(self.client.get(f"{self.path}/{self.name}"))
        except ServerError as error:
            if error.status == 404:
                raise self._deleted() from None
            raise

    def _watch(self, obj: dict[str, Any], version: str, left: float
               ) -> tuple[dict[str, Any], str, bool, bool]:
        """Follow one watch stream: (object, version, stale, whether it brought news)."""
        params = {"fieldSelector": f"metadata.name={self.name}", "resourceVersion": version,
                  "allowWatchBookmarks": "true"}
        news = False
        for event in self.client.watch(self.path, params, left):  # shaped {type, object}
            kind, changed = event["type"], event["object"]
            if kind == "ERROR":
                # A Status. 410 Gone (Expired): our version was compacted away, read afresh.
                # Anything else ends this stream like a break.
                return obj, version, changed.get("code") == 410, news
            if kind == "BOOKMARK":
                version, news = _version(changed) or version, True
                continue
            if kind not in ("ADDED", "MODIFIED", "DELETED"):
                continue
            changed = self.shape(changed)
            if changed["metadata"]["name"] != self.name:
                continue  # not ours: a server that ignored the field selector
            if kind == "DELETED":
                raise self._deleted()
            obj, version, news = changed, _version(changed), True
            if self.done(obj):
                break
        return obj, version, False, news

    def _deleted(self) -> CSRDenied:
        return CSRDenied(f"{self.what} {self.name} was deleted",
                         "run the command again to make a new request")
