"""An access request's settings: flags over the profile, each bad value refused naming where it
came from; no gateway without a pinned host key."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cred_helper.errors import UsageError
from cred_helper.sshaccess.settings import Gateway, resolve


def key_line() -> str:
    return ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


CA, HOST = key_line(), key_line()
PROFILE = {"namespace": "payments", "gateway": "gw.example.com:2222", "gateway-host-key": HOST,
           "ssh-user-ca": CA}


def flags(**given):
    return {"namespace": None, "pod": (), "session_ttl": None, "reason": "INC-42",
            "ssh_key": None, "host_alias": None, **given}


def test_the_profile_gives_everything():
    got = resolve(flags(), PROFILE, "prod")
    assert (got.namespace, got.seconds, got.ssh_key, got.alias) == (
        "payments", 1800, "ed25519", "prod-payments")
    assert got.gateway == Gateway("gw.example.com", 2222)
    assert got.gateway.known_hosts_name == "[gw.example.com]:2222"
    assert got.user_ca == CA and got.host_keys == (HOST,)


def test_flags_win_over_the_profile():
    got = resolve(flags(namespace="shop", session_ttl="1h", pod=("api-*",),
                        host_alias="shop-box"), PROFILE, "prod")
    assert (got.namespace, got.seconds, got.pods, got.alias) == ("shop", 3600, ("api-*",),
                                                                 "shop-box")


def test_keys_come_from_files_with_comments_and_options_dropped(tmp_path):
    (tmp_path / "ca.pub").write_text(f"# the CA\n{CA} ca@broker\n")
    (tmp_path / "known").write_text(f"{HOST} gw\n{key_line()}\n")
    got = resolve(flags(), {**PROFILE, "ssh-user-ca": str(tmp_path / "ca.pub"),
                            "gateway-host-key": str(tmp_path / "known")}, "prod")
    assert got.user_ca == CA and len(got.host_keys) == 2 and got.host_keys[0] == HOST


@pytest.mark.parametrize("changes, where", [
    ({"namespace": "Payments"}, "profile key namespace"),
    ({"session-ttl": "5m"}, "profile key session-ttl"),
    ({"session-ttl": "25h"}, "profile key session-ttl"),
    ({"session-ttl": "soon"}, "profile key session-ttl"),
    ({"ssh-key": "rsa"}, "profile key ssh-key"),
    ({"ssh-user-ca": "ssh-ed25519 AAAAnotakey"}, "profile key ssh-user-ca"),
    ({"ssh-user-ca": f"{CA}\n{key_line()}"}, "exactly one SSH user CA"),
    ({"gateway": "gw.example.com:99999"}, "profile key gateway"),
    ({"gateway": "gw example:22"}, "profile key gateway"),
    ({"gateway": "[::1"}, "profile key gateway"),
    ({"gateway-host-key": "/nonexistent/known"}, "cannot read"),
])
def test_bad_profile_values_name_their_key(changes, where):
    with pytest.raises(UsageError) as caught:
        resolve(flags(), {**PROFILE, **changes}, "prod")
    assert where in caught.value.message


@pytest.mark.parametrize("given, where", [
    ({"pod": ("API",)}, "--pod"),
    ({"reason": "INC\x1b[31m"}, "--reason"),
    ({"host_alias": "prod payments"}, "--host-alias"),
    ({"namespace": "a_b"}, "--namespace"),
])
def test_bad_flags_name_the_flag(given, where):
    with pytest.raises(UsageError, match=where):
        resolve(flags(**given), PROFILE, "prod")


def test_what_must_be_set():
    with pytest.raises(UsageError, match="no namespace"):
        resolve(flags(), {k: v for k, v in PROFILE.items() if k != "namespace"}, "prod")
    with pytest.raises(UsageError, match="no SSH user CA"):
        resolve(flags(), {k: v for k, v in PROFILE.items() if k != "ssh-user-ca"}, "prod")
    with pytest.raises(UsageError, match="host key is not pinned") as caught:
        resolve(flags(), {k: v for k, v in PROFILE.items() if k != "gateway-host-key"}, "prod")
    assert "never trusts a host key on first use" in caught.value.hint


def test_a_host_ca_pins_instead_and_ipv6_gateways():
    profile = {k: v for k, v in PROFILE.items() if k != "gateway-host-key"}
    got = resolve(flags(), {**profile, "gateway": "[::1]:2222", "gateway-host-ca": CA}, "prod")
    assert got.gateway == Gateway("::1", 2222) and got.host_ca == CA and got.host_keys == ()
    assert resolve(flags(), {**PROFILE, "gateway": "gw"}, "prod").gateway.known_hosts_name \
        == "gw"
