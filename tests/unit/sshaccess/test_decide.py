"""What a decider reads before deciding (`cred-helper approve|deny`): one printable line per
fact, whatever the requester wrote."""

from __future__ import annotations

from cred_helper import accessrequest as ar
from cred_helper.sshaccess.decide import describe
from tests.unit.broker.accessbuild import access_object


def test_a_key_that_is_not_base64_is_described_not_a_crash():
    """The schema's pattern admits a key line whose base64 lacks its padding; the broker denies
    it as unreadable, and a person must still be able to read and deny it."""
    model = ar.parse(access_object(public_key="ssh-ed25519 AAAAA"))
    lines = describe(model, "2026-12-07T10:00:00Z", 0.0)
    assert "  key      ssh-ed25519 (not a readable key)" in lines
