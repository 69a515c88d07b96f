from cred_helper.freshness import EXPIRED, FRESH, STALE, classify, expiration_timestamp


def test_windows_for_a_30_minute_credential():
    ttl, end = 1800, 10_000
    assert classify(end - 1800, end, ttl) == FRESH
    assert classify(end - 301, end, ttl) == FRESH
    assert classify(end - 300, end, ttl) == STALE
    assert classify(end - 61, end, ttl) == STALE
    assert classify(end - 60, end, ttl) == EXPIRED
    assert classify(end + 5, end, ttl) == EXPIRED


def test_margin_is_at_most_half_the_ttl():
    ttl, end = 400, 10_000
    assert classify(end - 201, end, ttl) == FRESH
    assert classify(end - 200, end, ttl) == STALE


def test_expiration_timestamp_is_a_minute_early_and_never_past():
    assert expiration_timestamp(now=1000, not_after=2000) == 1940
    assert expiration_timestamp(now=1990, not_after=2000) == 1990
