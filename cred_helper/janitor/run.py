"""One janitor pass: list the PodDisruptionBudgets and pods (streamed, a page at a time, keeping
only the small facts decisions need), then decide and act on each pod with debug containers.

Nothing is acted on until both lists are complete, so a list that starts over (an expired
continue token) never leaves half a pass done. Memory holds, per workload, two bits; per
namespace, its PDB selectors; and per pod with debug containers, its facts.

Ages are judged by the API server's clock (the `Date` header of the pass's first answer), the
clock that wrote each pod's creationTimestamp and managedFields: a janitor whose own clock runs
ahead would otherwise find every session old."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import quote

from .. import kubelist
from ..errors import ServerError
from ..kube import KubeClient
from . import api
from .decide import (
    API_ERROR,
    EVICTED,
    TERMINATING_CAUSE,
    UNKNOWN,
    Decision,
    Limits,
    Options,
    due_reason,
    note_unreadable,
    note_workload,
    outcome,
    plan,
)
from .pods import PodFacts, pod_verdict, read_pod, workload_of
from .selectors import Selector, selector_object
from .times import http_date

CLOCK_WARNING = 60.0  # seconds between this machine's clock and the API server's worth a word

POD_PAGE = 100  # pods are kilobytes each; a page over its cap is asked again smaller
PDB_PAGE = 500
RBAC_HINT = ("the janitor needs to list pods and poddisruptionbudgets, create pods/eviction "
             "and create events; with rights in some namespaces only, name them with "
             "--namespace")


@dataclass
class Gathered:
    workloads: dict[str, int] = field(default_factory=dict)
    candidates: list[tuple[PodFacts, int]] = field(default_factory=list)
    malformed: int = 0
    in_scope: int = 0  # pods listed in the namespaces in scope
    excluded: int = 0  # of those, pods with debug containers that --exclude-selector left


class Janitor:
    def __init__(self, client: KubeClient, options: Options, *, out: Callable[[str], None],
                 warn: Callable[[str], None], wall: Callable[[], float]) -> None:
        self.client = client
        self.options = options
        self.out = out
        self.warn = warn
        self.wall = wall
        self.failed = False  # an API failure or an unknown outcome: exit 1
        self.now: float | None = None  # the API server's clock, from the pass's first answer

    def run(self) -> int:
        self.now = None
        try:
            pdbs = self._budgets()
            gathered = self._pods(pdbs)
        except ServerError as error:
            if error.status == 403:  # kube.py's hint speaks of CSRs: say what we need
                raise ServerError(error.message, RBAC_HINT) from None
            raise
        if gathered.malformed:
            self.warn(f"{gathered.malformed} pod(s) in the list could not be read and were "
                      "skipped; their workloads count as not Ready")
        if not gathered.candidates:
            self.warn(self._nothing_to_do(gathered))
        limits = Limits()
        for pod, count in gathered.candidates:
            decision = plan(pod, gathered.workloads, count, self.options, limits)
            if decision is None:
                decision = self._evict(pod)
                limits.record(pod, decision.action)
            self._report(decision)
        return 1 if self.failed else 0

    def _nothing_to_do(self, gathered: Gathered) -> str:
        where = "in " + ", ".join(self.options.namespaces) if self.options.namespaces \
            else "in scope"
        line = f"nothing to do: none of the {gathered.in_scope} pod(s) {where} has a debug " \
               "container"
        if gathered.excluded:
            line += f" outside --exclude-selector ({gathered.excluded} left by it)"
        return line

    def _clock(self, page: kubelist.Page) -> float:
        """The pass's now: the API server's clock at its first answer (later answers would
        only make ages a second longer)."""
        if self.now is None:
            date = http_date(page.date)
            if date is None:
                raise ServerError("the API server's answer has no usable Date header: the "
                                  "janitor judges ages by the API server's clock",
                                  "reach the API server directly, not through a proxy that "
                                  "drops the Date header")
            self.now = date
            skew = self.wall() - date
            if abs(skew) > CLOCK_WARNING:
                self.warn(f"this machine's clock is {abs(skew):.0f}s "
                          f"{'ahead of' if skew > 0 else 'behind'} the API server's; ages "
                          "are judged by the API server's")
        return self.now

    # ---- listing --------------------------------------------------------------------------

    def _paths(self, group_path: str, resource: str) -> list[str]:
        if self.options.namespaces:
            return [f"{group_path}/namespaces/{quote(ns, safe='')}/{resource}"
                    for ns in self.options.namespaces if self.options.in_scope(ns)]
        return [f"{group_path}/{resource}"]

    def _budgets(self) -> dict[str, list[Selector]]:
        budgets: dict[str, list[Selector]] = {}
        for path in self._paths("/apis/policy/v1", "poddisruptionbudgets"):
            kept = {ns: list(s) for ns, s in budgets.items()}
            for page in kubelist.pages(self.client, path, PDB_PAGE, hint=api.NARROWER):
                if page is kubelist.RESTART:
                    budgets = {ns: list(s) for ns, s in kept.items()}
                    continue
                self._clock(page)
                for obj in page.items:
                    meta = obj.get("metadata") if isinstance(obj, dict) else None
                    ns = meta.get("namespace") if isinstance(meta, dict) else None
                    spec = obj.get("spec") if isinstance(obj, dict) else None
                    if isinstance(ns, str) and self.options.in_scope(ns):
                        budgets.setdefault(ns, []).append(selector_object(
                            spec.get("selector") if isinstance(spec, dict) else None))
        return budgets

    def _pods(self, budgets: dict[str, list[Selector]]) -> Gathered:
        gathered = Gathered()
        options = self.options
        for path in self._paths("/api/v1", "pods"):
            kept = replace(gathered, workloads=dict(gathered.workloads),
                           candidates=list(gathered.candidates))
            for page in kubelist.pages(self.client, path, POD_PAGE, hint=api.NARROWER):
                if page is kubelist.RESTART:
                    gathered = replace(kept, workloads=dict(kept.workloads),
                                       candidates=list(kept.candidates))
                    continue
                now = self._clock(page)
                for obj in page.items:
                    pod = read_pod(obj, now, options.after_exit, options.max_age)
                    if pod is None:
                        gathered.malformed += 1
                        note_unreadable(gathered.workloads, workload_of(obj))
                        continue
                    if not options.in_scope(pod.namespace):
                        continue
                    gathered.in_scope += 1
                    note_workload(gathered.workloads, pod)
                    if pod.debug and not options.selected(pod):
                        gathered.excluded += 1
                    elif pod.debug:
                        count = sum(s.matches(pod.labels) for s in budgets.get(pod.namespace, ()))
                        gathered.candidates.append((_slim(pod), count))
        return gathered

    # ---- acting -----------------------------------------------------------------------------

    def _evict(self, pod: PodFacts) -> Decision:
        _, debug = pod_verdict(pod.debug)
        answer = api.evict(self.client, pod, self.options.dry_run)
        action = outcome(answer, self.options.dry_run)
        reason = due_reason(pod, self.options)
        if answer.message and action != EVICTED:
            reason = f"{reason}; {answer.message}"
        return Decision(pod, debug, action, reason, answer.status)

    def _report(self, decision: Decision) -> None:
        if decision.action in (UNKNOWN, API_ERROR):
            self.failed = True
        self.out(json.dumps(decision.line(), sort_keys=True))
        if self.options.dry_run:
            return  # a dry run changes nothing, Events included
        try:
            api.announce(self.client, decision, self.wall())
        except ServerError as error:
            if TERMINATING_CAUSE in error.cause_types:
                return  # its namespace is being deleted, with every Event in it
            self.failed = True
            self.warn(f"pod {decision.pod.namespace}/{decision.pod.name}: could not record "
                      f"the Event: {error.message}")


def _slim(pod: PodFacts) -> PodFacts:
    """The facts kept until the act: labels are no longer needed once PDBs are counted."""
    return replace(pod, labels={})
