"""The approver's loop: list, then watch, the CSRs for the kube-apiserver-client signer, and
decide each pending one once.

For each pending CSR it reads the CSR afresh (GET), asks the judge, and approves or denies it
through the `approval` subresource with the `resourceVersion` it judged. A 409 Conflict means the
CSR changed under us (another approver, a person): read it again and judge again; one that
someone else decided meanwhile is left alone. So two approvers racing decide each CSR once, and a
restarted one finds decided CSRs decided.

A `manual` CSR is left for a person, and announced once by an Event whose name is derived from
the CSR's uid: creating it a second time (after a restart, or by the other replica) is refused
with 409 AlreadyExists, which is how we know it was said. Every decision is one JSON line on
stdout and an Event in `default` (a CSR is cluster-scoped) whose involved object carries the
CSR's uid, so `kubectl describe csr` lists it.

The policy comes from `load()`, called before each judgment: a reload that fails keeps the last
good judge and says so once on stderr. Leadership (leader.py) is asked before every write.

A dry run (`dry_run=True`) judges the same way and writes only its decision lines, marked
`"dryRun": true`, once per CSR version: no approval, no denial, no Event.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import quote

from ..errors import CredHelperError, ServerError
from ..issuers.csr import csr_shape_problem
from ..kube import KubeClient
from .stream import Stream
from .verdict import APPROVE, DENY, MANUAL, Attestation, Decision

SIGNER = "kubernetes.io/kube-apiserver-client"
CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
EVENTS_PATH = "/api/v1/namespaces/default/events"
COMPONENT = "cred-helper-approver"
MAX_TEXT = 1000  # condition and Event messages carry attacker-chosen text: bounded
MAX_CONFLICTS = 5  # re-reads after a 409 before leaving the CSR to the next pass

# judge(csr object) -> (decision, attestation, facts or None when the CSR could not be read)
Judge = Callable[[dict], tuple[Decision, Attestation, Any]]


def utc_now(now: float) -> str:
    return datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def shape_problem(obj: Any) -> str | None:
    """What is wrong with a CSR object for the approver, or None."""
    problem = csr_shape_problem(obj)
    if problem:
        return problem
    if not isinstance(obj["metadata"].get("uid"), str) or not obj["metadata"]["uid"]:
        return "metadata.uid is not a string"
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return "spec is not an object"
    if not isinstance(spec.get("signerName"), str):
        return "spec.signerName is not a string"
    return None


def pending(obj: dict) -> bool:
    """Ours (the client signer) and not yet approved, denied, failed or issued."""
    if obj["spec"]["signerName"] != SIGNER:
        return False
    status = obj.get("status") or {}
    if status.get("certificate"):
        return False
    for cond in status.get("conditions") or []:
        if cond.get("type") in ("Approved", "Denied", "Failed") \
                and cond.get("status", "True") == "True":
            return False
    return True


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 3] + "..."


def condition_reason(decision: Decision) -> str:
    """The condition's machine-readable reason, naming the rule (CamelCase-ish, bounded)."""
    rule = "".join(c if c.isalnum() or c in "-_." else "_" for c in decision.rule)[:100]
    return f"CredHelperRule.{rule}" if rule else "CredHelperNoRule"


class Reloading:
    """The last good result of `load()`. The first load must work (a bad policy is refused at
    start); a later failure keeps the last good one and says so once until the next success."""

    def __init__(self, load: Callable[[], Judge], warn: Callable[[str], None]) -> None:
        self._load = load
        self._warn = warn
        self._value = load()
        self._failed = ""

    def get(self) -> Judge:
        try:
            value = self._load()
        except CredHelperError as exc:
            self._failing(exc.message)
        except Exception as exc:  # a hostile file must not stop the approver
            self._failing(f"unexpected {type(exc).__name__}")
        else:
            if self._failed:
                self._warn("policy reloaded")
            self._value, self._failed = value, ""
        return self._value

    def _failing(self, why: str) -> None:
        if why != self._failed:
            self._warn(f"policy reload failed, keeping the last good policy: {why}")
        self._failed = why


class Approver:
    """Decides the pending client-certificate CSRs of one cluster. `out` gets the JSON decision
    lines, `warn` one-line notes for the operator; `leading()` says whether we may act now."""

    def __init__(self, client: KubeClient, load: Callable[[], Judge], *,
                 out: Callable[[str], None], warn: Callable[[str], None],
                 clock: Callable[[], float], sleep: Callable[[float], None],
                 identity: str = COMPONENT, leading: Callable[[], bool] = lambda: True,
                 wall: Callable[[], float] | None = None, dry_run: bool = False,
                 beat: Callable[[], None] = lambda: None,
                 observe: Callable[[str], None] = lambda why: None) -> None:
        import time

        self.client = client
        self.judges = Reloading(load, warn)
        self.out = out
        self.warn = warn
        self.clock = clock
        self.sleep = sleep
        self.wall = wall or time.time
        self.identity = identity
        self.leading = leading
        self.beat = beat  # a sign of life: each pass of the loop, watch event and CSR
        self.observe = observe  # the API server's answers: "" or why it failed (health.py)
        self.decided = 0  # decisions this process made (approve, deny, manual announced)
        self.dry_run = dry_run
        self._judged: set[tuple[str, str]] = set()  # (uid, resourceVersion) said in a dry run

    # ---- the loop ----------------------------------------------------------------------------

    def stream(self) -> Stream:
        return Stream(self.client, CSR_PATH, {"fieldSelector": f"spec.signerName={SIGNER}"},
                      "CSR list", usable=lambda obj: shape_problem(obj) is None,
                      wanted=pending, handle=self.handle, warn=self.warn, clock=self.clock,
                      sleep=self.sleep, leading=self.leading, beat=self.beat,
                      observe=self.observe)

    def run_once(self) -> None:
        """One pass over the CSRs pending now."""
        self.stream().run_once()

    def run(self, until: Callable[[], bool] = lambda: False) -> None:
        """List and watch until `until()`; breaks are retried with backoff, never the end."""
        self.stream().run(until)

    # ---- one CSR ----------------------------------------------------------------------------

    def handle(self, seen: dict) -> None:
        """Decide one CSR seen pending: read, judge, act; again after a conflict."""
        name = seen["metadata"]["name"]
        for _ in range(MAX_CONFLICTS):
            self.beat()
            obj = self._read(name)
            if obj is None or not pending(obj):
                return  # gone, or decided by someone else
            try:
                decision, attestation, facts = self.judges.get()(obj)
            except Exception as exc:  # never approve what we could not judge
                self.warn(f"csr {name}: cannot judge it ({type(exc).__name__}); left pending")
                return
            if decision.action not in (APPROVE, DENY, MANUAL):
                self.warn(f"csr {name}: the policy answered {decision.action!r}; left pending")
                return
            if not self.leading():
                return
            if self.dry_run:
                self._say_dry(obj, decision, attestation, facts)
                return
            if decision.action == MANUAL:
                self._announce_manual(obj, decision, attestation, facts)
                return
            written = write_at_version(partial(self._approval, obj, decision), self.warn,
                                       f"csr {name}: {decision.action}")
            if written == AGAIN:
                continue  # changed under us: read again, judge again
            if written == GONE:
                return
            self._report(obj, decision, attestation, facts)
            return
        self.warn(f"csr {name}: changed {MAX_CONFLICTS} times while being decided; "
                  "left for the next pass")

    def _read(self, name: str) -> dict | None:
        try:
            obj = self.client.get(f"{CSR_PATH}/{quote(name, safe='')}")
        except ServerError as error:
            if error.status == 404:
                return None
            raise
        problem = shape_problem(obj)
        if problem:
            self.warn(f"csr {name}: the API server sent a malformed CSR ({problem}); skipped")
            return None
        return obj

    def _approval(self, obj: dict, decision: Decision) -> None:
        """Approve or deny through the approval subresource, at the version judged."""
        body = json.loads(json.dumps(obj))  # a copy: the judged object, plus one condition
        body.setdefault("apiVersion", "certificates.k8s.io/v1")
        body.setdefault("kind", "CertificateSigningRequest")
        status = body.get("status") or {}
        conditions = list(status.get("conditions") or [])
        now = utc_now(self.wall())
        conditions.append({
            "type": "Approved" if decision.action == APPROVE else "Denied",
            "status": "True", "reason": condition_reason(decision),
            "message": _clip(decision.reason), "lastUpdateTime": now,
            "lastTransitionTime": now})
        body["status"] = {**status, "conditions": conditions}
        name = obj["metadata"]["name"]
        self.client.put(f"{CSR_PATH}/{quote(name, safe='')}/approval", body)

    def _announce_manual(self, obj: dict, decision: Decision, attestation: Attestation,
                         facts: Any) -> None:
        if self._event(obj, decision, "manual"):
            self._report(obj, decision, attestation, facts)

    def _say_dry(self, obj: dict, decision: Decision, attestation: Attestation,
                 facts: Any) -> None:
        """The decision line alone, once for each version of the CSR (a watch and the
        periodic list show the same pending CSR again)."""
        seen = (obj["metadata"]["uid"], str(obj["metadata"].get("resourceVersion", "")))
        if seen in self._judged:
            return
        self._judged.add(seen)
        self.decided += 1
        self.out(json.dumps(decision_line(obj, decision, attestation, facts, self.wall(),
                                          dry_run=True), sort_keys=True))

    def _report(self, obj: dict, decision: Decision, attestation: Attestation,
                facts: Any) -> None:
        if decision.action != MANUAL:
            self._event(obj, decision, decision.action)
        self.decided += 1
        self.out(json.dumps(decision_line(obj, decision, attestation, facts, self.wall()),
                            sort_keys=True))

    def _event(self, obj: dict, decision: Decision, what: str) -> bool:
        """Create the Event for this decision; False when it exists already (said before)."""
        meta = obj["metadata"]
        involved = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                    "name": meta["name"], "uid": meta["uid"],
                    "resourceVersion": meta["resourceVersion"]}
        return post_event(self.client, involved, f"csr-{meta['uid']}.{what}", decision, what,
                          self.wall(), self.warn)


DONE, AGAIN, GONE = "done", "again", "gone"


def write_at_version(write: Callable[[], None], warn: Callable[[str], None], what: str) -> str:
    """Write a decision at the version judged: DONE; AGAIN after a 409 (the object changed
    meanwhile: read and judge it again); GONE when it was deleted, or the write was refused
    (said on `warn`). A transient failure is raised: the loop tries again later."""
    try:
        write()
    except ServerError as error:
        if error.status == 409:
            return AGAIN
        if error.status == 404:
            return GONE
        if error.transient:
            raise
        warn(f"{what} refused: {error.message}")
        return GONE
    return DONE


def post_event(client: KubeClient, involved: dict, name: str, decision: Decision, what: str,
               now: float, warn: Callable[[str], None]) -> bool:
    """Create the Event `name` (in `default`: the objects decided are cluster-scoped) about
    `involved`; False when it exists already: one name per object and outcome, so a second
    create (a restart, the other replica) is refused, and it is said once."""
    stamp = utc_now(now)
    reason = {APPROVE: "Approved", DENY: "Denied", "sign": "Signed"}.get(
        what, "ManualApprovalRequired")
    message = _clip(f"{what} by rule {decision.rule or '(none)'}: {decision.reason}")
    event = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": "default",
                     "labels": {"app.kubernetes.io/name": COMPONENT}},
        "involvedObject": involved,
        "reason": reason, "message": message,
        "type": "Normal" if what in (APPROVE, "sign") else "Warning",
        "source": {"component": COMPONENT},
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
    }
    try:
        client.post(EVENTS_PATH, event)
    except ServerError as error:
        if error.status == 409:
            return False
        if error.transient:
            raise
        # The decision stands without its Event; say why once here.
        warn(f"{involved['kind']} {involved['name']}: could not record the Event: "
             f"{error.message}")
    return True


def decision_line(obj: dict, decision: Decision, attestation: Attestation, facts: Any,
                  now: float, dry_run: bool = False) -> dict:
    """The JSON line for one decision: from the facts when the CSR could be read, else from
    the object's spec (shape-checked here: it is the requester's own text). `dryRun` marks a
    decision judged and not acted on."""
    spec = obj.get("spec") or {}
    if facts is not None:
        requester = {"username": facts.username, "groups": list(facts.groups)}
        subject = {"commonName": facts.common_name,
                   "organizations": list(facts.organizations)}
    else:
        user = spec.get("username")
        groups = spec.get("groups")
        requester = {"username": user if isinstance(user, str) else "",
                     "groups": [g for g in groups if isinstance(g, str)]
                     if isinstance(groups, list) else []}
        subject = None
    line = {
        "time": utc_now(now), "csr": obj["metadata"]["name"], "uid": obj["metadata"]["uid"],
        "requester": requester, "subject": subject, "rule": decision.rule,
        "decision": decision.action, "reason": decision.reason,
        "attestation": {"mode": attestation.mode, "ok": attestation.ok,
                        "reason": attestation.reason, "user": attestation.user,
                        "serial": attestation.serial},
    }
    if dry_run:
        line["dryRun"] = True
    return line
