from cred_helper.cache.entry import Entry
from cred_helper.service import ISSUE, REISSUE_REJECTED, SERVE, decide


def _entry(issued_at=0.0, not_after=1800.0):
    return Entry(key="k", profile="p", issuer="csr", issued_at=issued_at, not_after=not_after,
                 ttl=1800, serial="s", status={})


def test_decisions():
    assert decide(None, 0, False) == ISSUE
    assert decide(_entry(), 100, False) == SERVE
    assert decide(_entry(), 1600, False) == ISSUE  # stale: renew
    assert decide(_entry(), 1750, False) == ISSUE  # expired
    # The same kubectl process asks again: its credential was rejected (401).
    assert decide(_entry(), 100, True) == REISSUE_REJECTED
    # ...but not more than once a minute per entry.
    assert decide(_entry(), 30, True) == SERVE
    assert decide(_entry(), 1600, True) == REISSUE_REJECTED
