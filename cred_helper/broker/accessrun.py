"""The broker's loop for access requests, beside the CSR loop (run.py) and with its guarantees:
list, then watch (stream.py); for each request that waits, read it afresh, judge it, and write
the outcome through the `status` subresource at the `resourceVersion` judged. A 409 Conflict
means it changed meanwhile (another replica, a person): read and judge again. So two brokers
racing decide and sign each request once, and a restarted one finds decided ones decided.

Where a request stands (accessfacts.state_of):
- pending: `approve` writes the Approved condition, the certificate, the grant and the end in
  one update; `deny` writes Denied with the reason; `manual` is announced once by an Event
  (named after the request's uid, so a restart or the other replica says nothing again);
- approved by a person, no certificate yet: judged again by today's policy, then signed (or
  denied, when a check now fails or the approver is the requester);
- signed or denied: nothing to do;
- being deleted (a finalizer holds it): denied, never signed.

Nothing is signed while the admission policies that bind a request to its creator are not in
force (accessguard.py). Every decision is one JSON line on stdout and an Event in `default`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import quote

from .. import accessrequest as ar
from ..errors import CredHelperError, ServerError
from ..kube import KubeClient
from .accessfacts import DENIED, PENDING, SIGNED, TO_SIGN, AccessFacts
from .accessguard import ADMISSION_GRACE, Guard
from .accesspolicy import AccessVerdict
from .run import (
    AGAIN,
    GONE,
    MAX_CONFLICTS,
    Reloading,
    _clip,
    condition_reason,
    post_event,
    utc_now,
    write_at_version,
)
from .sshsign import Issued, SshCa, sign
from .stream import Stream
from .verdict import APPROVE, DENY, MANUAL, NO_PROOF, Attestation, Decision

SIGN = "sign"  # the outcome for a request a person approved, once the broker signed it

# judge(object) -> (verdict, attestation, facts or None when the object could not be read);
# the loader answers None while the policy has no `access:` section.
AccessJudge = Callable[[dict], tuple[AccessVerdict, Attestation, AccessFacts | None]]


def _readable(obj: Any) -> bool:
    """Enough shape to read it again by name and to know where it stands."""
    if not isinstance(obj, dict):
        return False
    meta = obj.get("metadata")
    return isinstance(meta, dict) and isinstance(meta.get("name"), str) \
        and ar.is_name(meta["name"]) and isinstance(meta.get("uid"), str) \
        and isinstance(meta.get("resourceVersion"), str) \
        and isinstance(obj.get("status", {}), dict)


def waiting(obj: dict) -> bool:
    """Not signed and not denied: the broker has something to do (even for a malformed one,
    which it denies with the reason)."""
    status = obj.get("status") or {}
    if status.get("certificate"):
        return False
    conditions = status.get("conditions")
    for cond in conditions if isinstance(conditions, list) else []:
        if isinstance(cond, dict) and cond.get("type") == "Denied" \
                and cond.get("status") == "True":
            return False
    return True


class AccessBroker:
    """Decides and signs the access requests of one cluster. `decider` is the broker's own user
    name (SelfSubjectReview), written as `decidedBy`; `guard` (accessguard.py) says why nothing
    may be signed now, and since when requests were checked by admission."""

    def __init__(self, client: KubeClient, load: Callable[[], AccessJudge | None], ca: SshCa,
                 *, decider: str, guard: Guard,
                 out: Callable[[str], None], warn: Callable[[str], None],
                 clock: Callable[[], float], sleep: Callable[[float], None],
                 wall: Callable[[], float], leading: Callable[[], bool] = lambda: True,
                 beat: Callable[[], None] = lambda: None) -> None:
        self.client = client
        self.judges = Reloading(load, warn)
        self.ca = ca
        self.decider = decider
        self.guard = guard
        self.out = out
        self.warn = warn
        self.clock = clock
        self.sleep = sleep
        self.wall = wall
        self.leading = leading
        self.beat = beat  # a sign of life (health.py): each pass, watch event and request
        self.decided = 0
        self._said: str | None = None  # the last "cannot sign" reason, said once

    def stream(self) -> Stream:
        return Stream(self.client, ar.PATH, {}, "AccessRequest list", usable=_readable,
                      wanted=waiting, handle=self.handle, warn=self.warn, clock=self.clock,
                      sleep=self.sleep, leading=self.leading, beat=self.beat)

    def active(self) -> bool:
        """Whether the policy has an `access:` section now."""
        return self.judges.get() is not None

    def run_once(self) -> None:
        if self.active():
            self._unavailable(self.stream().run_once, pause=0.0)

    def run(self, until: Callable[[], bool] = lambda: False) -> None:
        """Follow access requests until `until()`, while the policy has an `access:` section
        (checked again every few seconds while it has none)."""
        while not until():
            self.beat()
            if not self.active():
                self.sleep(2.0)
                continue
            self._unavailable(lambda: self.stream().run(lambda: until() or not self.active()))

    def _unavailable(self, follow: Callable[[], None], pause: float = 30.0) -> None:
        """Run `follow`; an API that is not there (the CRD not installed) is said once and
        tried again later, never the end of the CSR broker beside it. (A refusal, 403, is
        retried by the stream itself, saying so each time.)"""
        try:
            follow()
        except ServerError as error:
            if error.status != 404:
                raise
            self._once(f"access requests cannot be followed ({error.message}); is the "
                       "AccessRequest CRD installed?")
            self.sleep(pause)

    def _once(self, text: str) -> None:
        if text != self._said:
            self.warn(text)
        self._said = text

    # ---- one request ------------------------------------------------------------------------

    def handle(self, seen: dict) -> None:
        name = seen["metadata"]["name"]
        for _ in range(MAX_CONFLICTS):
            self.beat()
            obj = self._read(name)
            if obj is None or not waiting(obj):
                return
            judge = self.judges.get()
            if judge is None:
                return
            try:
                verdict, attestation, facts = judge(obj)
            except Exception as exc:  # never sign what we could not judge
                self.warn(f"access request {name}: cannot judge it ({type(exc).__name__}); "
                          "left pending")
                return
            if not self.leading():
                return
            outcome = self._outcome(verdict, facts)
            if outcome is None:
                return
            what, decision, grant, seconds = outcome
            if what == MANUAL:
                if post_event(self.client, _involved(obj), f"ar-{obj['metadata']['uid']}.manual",
                              decision, MANUAL, self.wall(), self.warn):
                    self._report(obj, what, decision, attestation, None, None)
                return
            issued = None
            if what in (APPROVE, SIGN):
                # Asked afresh for each signing, after the request was made: a view older
                # than the request may predate the policies' removal.
                problem = self.guard.problem()
                if problem:
                    self._once(f"access requests are not signed: {problem}")
                    return
                unchecked = _made_before(obj, self.guard.since)
                if unchecked is not None:
                    what, decision, grant = DENY, Decision(DENY, decision.rule, unchecked,
                                                           {"check": "admission"}), None
            if what in (APPROVE, SIGN):
                assert facts is not None and grant is not None
                try:
                    issued = sign(self.ca, facts.public_key, facts.name, facts.username, grant,
                                  self.wall(), seconds)
                except CredHelperError as exc:  # the CA token refused: try again later
                    self.warn(f"access request {name}: cannot sign it: {exc.message}")
                    return
            written = write_at_version(partial(self._write, obj, what, decision, grant, issued),
                                       self.warn, f"access request {name}: {what}")
            if written == AGAIN:
                continue  # changed under us: read again, judge again
            if written == GONE:
                return
            post_event(self.client, _involved(obj), f"ar-{obj['metadata']['uid']}.{what}",
                       decision, what, self.wall(), self.warn)
            self._report(obj, what, decision, attestation, grant, issued)
            return
        self.warn(f"access request {name}: changed {MAX_CONFLICTS} times while being decided; "
                  "left for the next pass")

    def _outcome(self, verdict: AccessVerdict, facts: AccessFacts | None
                 ) -> tuple[str, Decision, ar.Grant | None, int] | None:
        """(what to do, the decision to write, grant, lifetime), or None for nothing."""
        decision = verdict.decision
        if facts is None:
            return DENY, decision, None, 0  # unreadable: denied with the reason
        if facts.state in (SIGNED, DENIED):
            return None
        if facts.model.deleting:
            # Deleting ends a request; one held by a finalizer (its creator may set one) is
            # ended all the same, and says so to every reader.
            return DENY, Decision(DENY, decision.rule, "the request is being deleted: nothing "
                                  "is signed for it", {"check": "deleted"}), None, 0
        if facts.state == PENDING:
            if decision.action == DENY:
                return DENY, decision, None, 0
            if decision.action == MANUAL:
                return MANUAL, decision, None, 0
            return APPROVE, decision, verdict.grant, verdict.seconds
        assert facts.state == TO_SIGN
        by = facts.model.decision.by
        if not by or by == facts.username:
            # Admission refuses this; a broker never signs on the requester's own word.
            return DENY, Decision(DENY, decision.rule, f"approved by {by or 'nobody named'}, "
                                  "who is the requester: nobody approves their own request",
                                  {"check": "self-approval"}), None, 0
        if decision.action == DENY:
            return DENY, Decision(DENY, decision.rule, f"approved by {by}, but "
                                  f"{decision.reason}", decision.details), None, 0
        return SIGN, Decision(decision.action, decision.rule, f"approved by {by}; "
                              f"{decision.reason}", decision.details), verdict.grant, \
            verdict.seconds

    def _read(self, name: str) -> dict | None:
        try:
            obj = self.client.get(f"{ar.PATH}/{quote(name, safe='')}")
        except ServerError as error:
            if error.status == 404:
                return None
            raise
        if not _readable(obj):
            self.warn(f"access request {name}: the API server sent a malformed object; skipped")
            return None
        return obj

    def _write(self, obj: dict, what: str, decision: Decision, grant: ar.Grant | None,
               issued: Issued | None) -> None:
        """The outcome through the status subresource, at the version judged."""
        body = json.loads(json.dumps(obj))  # a copy: the judged object, plus the outcome
        status = dict(body.get("status") or {})
        conditions = list(status.get("conditions") or [])
        if what in (APPROVE, DENY):
            conditions.append({
                "type": "Approved" if what == APPROVE else "Denied", "status": "True",
                "reason": condition_reason(decision), "message": _clip(decision.reason),
                "decidedBy": self.decider, "lastTransitionTime": utc_now(self.wall())})
            status["conditions"] = conditions
        if issued is not None and grant is not None:
            status["certificate"] = issued.line
            status["grant"] = grant.to_json()
            status["expiresAt"] = ar.format_time(issued.valid_before)
        body["status"] = status
        self.client.put(f"{ar.PATH}/{quote(obj['metadata']['name'], safe='')}/status", body)

    def _report(self, obj: dict, what: str, decision: Decision, attestation: Attestation,
                grant: ar.Grant | None, issued: Issued | None) -> None:
        self.decided += 1
        self.out(json.dumps(decision_line(obj, what, decision, attestation, grant, issued,
                                          self.decider, self.wall()), sort_keys=True))


def _made_before(obj: dict, since: float) -> str | None:
    """Why a request made no later than ADMISSION_GRACE seconds after `since` (when the
    admission policies were last made or changed) is not signed, or None."""
    try:
        made = ar.parse_time(obj["metadata"].get("creationTimestamp"), "creationTimestamp")
    except ar.AccessRequestError:
        made = 0.0
    if made > since + ADMISSION_GRACE:
        return None
    if made > since:
        return (f"made at {ar.format_time(made)}, within {ADMISSION_GRACE} s after the "
                f"admission policies were last installed or changed "
                f"({ar.format_time(since)}), before kube-apiserver surely enforced them: its "
                "spec may never have been checked against its creator; make a new request")
    return (f"made at {ar.format_time(made)}, not after the admission policies were last "
            f"installed or changed ({ar.format_time(since)}): its spec was never checked "
            "against its creator; make a new request")


def _involved(obj: dict) -> dict:
    meta = obj["metadata"]
    return {"apiVersion": ar.API_VERSION, "kind": ar.KIND, "name": meta["name"],
            "uid": meta["uid"], "resourceVersion": meta["resourceVersion"]}


def decision_line(obj: dict, what: str, decision: Decision, attestation: Attestation,
                  grant: ar.Grant | None, issued: Issued | None, decider: str,
                  now: float) -> dict:
    """The JSON line for one outcome; the requester's fields only as the model reads them."""
    try:
        spec = ar.parse_spec(obj.get("spec"))
        requester = {"username": spec.username, "groups": list(spec.groups)}
        scope = {"namespace": spec.namespace, "pods": list(spec.pods),
                 "expirationSeconds": spec.expiration_seconds}
    except ar.AccessRequestError:
        requester, scope = None, None
    decided_by = decider
    if what == SIGN:
        try:
            decided_by = ar.decision_of(obj.get("status") or {}).by
        except ar.AccessRequestError:
            decided_by = ""
    return {
        "time": utc_now(now), "accessRequest": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"], "requester": requester, "scope": scope,
        "rule": decision.rule, "decision": what, "reason": decision.reason,
        "decidedBy": decided_by if what != MANUAL else "",
        "signedBy": decider if issued is not None else "",
        "attestation": {"mode": attestation.mode, "ok": attestation.ok,
                        "reason": attestation.reason, "user": attestation.user,
                        "serial": attestation.serial},
        "grant": grant.to_json() if grant is not None and issued is not None else None,
        "certificate": issued.to_json() if issued is not None else None,
    }


def access_judge(policy: Any, wall: Callable[[], float]) -> AccessJudge | None:
    """judge(obj) for a loaded Policy's access section (None without one): read the request's
    facts (unreadable: denied, it could never be signed), verify its proof where the rule
    looks at it, and let the access policy decide."""
    access = getattr(policy, "access", None)
    if access is None:
        return None
    from .accessfacts import access_facts
    from .attestation import verify
    from .facts import FactsError

    def judge(obj: dict) -> tuple[AccessVerdict, Attestation, AccessFacts | None]:
        try:
            facts = access_facts(obj)
        except FactsError as exc:
            return AccessVerdict(Decision(DENY, "", f"the request cannot be read: {exc}",
                                          {"check": "malformed"})), NO_PROOF, None
        attestation = NO_PROOF
        if access.needs_attestation(facts):
            attestation = verify(facts, policy.attestation, wall())
        return access.decide(facts, attestation), attestation, facts

    return judge
