"""The credential policy, judged from the real lifetime (issued_at .. not_after)."""

import pytest

from cred_helper.policy import (
    EXPIRED,
    FRESH,
    ISSUE,
    REFRESH,
    REISSUE_REJECTED,
    RENEW,
    SERVE,
    classify,
    decide,
    expiration_timestamp,
    refresh_margin,
    shave,
)

START = 1_000_000.0

# lifetime, refresh margin, shave: the margin is 5 minutes, at most half the lifetime; the
# shave a minute, at most a tenth of it.
LIFETIMES = [
    pytest.param(60, 30, 6, id="60-s ID token"),
    pytest.param(120, 60, 12, id="2-min ID token"),
    pytest.param(300, 150, 30, id="5-min IdP token"),
    pytest.param(1800, 300, 60, id="30-min certificate"),
    pytest.param(86400, 300, 60, id="24-h certificate"),
]


@pytest.mark.parametrize(("lifetime", "margin", "cut"), LIFETIMES)
def test_windows(lifetime, margin, cut):
    end = START + lifetime
    assert refresh_margin(START, end) == margin
    assert shave(START, end) == cut
    assert classify(START, START, end) == FRESH, "a new credential is served as it is"
    assert classify(end - margin - 1, START, end) == FRESH
    assert classify(end - margin, START, end) == REFRESH
    assert classify(end - cut - 0.5, START, end) == REFRESH
    assert classify(end - cut, START, end) == EXPIRED
    assert classify(end + 1, START, end) == EXPIRED


@pytest.mark.parametrize(("lifetime", "margin", "cut"), LIFETIMES)
def test_expiration_timestamp_is_shaved_never_past(lifetime, margin, cut):
    end = START + lifetime
    assert expiration_timestamp(START, START, end) == end - cut
    assert expiration_timestamp(START, START, end) > START, "announced as still valid"
    assert expiration_timestamp(end + 5, START, end) == end + 5


def test_a_5_minute_token_is_reused_for_two_and_a_half_minutes():
    """Judged from the real lifetime, not the 30-minute TTL: with the TTL, a 5-minute token
    would be inside a 5-minute margin from birth and re-issued on every kubectl."""
    end = START + 300
    served = [t for t in range(0, 300, 10) if classify(START + t, START, end) == FRESH]
    assert served == list(range(0, 150, 10))


def test_a_credential_issued_already_expired_is_expired():
    assert classify(START, START, START) == EXPIRED
    assert classify(START, START, START - 10) == EXPIRED


def test_decisions():
    end = START + 1800
    assert decide("get", START, None, None) == ISSUE
    assert decide("get", START + 100, START, end) == SERVE
    assert decide("get", START + 1600, START, end) == RENEW
    assert decide("get", START + 1750, START, end) == ISSUE
    assert decide("login", START + 1600, START, end) == RENEW
    assert decide("login", START + 1750, START, end) == ISSUE


def test_the_401_rule_is_for_get_only_and_once_a_minute():
    end = START + 1800
    # The same kubectl process asks again: its credential was rejected (401).
    assert decide("get", START + 100, START, end, served_to_parent=True) == REISSUE_REJECTED
    # ...but not within a minute of issuance.
    assert decide("get", START + 30, START, end, served_to_parent=True) == SERVE
    assert decide("get", START + 59, START, end, served_to_parent=True) == SERVE
    assert decide("get", START + 60, START, end, served_to_parent=True) == REISSUE_REJECTED
    assert decide("get", START + 1600, START, end, served_to_parent=True) == REISSUE_REJECTED
    # `login` twice from one shell is a person asking twice, not a rejection.
    assert decide("login", START + 100, START, end, served_to_parent=True) == SERVE
    assert decide("status", START + 100, START, end, served_to_parent=True) == SERVE
