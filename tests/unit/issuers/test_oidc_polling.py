"""The device grant's polling loop (RFC 8628 §3.5), against scripted token answers: the pinned
oidc-provider never sends slow_down, so the loop's reaction to it is shown here."""

import pytest

from cred_helper.issuers.oidc import (
    DeviceAuthorization,
    NoClientAuth,
    OIDCError,
    OIDCProvider,
    ProviderMetadata,
)


class _Answer:
    def __init__(self, status: int, doc: dict) -> None:
        self.status_code, self._doc = status, doc

    def json(self) -> dict:
        return self._doc


class _Session:
    """Answers token requests from a script, in order."""

    def __init__(self, script: list[_Answer]) -> None:
        self.script = script

    def request(self, method, url, **kw) -> _Answer:
        return self.script.pop(0)


def _provider(script, clock):
    provider = OIDCProvider("https://idp.example.com", "c", NoClientAuth(), _Session(script),
                            clock=clock)
    provider._metadata = ProviderMetadata("https://idp.example.com", "https://idp/token",
                                          "https://idp/jwks")
    return provider


DEVICE = DeviceAuthorization("dc", "ABCD", "https://idp/device", "", expires_in=600, interval=5)
PENDING = _Answer(400, {"error": "authorization_pending"})
SLOW = _Answer(400, {"error": "slow_down"})


def test_slow_down_adds_five_seconds_for_good():
    now = [0.0]
    slept: list[float] = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    tokens = _provider([PENDING, SLOW, PENDING, _Answer(200, {"access_token": "a"})],
                       lambda: now[0]).poll_device(DEVICE, sleep)
    assert tokens.access_token == "a"
    assert slept == [5, 5, 10, 10]


@pytest.mark.parametrize(("error", "message"), [
    ("access_denied", "denied"), ("expired_token", "expired before it was approved"),
    ("invalid_grant", "invalid_grant")])
def test_terminal_errors_end_polling(error, message):
    script = [PENDING, _Answer(400, {"error": error})]
    with pytest.raises(OIDCError, match=message):
        _provider(script, lambda: 0.0).poll_device(DEVICE, lambda s: None)
    assert script == []


def test_gives_up_when_the_code_expires_even_if_the_provider_keeps_saying_pending():
    now = [0.0]

    def sleep(s):
        now[0] += s

    with pytest.raises(OIDCError, match="expired before it was approved"):
        _provider([PENDING] * 200, lambda: now[0]).poll_device(DEVICE, sleep)
    assert now[0] == 600
