"""Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it,
so that of the Deployment's replicas exactly one approves.

The holder renews `renewTime` every `retry` seconds. It counts as leader only while its last
successful renewal is younger than `renew_deadline` (less than the lease's duration): a holder
cut off from the API server stops acting before anyone else may take the lease. The others
never compare clocks with the holder: they note when they last saw the record change, and take
the lease over (an update at the version they read, so only one of them wins) once it has stayed
unchanged for `leaseDurationSeconds`. A holder stopping cleanly gives the lease up.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..errors import ServerError
from ..kube import KubeClient


def micro_time(now: float) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds)."""
    return datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Timing:
    lease_duration: float = 15.0  # client-go's defaults: 15 s, renew within 10 s, try every 2 s
    renew_deadline: float = 10.0
    retry: float = 2.0

    @classmethod
    def for_duration(cls, seconds: float) -> Timing:
        return cls(seconds, seconds * 2 / 3, seconds * 2 / 15)


class LeaseLock:
    """One replica's view of the Lease `namespace/name`; `try_acquire_or_renew` is one step."""

    def __init__(self, client: KubeClient, namespace: str, name: str, identity: str,
                 timing: Timing, clock: Callable[[], float],
                 wall: Callable[[], float]) -> None:
        self.client = client
        self.path = (f"/apis/coordination.k8s.io/v1/namespaces/{quote(namespace, safe='')}"
                     f"/leases")
        self.name = name
        self.identity = identity
        self.timing = timing
        self.clock = clock  # monotonic: what we measure with
        self.wall = wall  # what we write into the Lease
        self.renewed_at: float | None = None  # monotonic time of our last successful write
        self._observed: tuple[Any, ...] | None = None  # the record as last seen...
        self._observed_at = 0.0  # ...and when it last changed

    def leading(self) -> bool:
        return self.renewed_at is not None \
            and self.clock() - self.renewed_at < self.timing.renew_deadline

    def try_acquire_or_renew(self) -> bool:
        """Read the Lease and take or renew it if we may: whether we hold it now."""
        now = self.clock()
        try:
            lease = self.client.get(f"{self.path}/{quote(self.name, safe='')}")
        except ServerError as error:
            if error.status != 404:
                raise
            return self._create(now)
        spec = lease.get("spec") if isinstance(lease.get("spec"), dict) else {}
        meta = lease.get("metadata") if isinstance(lease.get("metadata"), dict) else {}
        holder = spec.get("holderIdentity") or ""
        duration = spec.get("leaseDurationSeconds")
        duration = duration if isinstance(duration, int) and duration > 0 \
            else self.timing.lease_duration
        record = (holder, spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed, self._observed_at = record, now
        if holder and holder != self.identity and now - self._observed_at < duration:
            self.renewed_at = None
            return False  # someone else holds it, and has renewed within its duration
        transitions = spec.get("leaseTransitions")
        transitions = transitions if isinstance(transitions, int) and transitions >= 0 else 0
        stamp = micro_time(self.wall())
        new_spec = {**spec, "holderIdentity": self.identity,
                    "leaseDurationSeconds": max(1, int(self.timing.lease_duration)),
                    "renewTime": stamp}
        if holder != self.identity:
            new_spec.update(acquireTime=stamp, leaseTransitions=transitions + 1)
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {**meta, "name": self.name}, "spec": new_spec}
        try:
            self.client.put(f"{self.path}/{quote(self.name, safe='')}", body)
        except ServerError as error:
            if error.status == 409:
                return self.leading()  # someone wrote first; we still hold until our deadline
            raise
        self.renewed_at = now
        return True

    def _create(self, now: float) -> bool:
        stamp = micro_time(self.wall())
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name},
                "spec": {"holderIdentity": self.identity,
                         "leaseDurationSeconds": max(1, int(self.timing.lease_duration)),
                         "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 0}}
        try:
            self.client.post(self.path, body)
        except ServerError as error:
            if error.status == 409:
                return False  # another replica created it first
            raise
        self.renewed_at = now
        return True

    def release(self) -> None:
        """Give the lease up (a clean stop), so another replica need not wait it out."""
        if self.renewed_at is None:
            return
        self.renewed_at = None
        try:
            lease = self.client.get(f"{self.path}/{quote(self.name, safe='')}")
            spec = lease.get("spec")
            if not isinstance(spec, dict) or spec.get("holderIdentity") != self.identity:
                return
            lease["spec"] = {**spec, "holderIdentity": "", "leaseDurationSeconds": 1,
                             "renewTime": micro_time(self.wall())}
            self.client.put(f"{self.path}/{quote(self.name, safe='')}", lease)
        except ServerError:
            pass  # it runs out by itself


class Elector:
    """Runs a LeaseLock in a thread of its own; `leading()` is safe to call from the loop."""

    def __init__(self, lock: LeaseLock, warn: Callable[[str], None],
                 sleep: Callable[[float], None] | None = None,
                 beat: Callable[[], None] = lambda: None,
                 observe: Callable[[str], None] = lambda why: None) -> None:
        self.lock = lock
        self.warn = warn
        self.beat = beat  # a sign of life each round (health.py)
        self.observe = observe  # each round's outcome: "" or why the API server failed
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)
        self._was_leading = False
        self._unreachable = ""

    def leading(self) -> bool:
        return self.lock.leading()

    def start(self) -> Elector:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.lock.release()

    def _run(self) -> None:
        try:
            self._rounds()
        except Exception as exc:  # a bug: one line, then no more beats (health.py's /livez)
            self.warn(f"lease {self.lock.name}: unexpected {type(exc).__name__}; the Lease "
                      "is no longer renewed here, and the liveness probe fails")

    def _rounds(self) -> None:
        while not self._stop.is_set():
            self.beat()
            try:
                self.lock.try_acquire_or_renew()
                self._unreachable = ""
                self.observe("")
            except ServerError as error:
                if error.message != self._unreachable:
                    self.warn(f"lease {self.lock.name}: {error.message}")
                self._unreachable = error.message
                self.observe(error.message)
            now_leading = self.lock.leading()
            if now_leading != self._was_leading:
                self.warn(f"{self.lock.identity}: "
                          + ("leading: acting on CSRs" if now_leading
                             else "not leading: standing by"))
                self._was_leading = now_leading
            self._sleep(self.lock.timing.retry)
