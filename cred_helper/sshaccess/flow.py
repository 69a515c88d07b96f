"""Making or reusing the access request a command needs, and waiting for its certificate.

The way a credential is issued (service.py), for an SSH certificate: a valid one in the cache is
used as it is; else, under the entry's lock (many runs at once make one request) and after
reading the cache again, the request still pending from an earlier run is taken up, or a new one
is made: a fresh key, the identity SelfSubjectReview shows copied into `spec` exactly (admission
compares it with the creator), the request kept on record before it is sent. Then the wait, as
for a CSR (issuers/approval.py's Follow: one watch, resumed across API server restarts, until
the approval timeout); the certificate is checked (certcheck.py) before it is kept.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import accessrequest as ar
from ..durations import format_duration
from ..errors import ApprovalTimeout, BadShape, CredHelperError, CSRDenied, ServerError
from .settings import SshSettings
from .store import ISSUED, LIFETIME, PENDING, SshEntry, SshStore

if TYPE_CHECKING:  # a certificate in the cache needs none of these (cred-helper ssh's start)
    from ..kube import KubeClient
    from .cluster import Identity
    from .sshkey import SshKey

MARGIN = 60  # a certificate with less left than this is not handed to ssh: a new request
QUIET_PERIOD = 1.0  # an approver that answers at once needs no announcement


def entry_key(credential_key: str, ssh: SshSettings) -> str:
    """A digest of everything that shapes the request (the cluster credential's own key among
    them), and of nothing that does not (the reason, the gateway)."""
    shaping = {"kind": "access-request", "credential": credential_key,
               "namespace": ssh.namespace, "pods": sorted(ssh.pods), "seconds": ssh.seconds,
               "sshKey": ssh.ssh_key, "userCa": ssh.user_ca}
    blob = json.dumps(shaping, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def request_name(username: str, now: float, suffix: str) -> str:
    """Readable, unique, and a plain login name: whose, when, and a random suffix."""
    who = re.sub(r"[^a-z0-9]+", "-", username.lower()).strip("-")[:40].strip("-") or "user"
    return f"{who}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}-{suffix}"


def usable(entry: SshEntry | None, now: float) -> bool:
    return entry is not None and entry.state == ISSUED and entry.not_after - now > MARGIN


def finished(obj: dict[str, Any]) -> bool:
    """Nothing more will happen to the request: it is signed or denied."""
    try:
        status = obj.get("status") or {}
        return bool(status.get("certificate")) or ar.decision_of(status).state == ar.DENIED
    except (ar.AccessRequestError, AttributeError):
        return False


class Requester:
    """One profile's access request for one scope. `connect()` talks to the API server as the
    person (their cluster credential, obtained then); `make_key()` gives the request's key;
    `prove(public_key, subject)` (or None) the hardware proof over it."""

    def __init__(self, ssh: SshSettings, key: str, profile: str, store: SshStore, *,
                 connect: Callable[[], KubeClient], lock: Callable[[], Any],
                 make_key: Callable[[], SshKey], prove: Callable[[Any, Any], bytes] | None,
                 approval_timeout: float, say: Callable[[str], None],
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep,
                 remind: Callable[[float, Callable[[], None]], Callable[[], None]] | None = None
                 ) -> None:
        self.ssh = ssh
        self.key = key
        self.profile = profile
        self.store = store
        self.connect = connect
        self.lock = lock
        self.make_key = make_key
        self.prove = prove
        self.approval_timeout = approval_timeout
        self.say = say
        self.clock = clock
        self.sleep = sleep
        self.remind = remind

    def session(self) -> SshEntry:
        """An entry with a checked certificate valid for more than MARGIN."""
        entry = self.store.load(self.key)
        if usable(entry, self.clock()):
            return entry  # type: ignore[return-value]
        with self.lock():
            entry = self.store.load(self.key)  # another run may have got it meanwhile
            if usable(entry, self.clock()):
                return entry  # type: ignore[return-value]
            from .cluster import whoami

            client = self.connect()
            me = whoami(client)
            taken = self._take_up(client, entry, me)
            if taken is None:
                entry, obj = self._create(client, me)
                asked = entry.created
            else:
                entry, obj = taken
                asked = self.clock()  # a request taken up gets the whole wait again
                self.say(f"taking up access request {entry.name}, still waiting from an "
                         "earlier run")
            return self._collect(client, entry, obj, asked)

    # ---- making the request ------------------------------------------------------------------

    def _take_up(self, client: KubeClient, entry: SshEntry | None,
                 me: Identity) -> tuple[SshEntry, dict] | None:
        if entry is None or entry.state != PENDING:
            return None
        if entry.username != me.username or self.clock() >= entry.not_after:
            self.store.delete(self.key)
            return None
        try:
            obj = _shaped(client.get(f"{ar.PATH}/{entry.name}"))
        except ServerError as error:
            if error.status == 404:
                self.store.delete(self.key)  # gone: make a new one
                return None
            raise
        spec = obj.get("spec")
        if not isinstance(spec, dict) or spec.get("publicKey") != entry.public_line:
            self.store.delete(self.key)  # not the request we made
            return None
        return entry, obj

    def _create(self, client: KubeClient, me: Identity) -> tuple[SshEntry, dict]:
        fits(me, self.ssh)  # before a key is made: a token may ask for its PIN
        key = self.make_key()
        now = self.clock()
        name = request_name(me.username, now, secrets.token_hex(3))
        attestation = ""
        if self.prove is not None:
            from cryptography.hazmat.primitives.serialization import load_ssh_public_key

            proof = self.prove(load_ssh_public_key(key.public_line.encode()),
                               ar.proof_subject(name))
            attestation = base64.b64encode(proof).decode("ascii")
        spec = ar.Spec(username=me.username, groups=me.groups, uid=me.uid, extra=me.extra,
                       public_key=key.public_line, namespace=self.ssh.namespace,
                       pods=self.ssh.pods, reason=self.ssh.reason,
                       expiration_seconds=self.ssh.seconds, attestation=attestation)
        entry = SshEntry(key=self.key, profile=self.profile, alias=self.ssh.alias,
                         server=client.endpoint.server, name=name, state=PENDING, created=now,
                         seconds=self.ssh.seconds, namespace=self.ssh.namespace,
                         pods=self.ssh.pods, reason=self.ssh.reason, username=me.username,
                         groups=me.groups, ssh_key=self.ssh.ssh_key,
                         public_line=key.public_line,
                         private_openssh=key.private_openssh.decode("ascii"),
                         not_after=now + LIFETIME)
        # On record before it is sent: a run killed meanwhile leaves a request the next run
        # takes up, never one it cannot.
        self.store.save(entry)
        try:
            obj = _shaped(client.post(ar.PATH, ar.new_object(name, spec)))
        except ServerError as error:
            if error.status is not None and not error.transient:
                self.store.delete(self.key)  # refused: there is no such request
                if error.status in (403, 422):
                    said = error.status_message or error.message
                    raise ServerError(f"the API server refused access request {name}: {said}",
                                      "see the message: admission refused it"
                                      if "AdmissionPolicy" in said else
                                      "your user needs the cred-helper-access-requester role "
                                      "(docs/access-requests.md)") from None
            raise
        return entry, obj

    # ---- waiting -----------------------------------------------------------------------------

    def _collect(self, client: KubeClient, entry: SshEntry, obj: dict,
                 asked: float) -> SshEntry:
        from ..issuers.approval import Follow

        limit = self.approval_timeout
        deadline = asked + limit
        name = entry.name

        def ask() -> None:
            left = max(0, round(deadline - self.clock()))
            self.say(f"waiting up to {format_duration(left)} for approval of access request "
                     f"{name}; an approver can run: cred-helper approve {name}")

        from ..issuers.csr import later

        remind = self.remind or later
        cancel = None if finished(obj) else \
            remind(max(0.0, asked + QUIET_PERIOD - self.clock()), ask)
        follow = Follow(client, name, _shaped, self.clock, self.sleep, path=ar.PATH,
                        done=finished, what="access request")
        try:
            obj = follow.until(obj, deadline)
        except CSRDenied:  # deleted while we waited
            self.store.delete(self.key)
            raise
        finally:
            if cancel is not None:
                cancel()
        try:
            model = ar.parse(obj)
        except ar.AccessRequestError as error:
            raise BadShape(f"the API server sent access request {name} malformed ({error})") \
                from None
        if model.decision.state == ar.DENIED:
            self.store.delete(self.key)
            by = model.decision.by or "an approver"
            why = model.decision.message or model.decision.reason or "no reason given"
            raise CSRDenied(f"access request {name} was denied by {by}: {why}",
                            "ask them why, then run the command again for a new request")
        if model.certificate:
            return self._keep(entry, model)
        if follow.unreachable is not None:
            raise ServerError(f"{follow.unreachable.message}, until the approval wait for "
                              f"{name} ended", "the next run collects this same request, "
                              "once the API server answers again")
        if model.decision.state == ar.APPROVED:
            raise ApprovalTimeout(
                f"access request {name} was approved by {model.decision.by or 'someone'}, but "
                f"not signed within {format_duration(limit)}",
                "the broker (cred-helper approver run --ssh-ca) is not signing: ask an admin to "
                "look; the next run collects this same request once it is signed")
        raise ApprovalTimeout(
            f"access request {name} was not approved within {format_duration(limit)}",
            f"ask an approver to run `cred-helper approve {name}`; the next run collects this "
            "same request once it is approved (or raise --approval-timeout)")

    def _keep(self, entry: SshEntry, model: ar.AccessRequest) -> SshEntry:
        from . import certcheck

        now = self.clock()
        try:
            checked = certcheck.check(model.certificate, name=entry.name,
                                      username=entry.username, public_line=entry.public_line,
                                      user_ca=self.ssh.user_ca, seconds=entry.seconds, now=now)
        except CredHelperError:
            self.store.delete(self.key)  # used up: its certificate will not change
            raise
        issued = replace(entry, state=ISSUED, certificate=checked.line, issued_at=now,
                         not_after=min(float(checked.valid_before), now + entry.seconds),
                         grant=model.grant.to_json() if model.grant else {})
        self.store.save(issued)
        by = model.decision.by or "the broker"
        self.say(f"access request {entry.name} approved by {by}; its certificate is valid "
                 f"for {format_duration(int(issued.not_after - now))}")
        return issued


def fits(me: Identity, ssh: SshSettings) -> None:
    """Raise unless `me` fits an access request's spec (the schema's bounds, which the model
    holds), checked with a stand-in key before the request's own is made."""
    from ..errors import server_text

    spec = ar.Spec(username=me.username, groups=me.groups, uid=me.uid, extra=me.extra,
                   public_key="ssh-ed25519 AAAA", namespace=ssh.namespace, pods=ssh.pods,
                   reason=ssh.reason, expiration_seconds=ssh.seconds, attestation="")
    try:
        ar.parse_spec(ar.spec_json(spec))
    except ar.AccessRequestError as error:
        raise CredHelperError(
            f"an access request cannot hold the identity of {server_text(me.username)} "
            f"({error})", f"an access request holds at most {ar.MAX_ITEMS} groups of at most "
            f"{ar.MAX_TEXT} characters (and as many extra values): ask an admin to give you "
            "a login with fewer") from None


def _shaped(obj: Any) -> dict[str, Any]:
    """An object read back from the API server: enough shape to follow it."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) \
            or not isinstance(obj.get("status", {}), dict):
        raise BadShape("the API server sent an access request of the wrong shape")
    return obj
