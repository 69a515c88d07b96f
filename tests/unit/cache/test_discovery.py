import json
import os

from cred_helper.cache.discovery import MAX_AGE, DiscoveryCache

ISSUER = "https://idp.example.com"
DOC = {"issuer": ISSUER, "token_endpoint": ISSUER + "/token", "jwks_uri": ISSUER + "/jwks"}
JWKS = {"keys": []}


def test_round_trip_private_and_aged(tmp_path):
    warnings = []
    cache = DiscoveryCache(str(tmp_path / "c"), warnings.append)
    assert cache.load(ISSUER, 1000) is None
    cache.save(ISSUER, DOC, JWKS, 1000)
    (path,) = (tmp_path / "c").glob("*.provider")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert cache.load(ISSUER, 1000 + MAX_AGE - 1) == (DOC, JWKS)
    assert cache.load(ISSUER, 1000 + MAX_AGE) is None
    assert cache.load(ISSUER, 999 - 3600) is None, "a clock set back does not keep it for ever"
    assert cache.load("https://other", 1000) is None
    assert warnings == []


def test_corrupt_copy_is_ignored_with_a_warning(tmp_path):
    warnings = []
    cache = DiscoveryCache(str(tmp_path), warnings.append)
    cache.save(ISSUER, DOC, JWKS, 1000)
    (path,) = tmp_path.glob("*.provider")
    path.write_text("{not json")
    assert cache.load(ISSUER, 1000) is None
    path.write_text(json.dumps({"issuer": ISSUER, "fetched_at": 1000, "discovery": [],
                                "jwks": {}}))
    assert cache.load(ISSUER, 1000) is None
    assert len(warnings) == 2


def test_a_copy_that_is_not_a_private_file_of_ours_is_cleared_and_fetched_again(tmp_path):
    warnings = []
    cache = DiscoveryCache(str(tmp_path), warnings.append)
    cache.save(ISSUER, DOC, JWKS, 1000)
    (path,) = tmp_path.glob("*.provider")
    planted = tmp_path / "planted"
    planted.write_text(path.read_text())
    planted.chmod(0o600)
    path.unlink()
    path.symlink_to(planted)  # documents from elsewhere are not this provider's
    assert cache.load(ISSUER, 1000) is None
    assert not path.is_symlink() and planted.exists()
    assert warnings == [f"ignoring {path}: it is a symlink; removed it (it is made again when "
                        "needed)"]
    path.mkdir(mode=0o700)
    cache.save(ISSUER, DOC, JWKS, 1000)  # a directory in the way is replaced
    assert cache.load(ISSUER, 1000) == (DOC, JWKS)
