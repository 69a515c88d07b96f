import os

from cred_helper.cache.secrets import RefreshTokens


def test_file_fallback_round_trip_and_refusal(tmp_path, monkeypatch):
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")  # no keyring
    warned: list[str] = []
    store = RefreshTokens(str(tmp_path / "c"), warn=warned.append)
    where = store.save("k", "refresh-1")
    assert where.endswith("k.refresh") and os.stat(where).st_mode & 0o777 == 0o600
    assert store.load("k") == "refresh-1"
    os.chmod(where, 0o644)  # others may have read it: never used, the person logs in again
    assert store.load("k") is None
    assert not os.path.exists(where)
    assert warned == [f"ignoring {where}: it is readable or writable by group/others "
                      "(mode 644); removed it (it is made again when needed)"]
    store.save("k", "refresh-2")
    assert store.delete("k") is True
    assert store.load("k") is None
    assert store.delete("k") is False
