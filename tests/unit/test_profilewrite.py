"""The profile table: appended, or replaced only with --overwrite; the rest of the file kept."""

from __future__ import annotations

import pytest
import tomllib

from cred_helper.errors import UsageError
from cred_helper.profilewrite import updated_text

PROFILE = {"issuer": "csr", "ttl": "30m"}


def test_a_new_profile_is_appended_and_the_rest_kept():
    old = "# mine\n[clusters.other]\nissuer = \"oidc\"  # note\n"
    new = updated_text(old, "/p", "prod", PROFILE)
    assert new == old + '\n[clusters.prod]\nissuer = "csr"\nttl = "30m"\n'


def test_the_same_profile_changes_nothing():
    assert updated_text('[clusters.prod]\nissuer = "csr"\nttl = "30m"\n', "/p", "prod",
                        PROFILE) is None


def test_a_hand_written_profile_is_not_replaced_without_overwrite():
    old = '[clusters.prod]\n# my notes\nissuer = "csr"\nttl = "1h"\nkey = "p256"\n'
    with pytest.raises(UsageError, match="differs in key, ttl") as refused:
        updated_text(old, "/p", "prod", PROFILE)
    assert "--overwrite" in refused.value.hint
    new = updated_text(old, "/p", "prod", PROFILE, overwrite=True)
    assert new == '[clusters.prod]\nissuer = "csr"\nttl = "30m"\n'


KEPT = ("namespace", "gateway", "ssh-key")


def test_keys_the_person_added_for_access_requests_keep_a_rerun_quiet():
    """setup has no option for the access requests' keys: the person adds them to the profile
    by hand. Running the same setup again changes nothing and refuses nothing."""
    old = ('[clusters.prod]\nissuer = "csr"\nttl = "30m"\n'
           'gateway = "gw.example.com:22"\nnamespace = "payments"\n')
    assert updated_text(old, "/p", "prod", PROFILE, kept=KEPT) is None


def test_overwrite_keeps_the_persons_access_request_keys_and_drops_the_rest():
    old = ('[clusters.prod]\nissuer = "csr"\nttl = "1h"\nkey = "p256"\n'
           'gateway = "gw.example.com:22"\nnamespace = "payments"\n')
    with pytest.raises(UsageError, match="differs in key, ttl"):
        updated_text(old, "/p", "prod", PROFILE, kept=KEPT)
    new = updated_text(old, "/p", "prod", PROFILE, overwrite=True, kept=KEPT)
    assert new is not None
    assert tomllib.loads(new)["clusters"]["prod"] == {
        "issuer": "csr", "ttl": "30m", "gateway": "gw.example.com:22", "namespace": "payments"}
