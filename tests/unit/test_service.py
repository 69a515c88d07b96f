import os

import pytest

from cred_helper.cache.entry import Entry
from cred_helper.cache.filestore import FileStore
from cred_helper.errors import CacheError, CredHelperError, ServerError
from cred_helper.issuers.issued import Issued
from cred_helper.service import Request, obtain


def _entry(issued_at=0.0, not_after=1800.0):
    return Entry(key="k", profile="p", issuer="csr", issued_at=issued_at, not_after=not_after,
                 ttl=1800, serial="s", status={"token": "old"})


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


class _FullDisk(_MemoryStore):
    def save(self, entry):
        raise CacheError("cannot write /c/k.json: No space left on device")


def _request(tmp_path, **kw):
    os.chmod(tmp_path, 0o700)
    fields = {"parent": "1\t2\t/bin/kubectl", "lock_timeout": 5, **kw}
    return Request(key="k", profile="p", issuer="csr", ttl=1800, cache_dir=str(tmp_path),
                   **fields)


def _issued(not_after, token="new"):
    return Issued(status={"token": token}, not_after=not_after, identity={}, source="csr-x",
                  server="https://k")


class _Issuer:
    def __init__(self, result):
        self.result = result
        self.calls: list[bool] = []

    def __call__(self, renewing: bool) -> Issued:
        self.calls.append(renewing)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_obtain_issues_once_then_serves(tmp_path):
    store, issue = _MemoryStore(), _Issuer(_issued(2000.0))
    first = obtain(_request(tmp_path), store, issue, lambda: 100.0, print)
    again = obtain(_request(tmp_path, parent="9\t9\t/bin/kubectl"), store, issue,
                   lambda: 200.0, print)
    assert first == again and issue.calls == [False]


def test_refresh_failure_serves_the_still_valid_credential_with_one_warning(tmp_path):
    store, warnings = _MemoryStore(), []
    store.save(_entry(issued_at=0.0, not_after=1800.0))
    issue = _Issuer(ServerError("cannot reach the API server at https://k"))
    got = obtain(_request(tmp_path), store, issue, lambda: 1600.0, warnings.append)
    assert got.serial == "s" and got.status == {"token": "old"}
    assert issue.calls == [True], "the issuer is told this is a renewal"
    assert len(warnings) == 1 and "could not renew" in warnings[0]
    assert "cannot reach the API server" in warnings[0]


def test_any_credhelper_error_while_renewing_falls_back(tmp_path):
    """The CSR issuer gives up on a CSR nobody approved yet with its own error kind."""

    class StillPending(CredHelperError):
        pass

    store, warnings = _MemoryStore(), []
    store.save(_entry(issued_at=0.0, not_after=1800.0))
    got = obtain(_request(tmp_path), store, _Issuer(StillPending("csr-x is pending")),
                 lambda: 1600.0, warnings.append)
    assert got.serial == "s" and len(warnings) == 1


def test_expired_and_failing_is_an_error(tmp_path):
    store, warnings = _MemoryStore(), []
    store.save(_entry(issued_at=0.0, not_after=1800.0))
    issue = _Issuer(ServerError("cannot reach the API server at https://k"))
    with pytest.raises(ServerError):
        obtain(_request(tmp_path), store, issue, lambda: 1750.0, warnings.append)
    assert issue.calls == [False] and warnings == []


def test_a_refresh_that_returns_an_expired_credential_is_an_error(tmp_path):
    store = _MemoryStore()
    with pytest.raises(CredHelperError, match="already expired"):
        obtain(_request(tmp_path), store, _Issuer(_issued(99.0)), lambda: 100.0, print)
    assert store.items == {}


def test_a_short_lived_credential_is_still_a_credential(tmp_path):
    store = _MemoryStore()
    got = obtain(_request(tmp_path), store, _Issuer(_issued(160.0)), lambda: 100.0, print)
    assert got.not_after == 160.0 and store.items["k"] == got
    # ... and is reused by the next kubectl for the first half of its minute
    issue = _Issuer(_issued(999.0))
    again = obtain(_request(tmp_path, parent="9"), store, issue, lambda: 120.0, print)
    assert again == got and issue.calls == []


def test_full_disk_returns_the_credential_with_one_warning(tmp_path):
    warnings = []
    got = obtain(_request(tmp_path), _FullDisk(), _Issuer(_issued(2000.0)), lambda: 100.0,
                 warnings.append)
    assert got.status == {"token": "new"}
    assert len(warnings) == 1
    assert "could not keep" in warnings[0] and "No space left on device" in warnings[0]


def test_save_oserror_names_the_path(tmp_path, monkeypatch):
    store, warnings = FileStore(str(tmp_path), print), []

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "k.json"))

    monkeypatch.setattr("cred_helper.cache.filestore.write_private", full)
    got = obtain(_request(tmp_path), store, _Issuer(_issued(2000.0)), lambda: 100.0,
                 warnings.append)
    assert got.status == {"token": "new"} and len(warnings) == 1
    assert str(tmp_path / "k.json") in warnings[0] and "No space left" in warnings[0]


def test_rejected_credential_is_replaced_without_fallback(tmp_path):
    store = _MemoryStore()
    req = _request(tmp_path)
    first = obtain(req, store, _Issuer(_issued(2000.0)), lambda: 100.0, print)
    # The same parent asks again two minutes later: the server rejected the credential.
    issue = _Issuer(_issued(2100.0))
    second = obtain(req, store, issue, lambda: 220.0, print)
    assert second.serial != first.serial and second.not_after == 2100.0
    assert issue.calls == [False], "a rejected credential is nothing to fall back on"


def test_login_twice_from_one_shell_serves_the_cached_one(tmp_path):
    store = _MemoryStore()
    req = _request(tmp_path, command="login")
    first = obtain(req, store, _Issuer(_issued(2000.0)), lambda: 100.0, print)
    issue = _Issuer(_issued(2100.0))
    second = obtain(req, store, issue, lambda: 220.0, print)
    assert second == first and issue.calls == []
    assert not (tmp_path / "k.served").exists(), "login is not kubectl: nothing to remember"


def test_kubectl_does_not_wait_for_another_process_renewing(tmp_path):
    """Another cred-helper holds the lock (renewing, or a person logging in): kubectl is served
    the still-valid credential at once, without a warning, however long the lock timeout;
    with nothing valid cached, or for `login`, it waits its turn."""
    from filelock import FileLock

    store, warnings = _MemoryStore(), []
    store.save(_entry(issued_at=0.0, not_after=1800.0))
    with FileLock(str(tmp_path / "k.lock"), mode=0o600):  # as cred-helper makes it
        issue = _Issuer(_issued(5000.0))
        got = obtain(_request(tmp_path, lock_timeout=600), store, issue, lambda: 1600.0,
                     warnings.append)
        assert got.serial == "s" and issue.calls == [] and warnings == []
        assert (tmp_path / "k.served").exists(), "remembered for the 401 rule"
        for clock, command in ((1790.0, "get"), (1600.0, "login")):  # EXPIRED; a person
            with pytest.raises(CredHelperError, match="another cred-helper"):
                obtain(_request(tmp_path, lock_timeout=0.3, command=command), store, issue,
                       lambda clock=clock: clock, warnings.append)
    assert warnings == []


def test_a_lock_that_cannot_be_taken_costs_a_renewal_not_the_credential(tmp_path,
                                                                       monkeypatch):
    store, warnings = _MemoryStore(), []
    store.save(_entry(issued_at=0.0, not_after=1800.0))
    from filelock import FileLock

    def refused(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(FileLock, "acquire", refused)  # as a directory mode 0500 does
    issue = _Issuer(_issued(5000.0))
    got = obtain(_request(tmp_path), store, issue, lambda: 1600.0, warnings.append)
    assert got.serial == "s" and issue.calls == []
    assert len(warnings) == 1 and f"cannot create the lock file {tmp_path}/k.lock" in warnings[0]
    with pytest.raises(CacheError, match="cannot create the lock file"):
        obtain(_request(tmp_path), store, issue, lambda: 1790.0, warnings.append)


@pytest.mark.parametrize("holding", [False, True])
def test_a_directory_where_the_lock_belongs_costs_one_warning(tmp_path, holding):
    """Removed when empty; one that holds files is left, and the credential is issued
    without the lock."""
    store, warnings = _MemoryStore(), []
    store.save(_entry(issued_at=0.0, not_after=1800.0))
    (tmp_path / "k.lock").mkdir()
    if holding:
        (tmp_path / "k.lock" / "x").write_text("someone's")
    issue = _Issuer(_issued(5000.0))
    got = obtain(_request(tmp_path), store, issue, lambda: 1790.0, warnings.append)
    assert got.not_after == 5000.0 and issue.calls == [False]
    assert len(warnings) == 1 and warnings[0].startswith(f"ignoring {tmp_path}/k.lock: it is "
                                                         "a directory")
    assert (tmp_path / "k.lock" / "x").exists() if holding else \
        (tmp_path / "k.lock").is_file()


def test_login_inside_the_margin_may_wait_for_a_person_and_still_falls_back(tmp_path):
    """`login` is a person, who may wait for an approval: the issuer is not told to hurry.
    Should the renewal fail all the same, the still-valid credential is kept."""
    store, warnings = _MemoryStore(), []
    store.save(_entry(issued_at=0.0, not_after=1800.0))
    issue = _Issuer(_issued(5000.0))
    got = obtain(_request(tmp_path, command="login"), store, issue, lambda: 1600.0,
                 warnings.append)
    assert got.not_after == 5000.0 and issue.calls == [False] and warnings == []

    store.save(_entry(issued_at=0.0, not_after=1800.0))
    issue = _Issuer(ServerError("certificate signing request x was not approved within 5m"))
    got = obtain(_request(tmp_path, command="login"), store, issue, lambda: 1600.0,
                 warnings.append)
    assert got.serial == "s" and issue.calls == [False] and len(warnings) == 1
