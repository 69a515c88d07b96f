import os

import pytest

from cred_helper.cache.secrets import RefreshTokens
from cred_helper.errors import CacheError


def test_file_fallback_round_trip_and_refusal(tmp_path, monkeypatch):
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")  # no keyring
    store = RefreshTokens(str(tmp_path / "c"))
    where = store.save("k", "refresh-1")
    assert where.endswith("k.refresh") and os.stat(where).st_mode & 0o777 == 0o600
    assert store.load("k") == "refresh-1"
    os.chmod(where, 0o644)
    with pytest.raises(CacheError, match="group/others"):
        store.load("k")
    assert store.delete("k") is True
    assert store.load("k") is None
    assert store.delete("k") is False
