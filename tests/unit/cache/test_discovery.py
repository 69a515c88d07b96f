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
