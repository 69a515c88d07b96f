"""The checks a CSR rule (policy.py) and an access rule (accesspolicy.py) make the same way:
whether a proof needs verifying, the attestation the rule asks for, and a reason that shows a
person something. Pure."""

from __future__ import annotations

import unicodedata
from typing import Protocol

from .verdict import DENY, Attestation


class AttestingRule(Protocol):
    action: str  # APPROVE, MANUAL or DENY
    attestation: str  # "required", "registry-key" or "none"
    pin_policies: frozenset[str]  # empty: any (or none stated)
    touch_policies: frozenset[str]


def needs_proof(rule: AttestingRule | None, carries_proof: bool) -> bool:
    """Whether a request's proof must be verified before its `rule` (None: no rule takes it)
    decides: it carries one (a failing proof is a deny under any rule), or the rule looks at
    attestation. Nothing needs verifying for a rule that denies outright."""
    if rule is not None and rule.action == DENY:
        return False
    return carries_proof or (rule is not None and rule.attestation != "none")


def attestation_failure(rule: AttestingRule, username: str,
                        att: Attestation) -> tuple[str, str] | None:
    """("attestation", why) where the verified proof `att` is not what the rule asks for, or
    names a key of someone other than the requester `username`; else None."""
    if rule.attestation == "none":
        return None
    modes = ("attested",) if rule.attestation == "required" else ("attested", "registry-key")
    if att.mode not in modes or not att.ok:
        wanted = "a hardware attestation" if rule.attestation == "required" else \
            "a hardware attestation or a registered key"
        return "attestation", f"the rule wants {wanted}; got {att.mode}: {att.reason}"
    if att.user != username:
        owner = repr(att.user) if att.user else "nobody in the registry"
        return "attestation", f"the key belongs to {owner}, not the requester {username!r}"
    if rule.pin_policies and att.pin_policy not in rule.pin_policies:
        stated = att.pin_policy or "not stated"
        return "attestation", (f"PIN policy {stated} is not allowed "
                               f"({', '.join(sorted(rule.pin_policies))})")
    if rule.touch_policies and att.touch_policy not in rule.touch_policies:
        stated = att.touch_policy or "not stated"
        return "attestation", (f"touch policy {stated} is not allowed "
                               f"({', '.join(sorted(rule.touch_policies))})")
    return None


def attested_text(attestation: Attestation) -> str:
    """What an approval's reason says of the proof."""
    if attestation.mode == "none":
        return "no attestation"
    return f"{attestation.mode}: {attestation.reason}"


# Characters Unicode counts as letters or symbols that still print as nothing (the Hangul
# fillers, the blank Braille pattern).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Controls, format characters (zero-width space and joiners, bidi marks), surrogates, private
# use, unassigned, spaces and separators, and combining marks with no base to sit on.
_INVISIBLE_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"))


def shows_something(text: str) -> bool:
    """Whether a person reading `text` sees at least one character: a reason made only of
    whitespace, zero-width or format characters is no reason."""
    return any(unicodedata.category(ch) not in _INVISIBLE_CATEGORIES
               and ch not in _BLANK_LETTERS for ch in text)
