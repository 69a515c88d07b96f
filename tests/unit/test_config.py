import dataclasses

import pytest

from cred_helper.config import Settings, resolve
from cred_helper.errors import UsageError
from cred_helper.execinfo import ClusterInfo


def _flags(**kw):
    return kw


def test_precedence_flag_env_profile_default(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[clusters.prod]\nissuer = "csr"\nttl = "45m"\ncache = "none"\n')
    env = {"CRED_HELPER_CONFIG": str(config), "HOME": str(tmp_path),
           "CRED_HELPER_CACHE_DIR": str(tmp_path / "env-cache")}
    s = resolve(_flags(cluster="prod"), env)
    assert (s.ttl, s.cache, s.key, s.cache_dir) == (2700, "none", "ed25519",
                                                    str(tmp_path / "env-cache"))
    s = resolve(_flags(cluster="prod", ttl="1h", cache_dir=str(tmp_path / "flag")), env)
    assert (s.ttl, s.cache_dir) == (3600, str(tmp_path / "flag"))


def test_missing_default_config_is_fine_missing_named_is_not(tmp_path):
    env = {"HOME": str(tmp_path)}
    assert resolve(_flags(issuer="csr"), env).issuer == "csr"
    with pytest.raises(UsageError, match="does not exist"):
        resolve(_flags(issuer="csr", config=str(tmp_path / "nope.toml")), env)


def test_ttl_under_ten_minutes_is_an_error_not_a_clamp(tmp_path):
    with pytest.raises(UsageError, match=r"--ttl: 9m59s is shorter"):
        resolve(_flags(issuer="csr", ttl="599"), {"HOME": str(tmp_path)})
    assert resolve(_flags(issuer="csr", ttl="10m"), {"HOME": str(tmp_path)}).ttl == 600


@pytest.mark.parametrize("flags, message", [
    # A credential the cache would throw away on every run (and the CSR API's int32 after).
    ({"ttl": "87841h"}, r"--ttl: '87841h' is longer than 87840h0m0s"),
    ({"ttl": "9" * 400}, r"--ttl: '999.*' is longer than 87840h0m0s"),
    # A socket timeout past time_t (an OverflowError once), for a CSR removed after a day.
    ({"approval_timeout": "99999999999999999999h"}, r"--approval-timeout: .* is longer than 24h"),
    ({"approval_timeout": "24h1s"}, r"--approval-timeout: '24h1s' is longer than 24h0m0s"),
])
def test_durations_past_what_can_be_used_are_usage_errors(tmp_path, flags, message):
    with pytest.raises(UsageError, match=message):
        resolve(_flags(issuer="csr", **flags), {"HOME": str(tmp_path)})
    longest = {"ttl": "87840h", "approval_timeout": "24h"}
    assert resolve(_flags(issuer="csr", **{k: longest[k] for k in flags}),
                   {"HOME": str(tmp_path)})


def test_a_path_with_a_nul_character_is_a_usage_error(tmp_path):
    """TOML's \\u0000 can put one in a profile; open() would raise ValueError on it."""
    config = tmp_path / "c.toml"
    for key in ("bootstrap-token-file", "certificate-authority", "signer-ca",
                "bootstrap-kubeconfig", "oidc-client-secret-file"):
        config.write_text(f'[clusters.prod]\nissuer = "csr"\n"{key}" = "a\\u0000b"\n')
        with pytest.raises(UsageError, match=f"profile key {key} in .*: a path cannot contain "
                                             "a NUL character"):
            resolve(_flags(cluster="prod", config=str(config)), {"HOME": str(tmp_path)})


def test_cache_key_changes_with_every_shaping_input():
    base = Settings(issuer="csr", cluster="prod")
    cluster = ClusterInfo(server="https://a", ca_data=b"ca")
    key = base.cache_key(cluster)
    shaping = {"cluster": "dev", "issuer": "oidc", "ttl": 600, "key": "p256",
               "server": "https://b", "certificate_authority": "/ca.pem",
               "signer_ca": "/signer.pem", "bootstrap_token_file": "/t",
               "bootstrap_kubeconfig": "/k",
               "bootstrap_context": "c", "bootstrap": "oidc", "subject_cn": "bob",
               "subject_o": ("g",),
               "oidc_issuer_url": "https://idp", "oidc_client_id": "c",
               "oidc_client_secret_file": "/s", "oidc_scopes": ("openid",),
               "oidc_grant": "device", "oidc_client_auth": "client-secret",
               "oidc_client_key": "/k", "oidc_use_access_token": True,
               "oidc_certificate_authority": "/idp-ca.pem",
               "attest_with": "pkcs11:token=t;object=k"}
    assert set(shaping) | {"config_file", "cache", "cache_dir", "approval_timeout",
                           "reason", "no_browser", "pkcs11_module", "pin_source"} == \
        {f.name for f in dataclasses.fields(Settings)}
    for name, value in shaping.items():
        assert dataclasses.replace(base, **{name: value}).cache_key(cluster) != key, name
    for other in (None, ClusterInfo(server="https://b", ca_data=b"ca"),
                  ClusterInfo(server="https://a", ca_data=b"other"),
                  ClusterInfo(server="https://a", ca_data=b"ca", tls_server_name="x")):
        assert base.cache_key(other) != key
    for name, value in {"reason": "why", "approval_timeout": 1, "cache": "none",
                        "cache_dir": "/x", "config_file": "/y", "no_browser": True,
                        "pkcs11_module": "/m.so", "pin_source": "env:PIN"}.items():
        assert dataclasses.replace(base, **{name: value}).cache_key(cluster) == key, name


def test_bootstrap_is_implied_and_checked(tmp_path):
    env = {"HOME": str(tmp_path)}
    assert resolve(_flags(issuer="csr", bootstrap_token_file="/t"), env).bootstrap == "token"
    assert resolve(_flags(issuer="csr"), env).bootstrap == ""
    with pytest.raises(UsageError, match="--bootstrap oidc needs --oidc-issuer-url"):
        resolve(_flags(issuer="csr", bootstrap="oidc"), env)
    with pytest.raises(UsageError, match="--bootstrap kubeconfig needs --bootstrap-kubeconfig"):
        resolve(_flags(issuer="csr", bootstrap="kubeconfig"), env)
    with pytest.raises(UsageError, match="both set"):
        resolve(_flags(issuer="csr", bootstrap="oidc", bootstrap_token_file="/t",
                       oidc_issuer_url="https://idp", oidc_client_id="c"), env)
    settings = resolve(_flags(issuer="csr", bootstrap="oidc", oidc_issuer_url="https://idp",
                              oidc_client_id="c"), env)
    assert (settings.bootstrap, settings.oidc_client_auth) == ("oidc", "none")
