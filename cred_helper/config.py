"""Flags, environment and the profile file, merged into one frozen Settings.

Precedence: flags, then environment, then the profile `[clusters.NAME]`, then defaults.
Every value is checked here, and an error names where the bad value came from (the flag or
the profile key), so the rest of the code can trust Settings.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .cache.entrydoc import MAX_LIFETIME
from .durations import format_duration, parse_duration
from .errors import UsageError, os_reason
from .execinfo import ClusterInfo
from .paths import default_cache_dir, default_config_file
from .urls import check_issuer_url

CSR_MIN_TTL = 600
# The longest a credential may be asked for: what the cache keeps (cache/entrydoc.py), far
# inside the CSR API's expirationSeconds (int32). Longer would be refused by the API server,
# or issued and then thrown away by the cache on every run.
MAX_TTL = MAX_LIFETIME
# Kubernetes removes a CSR still pending after 24 hours: waiting longer waits for nothing.
MAX_APPROVAL_TIMEOUT = 24 * 3600
LONGEST_WHY = {
    "ttl": "cred-helper keeps a credential at most 10 years (short-lived ones are the point)",
    "approval-timeout": "Kubernetes removes a CSR still pending after 24 hours",
}
MAX_CONFIG = 1 << 20  # a profile file is a few hundred bytes; /dev/zero is not one
ISSUERS = ("csr", "oidc")
CACHES = ("file", "keyring", "none")
KEY_KINDS = ("ed25519", "p256")

# profile key -> flag name; the profile keys users may write.
PROFILE_KEYS = {
    "issuer": "--issuer",
    "ttl": "--ttl",
    "cache": "--cache",
    "key": "--key",
    "server": "--server",
    "certificate-authority": "--certificate-authority",
    "signer-ca": "--signer-ca",
    "bootstrap-token-file": "--bootstrap-token-file",
    "bootstrap-kubeconfig": "--bootstrap-kubeconfig",
    "bootstrap-context": "--bootstrap-context",
    "bootstrap": "--bootstrap",
    "subject-cn": "--subject-cn",
    "subject-o": "--subject-o",
    "approval-timeout": "--approval-timeout",
    "oidc-issuer-url": "--oidc-issuer-url",
    "oidc-client-id": "--oidc-client-id",
    "oidc-client-secret-file": "--oidc-client-secret-file",
    "oidc-scope": "--oidc-scope",
    "oidc-grant": "--oidc-grant",
    "oidc-client-auth": "--oidc-client-auth",
    "oidc-client-key": "--oidc-client-key",
    "oidc-use-access-token": "--oidc-use-access-token",
    "oidc-certificate-authority": "--oidc-certificate-authority",
    "no-browser": "--no-browser",
    "pkcs11-module": "--pkcs11-module",
    "pin-source": "--pin-source",
    "attest-with": "--attest-with",
    # Access requests and the SSH gateway (sshaccess/settings.py reads these).
    "namespace": "--namespace",
    "session-ttl": "--session-ttl",
    "ssh-key": "--ssh-key",
    "gateway": "gateway",
    "gateway-host-key": "gateway-host-key",
    "gateway-host-ca": "gateway-host-ca",
    "ssh-user-ca": "ssh-user-ca",
}
OIDC_GRANTS = ("auto", "authcode", "device", "client-credentials")
OIDC_CLIENT_AUTH = ("none", "client-secret", "client-secret-post", "private-key-jwt")
BOOTSTRAPS = ("token", "kubeconfig", "oidc")
DEFAULT_SCOPES = ("openid", "offline_access")
ENV_VARS = {"cluster": "CRED_HELPER_CLUSTER", "config": "CRED_HELPER_CONFIG",
            "cache-dir": "CRED_HELPER_CACHE_DIR", "pkcs11-module": "CRED_HELPER_PKCS11_MODULE",
            "attest-with": "CRED_HELPER_ATTEST_WITH"}


@dataclass(frozen=True)
class Settings:
    cluster: str = ""
    config_file: str = ""
    issuer: str = ""
    ttl: int = 1800
    cache: str = "file"
    cache_dir: str = ""
    key: str = "ed25519"
    server: str = ""
    certificate_authority: str = ""
    signer_ca: str = ""  # the CA issued client certificates must chain to (shapes trust)
    bootstrap_token_file: str = ""
    bootstrap_kubeconfig: str = ""
    bootstrap_context: str = ""
    bootstrap: str = ""
    subject_cn: str = ""
    subject_o: tuple[str, ...] = ()
    approval_timeout: int = 300
    reason: str = ""
    oidc_issuer_url: str = ""
    oidc_client_id: str = ""
    oidc_client_secret_file: str = ""
    oidc_scopes: tuple[str, ...] = DEFAULT_SCOPES
    oidc_grant: str = "auto"
    oidc_client_auth: str = "none"
    oidc_client_key: str = ""
    oidc_use_access_token: bool = False
    oidc_certificate_authority: str = ""
    no_browser: bool = False
    pkcs11_module: str = ""
    pin_source: str = "prompt"
    attest_with: str = ""  # a pkcs11: URI whose key signs a proof into each CSR

    def cache_key(self, cluster: ClusterInfo | None) -> str:
        """A digest of everything that shapes the credential (and nothing that does not)."""
        shaping = asdict(self)
        for incidental in ("config_file", "cache", "cache_dir", "approval_timeout", "reason",
                           "no_browser", "pkcs11_module", "pin_source"):
            del shaping[incidental]
        if not self.attest_with:
            del shaping["attest_with"]  # so that keys made before the option stay the same
        # What of spec.cluster shapes the credential: where it is issued and whom we trust.
        shaping["spec.cluster"] = cluster and {
            "server": cluster.server,
            "tls-server-name": cluster.tls_server_name,
            "ca": hashlib.sha256(cluster.ca_data).hexdigest(),
        }
        blob = json.dumps(shaping, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def profile_label(self) -> str:
        return self.cluster or "(flags)"


def load_config_file(path: str, named: bool) -> dict[str, Any]:
    """The parsed file, or {} for a missing default file; a missing named file is an error."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG + 1)
    except FileNotFoundError:
        if named:
            raise UsageError(
                f"config file {path} does not exist",
                "check --config / CRED_HELPER_CONFIG, or leave it unset to use the default",
            ) from None
        return {}
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {os_reason(exc)}") from None
    if len(data) > MAX_CONFIG:
        raise UsageError(f"config file {path} is larger than 1 MiB",
                         "name the profile file, not something else")
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(
            f"config file {path} is not valid TOML: {exc}", "fix the file, or name another"
        ) from None
    except RecursionError:  # tomllib recurses once per nested array or table
        raise UsageError(f"config file {path} nests too deeply",
                         "fix the file, or name another") from None


class _Source:
    """Looks up one setting across flags, environment and profile, remembering where it was."""

    def __init__(self, flags: Mapping[str, Any], env: Mapping[str, str],
                 profile: Mapping[str, Any], profile_where: str) -> None:
        self.flags, self.env, self.profile, self.where = flags, env, profile, profile_where

    def get(self, key: str) -> tuple[Any, str] | None:
        flag_value = self.flags.get(key.replace("-", "_"))
        if flag_value not in (None, ()):
            return flag_value, f"--{key}"
        env_var = ENV_VARS.get(key)
        if env_var and self.env.get(env_var):
            return self.env[env_var], env_var
        if key in self.profile:
            return self.profile[key], f"profile key {key} in {self.where}"
        return None


def resolve(flags: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Settings from click's parsed flags (None where not given) and the environment."""
    cluster = flags.get("cluster") or env.get("CRED_HELPER_CLUSTER") or ""
    named_config = flags.get("config") or env.get("CRED_HELPER_CONFIG")
    config_file = os.path.expanduser(named_config or default_config_file(env))
    doc = load_config_file(config_file, named=bool(named_config))
    profile = _profile(doc, cluster, config_file)
    src = _Source(flags, env, profile, f"[clusters.{cluster}] of {config_file}")

    issuer = _choice(src, "issuer", ISSUERS, None)
    if issuer is None:
        raise no_issuer(doc, cluster, config_file, bool(profile), os.path.exists(config_file))
    ttl = _duration(src, "ttl", 1800, MAX_TTL)
    if issuer == "csr" and ttl < CSR_MIN_TTL:
        found = src.get("ttl")
        assert found is not None
        raise UsageError(
            f"{found[1]}: {format_duration(ttl)} is shorter than the CSR API's minimum of 10m"
            f"{_also(found[1], 'ttl')}",
            "use a TTL of 10m or more",
        )
    cache = _choice(src, "cache", CACHES, "file")
    key = _key_kind(src)
    cache_dir = flags.get("cache_dir") or env.get("CRED_HELPER_CACHE_DIR")
    bootstrap = _bootstrap(src, issuer)
    settings = Settings(
        cluster=cluster,
        config_file=config_file,
        issuer=issuer,
        ttl=ttl,
        cache=cache,
        cache_dir=os.path.abspath(os.path.expanduser(cache_dir or default_cache_dir(env))),
        key=key,
        server=_text(src, "server"),
        certificate_authority=_path(src, "certificate-authority"),
        signer_ca=_path(src, "signer-ca"),
        bootstrap_token_file=_path(src, "bootstrap-token-file"),
        bootstrap_kubeconfig=_path(src, "bootstrap-kubeconfig"),
        bootstrap_context=_text(src, "bootstrap-context"),
        subject_cn=_text(src, "subject-cn"),
        subject_o=_groups(src),
        approval_timeout=_duration(src, "approval-timeout", 300, MAX_APPROVAL_TIMEOUT),
        reason=flags.get("reason") or "",
        bootstrap=bootstrap,
        no_browser=_flag(src, "no-browser"),
        pkcs11_module=_path(src, "pkcs11-module"),
        pin_source=_pin_source(src),
        attest_with=_attest_with(src, issuer),
        **_oidc(src, issuer, bootstrap == "oidc"),
    )
    if settings.server and not settings.server.startswith("https://"):
        raise UsageError(f"--server: {settings.server!r} is not an https:// URL",
                         "cred-helper only talks to API servers over verified TLS")
    return settings


def profile_names(doc: Mapping[str, Any]) -> list[str]:
    clusters = doc.get("clusters")
    return sorted(clusters) if isinstance(clusters, dict) else []


def no_issuer(doc: Mapping[str, Any], cluster: str, path: str, has_profile: bool,
              file_exists: bool) -> UsageError:
    """Why no issuer is known, in a newcomer's terms: which file was read, which profiles it
    has, and the closest to a misspelt name."""
    names = profile_names(doc)
    if cluster and not has_profile:
        return unknown_profile(cluster, names, path, file_exists)
    if cluster:
        return UsageError(f"profile {cluster!r} in {path} sets no issuer",
                          f"add issuer = \"csr\" (or \"oidc\") to [clusters.{cluster}], "
                          "or pass --issuer csr")
    read = _what_was_read(names, path, file_exists)
    if names:
        # Never a guess: with several profiles, naming the first would pick one at random.
        return UsageError(f"no profile chosen and no issuer set ({read})",
                          f"pass --cluster {_one_of(names)} or set CRED_HELPER_CLUSTER; or "
                          "--issuer csr|oidc with its settings")
    return UsageError(f"no profile chosen and no issuer set ({read})",
                      "pass --cluster NAME with a profile (see `cred-helper setup`), or "
                      "--issuer csr|oidc with its settings; `cred-helper --help` shows usage")


def _what_was_read(names: list[str], path: str, file_exists: bool) -> str:
    if not file_exists:
        return f"the profile file {path} does not exist"
    return f"{path} has " + (f"the profiles {', '.join(names)}" if len(names) > 1 else
                             f"the profile {names[0]}" if names else "no profiles")


def _one_of(names: list[str]) -> str:
    return names[0] if len(names) == 1 else "NAME (one of " + ", ".join(names) + ")"


def unknown_profile(cluster: str, names: list[str], path: str, file_exists: bool,
                    cached: list[str] | None = None, named_by: str = "") -> UsageError:
    """The one answer every command gives a profile name nobody knows: the file read, the
    profiles in it (and those only the cache knows, for status and logout), the closest.
    `named_by` says where the name came from when no flag gave it."""
    from .suggest import close_words, either, shown

    read = _what_was_read(names, path, file_exists)
    others = sorted(set(cached or ()) - set(names))
    if others:
        read += f"; credentials are cached for {', '.join(others)}"
    close = close_words(cluster, [*names, *others])
    hint = (f"did you mean --cluster {either(close)}?" if close else
            "write [clusters.NAME] there (see `cred-helper setup`), or pass --config FILE")
    by = f" ({named_by})" if named_by else ""
    return UsageError(f"no profile {shown(cluster)}{by}: {read}", hint)


def require_profile(cluster: str, config_flag: str | None, env: Mapping[str, str],
                    cached: list[str] | None = None) -> None:
    """Refuse `cluster` unless the profile file has it (or, for status and logout, the cache
    holds credentials under that name: a profile given by flags alone leaves only those)."""
    if cluster in (cached or ()):
        return
    named = config_flag or env.get("CRED_HELPER_CONFIG")
    path = os.path.expanduser(named or default_config_file(env))
    doc = load_config_file(path, named=bool(named))
    names = profile_names(doc)
    if cluster not in names:
        raise unknown_profile(cluster, names, path, os.path.exists(path), cached)


def _bootstrap(src: _Source, issuer: str) -> str:
    """How CSRs are authorized: a token file, a kubeconfig user, or an OIDC login."""
    token, kubeconfig = src.get("bootstrap-token-file"), src.get("bootstrap-kubeconfig")
    if token and kubeconfig:
        raise UsageError("--bootstrap-token-file and --bootstrap-kubeconfig both set",
                         "choose one bootstrap credential")
    implied = "token" if token else "kubeconfig" if kubeconfig else ""
    chosen = _choice(src, "bootstrap", BOOTSTRAPS, implied)
    needs = {"token": ("bootstrap-token-file", token), "kubeconfig": ("bootstrap-kubeconfig",
                                                                      kubeconfig)}
    if issuer == "csr" and chosen in needs and not needs[chosen][1]:
        raise UsageError(f"--bootstrap {chosen} needs --{needs[chosen][0]} (profile key "
                         f"{needs[chosen][0]})")
    if chosen == "oidc" and (token or kubeconfig):
        raise UsageError("--bootstrap oidc and a bootstrap token or kubeconfig both set",
                         "choose one bootstrap credential")
    return chosen


def _oidc(src: _Source, issuer: str, bootstrap: bool) -> dict[str, Any]:
    found = src.get("oidc-scope")
    scopes = _groups(src, "oidc-scope") if found else DEFAULT_SCOPES
    settings: dict[str, Any] = {
        "oidc_issuer_url": _text(src, "oidc-issuer-url"),
        "oidc_client_id": _text(src, "oidc-client-id"),
        "oidc_client_secret_file": _path(src, "oidc-client-secret-file"),
        "oidc_scopes": scopes,
        "oidc_grant": _choice(src, "oidc-grant", OIDC_GRANTS, "auto"),
        "oidc_client_key": _text(src, "oidc-client-key"),
        "oidc_use_access_token": _flag(src, "oidc-use-access-token"),
        "oidc_certificate_authority": _path(src, "oidc-certificate-authority"),
    }
    key = settings["oidc_client_key"]
    if key and not key.startswith("pkcs11:"):
        settings["oidc_client_key"] = os.path.abspath(os.path.expanduser(key))
    implied = ("private-key-jwt" if key else
               "client-secret" if settings["oidc_client_secret_file"] else "none")
    settings["oidc_client_auth"] = _choice(src, "oidc-client-auth", OIDC_CLIENT_AUTH, implied)
    if issuer == "oidc" or bootstrap:
        needer = "--issuer oidc" if issuer == "oidc" else "--bootstrap oidc"
        for name in ("oidc-issuer-url", "oidc-client-id"):
            if not settings[name.replace("-", "_")]:
                raise UsageError(f"{needer} needs --{name}",
                                 f"pass --{name}, or set {name} in the profile")
        check_issuer_url(settings["oidc_issuer_url"])
        if settings["oidc_client_auth"] == "private-key-jwt" and not key:
            raise UsageError("--oidc-client-auth private-key-jwt needs --oidc-client-key")
        if settings["oidc_grant"] == "client-credentials" and \
                settings["oidc_client_auth"] == "none":
            raise UsageError("--oidc-grant client-credentials needs client authentication",
                             "set --oidc-client-secret-file or --oidc-client-key")
    return settings


def _also(where: str, key: str) -> str:
    """The other name of the setting an error is about: a user who set the profile key looks
    for it under that name, one who passed the flag may have the key in a profile too."""
    if where.startswith("--"):
        return f" (profile key {key})"
    if where.startswith("profile key"):
        return f" (flag --{key})"
    return f" (flag --{key}, profile key {key})"


def _flag(src: _Source, key: str) -> bool:
    found = src.get(key)
    if found is None:
        return False
    value, where = found
    if not isinstance(value, bool):
        raise UsageError(f"{where}: expected true or false{_also(where, key)}")
    return value


def _profile(doc: Mapping[str, Any], cluster: str, path: str) -> dict[str, Any]:
    clusters = doc.get("clusters", {})
    if not isinstance(clusters, dict):
        raise UsageError(f"{path}: [clusters] must be a table of profiles")
    if not cluster:
        return {}
    profile = clusters.get(cluster, {})
    if not isinstance(profile, dict):
        raise UsageError(f"{path}: clusters.{cluster} must be a table")
    unknown = sorted(set(profile) - set(PROFILE_KEYS))
    if unknown:
        raise UsageError(f"unknown profile key {unknown[0]} in [clusters.{cluster}] of {path}",
                         "known keys: " + ", ".join(PROFILE_KEYS))
    return profile


def _text(src: _Source, key: str) -> str:
    found = src.get(key)
    if found is None:
        return ""
    value, where = found
    if not isinstance(value, str):
        raise UsageError(f"{where}: expected a string, got {type(value).__name__}"
                         f"{_also(where, key)}")
    return value


def _path(src: _Source, key: str) -> str:
    value = _text(src, key)
    if "\0" in value:  # TOML's \u0000 can say it; no file name holds it
        found = src.get(key)
        assert found is not None
        raise UsageError(f"{found[1]}: a path cannot contain a NUL character"
                         f"{_also(found[1], key)}")
    return os.path.abspath(os.path.expanduser(value)) if value else ""


def _choice(src: _Source, key: str, allowed: tuple[str, ...], default: str | None) -> Any:
    found = src.get(key)
    if found is None:
        return default
    value, where = found
    if value in allowed:
        return value
    raise UsageError(f"{where}: {value!r} is not one of {', '.join(allowed)}"
                     f"{_also(where, key)}")


def _key_kind(src: _Source) -> str:
    found = src.get("key")
    if found and isinstance(found[0], str) and found[0].startswith("pkcs11:"):
        raise UsageError(
            f"{found[1]}: a hardware key cannot be the certificate's key: kubectl only uses a "
            "client key it can read (clientKeyData), and client-go cannot ask a token to sign",
            "keep --key ed25519 (a fresh key per certificate) and let the hardware key "
            "authorize each one: --bootstrap oidc --oidc-client-auth private-key-jwt "
            "--oidc-client-key pkcs11:... (docs/hardware-keys.md)")
    return _choice(src, "key", KEY_KINDS, "ed25519")


def _pin_source(src: _Source) -> str:
    from .keys.pin import check_source

    found = src.get("pin-source")
    if found is None:
        return "prompt"
    value, where = found
    if not isinstance(value, str):
        raise UsageError(f"{where}: expected a string")
    return check_source(value, where)


def _attest_with(src: _Source, issuer: str) -> str:
    found = src.get("attest-with")
    if found is None:
        return ""
    value, where = found
    if not isinstance(value, str) or not value.startswith("pkcs11:"):
        raise UsageError(f"{where}: expected a pkcs11: URI naming a key on a token"
                         f"{_also(where, 'attest-with')}",
                         "e.g. --attest-with 'pkcs11:token=YubiKey%20PIV%20%2312345678;"
                         "id=%01' (see `cred-helper keys list --login`)")
    if issuer != "csr":
        raise UsageError(f"{where}: attestation goes into certificate signing requests, and "
                         f"--issuer {issuer} makes none", "use --issuer csr, or drop it")
    from .keys.uri import parse

    parse(value)  # a malformed URI fails here, before anything is asked of the token
    return value


def _duration(src: _Source, key: str, default: int, longest: int) -> int:
    found = src.get(key)
    if found is None:
        return default
    value, where = found
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError:
            seconds = -1
    else:
        seconds = -1
    if seconds <= 0:
        raise UsageError(f"{where}: {value!r} is not a duration{_also(where, key)}",
                         "use seconds (1800) or units: 90s, 30m, 1h, 1h30m")
    if seconds > longest:
        raise UsageError(f"{where}: {value!r} is longer than {format_duration(longest)}"
                         f"{_also(where, key)}", LONGEST_WHY[key])
    return seconds


def _groups(src: _Source, key: str = "subject-o") -> tuple[str, ...]:
    found = src.get(key)
    if found is None:
        return ()
    value, where = found
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise UsageError(f"{where}: expected a list of names{_also(where, key)}")
    return tuple(value)
