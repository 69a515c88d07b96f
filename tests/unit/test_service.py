import pytest

from cred_helper.cache.entry import Entry
from cred_helper.errors import ServerError
from cred_helper.issuers.issued import Issued
from cred_helper.service import ISSUE, REISSUE_REJECTED, SERVE, Request, decide, obtain


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


class _MemoryStore:
    name = "memory"

    def __init__(self):
        self.items = {}

    def load(self, key):
        return self.items.get(key)

    def save(self, entry):
        self.items[entry.key] = entry

    def delete(self, key):
        self.items.pop(key, None)

    def entries(self):
        return list(self.items.values())


def _request(tmp_path, **kw):
    import os

    os.chmod(tmp_path, 0o700)
    fields = {"parent": "1\t2\t/bin/kubectl", **kw}
    return Request(key="k", profile="p", issuer="csr", ttl=1800, cache_dir=str(tmp_path),
                   lock_timeout=5, **fields)


def _issued(not_after):
    return Issued(status={"token": "new"}, not_after=not_after, identity={}, source="csr-x",
                  server="https://k")


def test_obtain_issues_once_then_serves(tmp_path):
    store, calls = _MemoryStore(), []

    def issue():
        calls.append(1)
        return _issued(2000.0)

    first = obtain(_request(tmp_path), store, issue, lambda: 100.0, print)
    again = obtain(_request(tmp_path, parent="9\t9\t/bin/kubectl"), store, issue,
                   lambda: 200.0, print)
    assert first == again and len(calls) == 1


def test_stale_credential_is_kept_when_renewal_fails(tmp_path):
    store, warnings = _MemoryStore(), []
    store.save(_entry(issued_at=0.0, not_after=1800.0))

    def failing():
        raise ServerError("cannot reach the API server at https://k")

    got = obtain(_request(tmp_path), store, failing, lambda: 1600.0, warnings.append)
    assert got.serial == "s" and "could not renew" in warnings[0]
    with pytest.raises(ServerError):  # expired: nothing to fall back on
        obtain(_request(tmp_path), store, failing, lambda: 1750.0, warnings.append)


def test_rejected_credential_is_replaced(tmp_path):
    store = _MemoryStore()
    req = _request(tmp_path)
    first = obtain(req, store, lambda: _issued(2000.0), lambda: 100.0, print)
    # The same parent asks again two minutes later: the server rejected the credential.
    second = obtain(req, store, lambda: _issued(2100.0), lambda: 220.0, print)
    assert second.serial != first.serial and second.not_after == 2100.0
