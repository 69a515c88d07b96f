"""`cred-helper approve|deny NAME`: a person decides somebody else's access request.

What was asked, by whom and why is shown first (on stderr, the requester's free text made one
printable line). The decision is one condition added through the `status` subresource at the
version shown, `decidedBy` the person's own name (SelfSubjectReview): admission refuses a wrong
name, and a person deciding their own request, with a message that is shown as the API server
wrote it. A request that changed meanwhile is read and shown again, not decided blind.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from .. import accessrequest as ar
from ..durations import format_duration
from ..errors import CredHelperError, ServerError, UsageError, server_text
from ..kube import KubeClient
from .cluster import whoami

APPROVE, DENY = "approve", "deny"
MAX_CONFLICTS = 3


def fingerprint(public_line: str) -> str:
    try:  # the schema's pattern admits base64 that does not decode (no padding)
        blob = base64.b64decode(public_line.split()[1], validate=True)
    except (binascii.Error, IndexError):
        return "(not a readable key)"
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def describe(model: ar.AccessRequest, created: str, now: float) -> list[str]:
    """What a decider reads before deciding: one printable line per fact."""
    spec = model.spec
    pods = ", ".join(server_text(p, 253) for p in spec.pods) or "any pod"
    groups = ", ".join(server_text(g, 100) for g in spec.groups) or "no groups"
    lines = [f"access request {model.name}, made {created or 'at an unknown time'}:",
             f"  by       {server_text(spec.username, 200)} ({groups})",
             f"  asks for namespace {spec.namespace}, {pods}, for "
             f"{format_duration(spec.expiration_seconds)}",
             f"  because  {server_text(spec.reason) or '(no reason given)'}",
             f"  key      {spec.public_key.split()[0]} {fingerprint(spec.public_key)}"
             + (" (with a hardware proof)" if spec.attestation else "")]
    decision = model.decision
    if decision.state != ar.PENDING:
        lines.append(f"  already  {decision.state} by {server_text(decision.by, 200) or '?'}")
    return lines


def decide(client: KubeClient, name: str, action: str, reason: str,
           say: Callable[[str], None], clock: Callable[[], float]) -> str:
    """Approve or deny `name`; returns the line saying what was done."""
    if not ar.is_name(name):
        raise UsageError(f"{name!r} is not an access request name")
    me = whoami(client).username
    for _ in range(MAX_CONFLICTS):
        obj = _read(client, name)
        try:
            model = ar.parse(obj)
        except ar.AccessRequestError as error:
            raise CredHelperError(f"access request {name} cannot be read ({error})",
                                  "deny it, or ask its requester to make a new one") from None
        meta = obj.get("metadata") or {}
        for line in describe(model, str(meta.get("creationTimestamp") or ""), clock()):
            say(line)
        state = model.decision.state
        if state == ar.DENIED:
            raise CredHelperError(f"access request {name} is already denied by "
                                  f"{server_text(model.decision.by, 200) or 'someone'}",
                                  "a denial stands: the requester makes a new request")
        if state == ar.APPROVED and action == APPROVE:
            return f"access request {name} is already approved by {model.decision.by}"
        body = _with_condition(obj, action, reason, me, clock())
        try:
            client.put(f"{ar.PATH}/{quote(name, safe='')}/status", body)
        except ServerError as error:
            if error.status == 409:
                say(f"access request {name} changed meanwhile; reading it again")
                continue
            if error.status in (403, 422):
                raise CredHelperError(f"the API server refused to {action} access request "
                                      f"{name}: {error.status_message or error.message}",
                                      _refusal_hint(error.status_message)) from None
            raise
        done = "approved" if action == APPROVE else \
            ("revoked (denied after approval)" if state == ar.APPROVED else "denied")
        return f"access request {name} {done} by {me}"
    raise CredHelperError(f"access request {name} kept changing while being decided",
                          "run the command again")


def _refusal_hint(message: str) -> str:
    if "their own" in message:
        return "another person must decide it"
    if "cannot update" in message or "forbidden" in message.lower():
        return "deciding needs the cred-helper-access-decider role (docs/access-requests.md)"
    return "see the message; nothing was changed"


def _read(client: KubeClient, name: str) -> dict[str, Any]:
    try:
        obj = client.get(f"{ar.PATH}/{quote(name, safe='')}")
    except ServerError as error:
        if error.status == 404:
            raise CredHelperError(f"there is no access request {name}",
                                  "kubectl get accessrequests lists them") from None
        raise
    return obj


def _with_condition(obj: dict[str, Any], action: str, reason: str, me: str,
                    now: float) -> dict[str, Any]:
    status = dict(obj.get("status") or {})
    conditions = list(status.get("conditions") or [])
    stamp = datetime.datetime.fromtimestamp(int(now), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    conditions.append({"type": "Approved" if action == APPROVE else "Denied", "status": "True",
                       "reason": "ApprovedByPerson" if action == APPROVE else "DeniedByPerson",
                       "message": reason or f"{action}d by {me}", "decidedBy": me,
                       "lastTransitionTime": stamp})
    return {**obj, "status": {**status, "conditions": conditions}}
