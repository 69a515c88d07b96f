"""The cache-hit path's shortcut from a command line to a cache entry. Stdlib only.

The real cache key (config.Settings.cache_key) needs the profile file parsed, which costs
more than the whole hit. So after a successful `get`, the slow path writes an alias
`<fast key>.alias` naming the entry and the apiVersion to answer in, where the fast key is a
digest of everything the settings were resolved from: arguments, the environment variables
cred-helper reads, the working directory, the config file's identity (a changed profile
changes the key) and KUBERNETES_EXEC_INFO as kubectl sent it.
"""

from __future__ import annotations

import os
import sys

from . import __version__
from .execcred import API_VERSIONS
from .paths import default_cache_dir, default_config_file

TYPE_CHECKING = False  # typing itself is too slow to import on the hit path
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# The C hash module directly: importing hashlib (OpenSSL) costs a third of a cache hit. Chosen
# by version, since a failed import of the other name costs a search of every path entry.
try:
    if sys.version_info >= (3, 12):
        from _sha2 import sha256
    else:
        from _sha256 import sha256
except ImportError:  # an interpreter built without them
    from hashlib import sha256

_HEX = "0123456789abcdef"

ENV_INPUTS = (
    "CRED_HELPER_CLUSTER",
    "CRED_HELPER_CONFIG",
    "CRED_HELPER_CACHE_DIR",
    "CRED_HELPER_ATTEST_WITH",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "HOME",
    "KUBERNETES_EXEC_INFO",
)


def flag_value(argv: Sequence[str], name: str) -> str | None:
    """The last value of `--name VALUE` or `--name=VALUE` in argv (click: last one wins)."""
    value = None
    prefix = name + "="
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(prefix):
            value = arg[len(prefix):]
    return value


def cache_dir_for(argv: Sequence[str], env: Mapping[str, str]) -> str:
    chosen = flag_value(argv, "--cache-dir") or env.get("CRED_HELPER_CACHE_DIR")
    return os.path.abspath(os.path.expanduser(chosen or default_cache_dir(env)))


def fast_key(argv: Sequence[str], env: Mapping[str, str]) -> str:
    config = flag_value(argv, "--config") or env.get("CRED_HELPER_CONFIG")
    config = os.path.expanduser(config or default_config_file(env))
    try:
        st = os.stat(config)
        config_id = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
    except OSError:
        config_id = "absent"
    parts = [__version__, os.getcwd(), config, config_id, *argv, "\0env"]
    parts += [f"{name}={env.get(name, chr(0))}" for name in ENV_INPUTS]
    return sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def belongs_to(profile: str, cluster: tuple[str, str, str] | None) -> str:
    """What an entry is for, as a cache hit can tell it from its own command line: the profile
    named (`--cluster`, else CRED_HELPER_CLUSTER) and the cluster kubectl named in
    KUBERNETES_EXEC_INFO's spec.cluster (server, tls-server-name and the CA data's base64
    text), or None without one. A digest, kept in one field of the entry.

    Everything here shapes the cache key too (config.Settings.cache_key), so every run that
    finds an entry by its key computes the same value: a hit that computes another was led to
    the entry of another profile or cluster by an alias that is not this command line's."""
    parts = [profile, *(("cluster", *cluster) if cluster is not None else ("no cluster",))]
    return sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def profile_named(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The profile a command line names, as config.resolve reads it."""
    return flag_value(argv, "--cluster") or env.get("CRED_HELPER_CLUSTER") or ""


def is_key(value: object) -> bool:
    """A cache key or fast key as we make them: 64 lowercase hex digits, nothing else."""
    return type(value) is str and len(value) == 64 and not value.strip(_HEX)


def alias_path(cache_dir: str, key: str) -> str:
    if not is_key(key):  # a name from our own digest; anything else must not become a path
        raise ValueError("not a fast key")
    return os.path.join(cache_dir, f"{key}.alias")


def alias_bytes(key: str, api_version: str) -> bytes:
    """An alias file's content: the entry's key, then the apiVersion to answer in."""
    return f"{key}\n{api_version}\n".encode("ascii")


def parse_alias(data: bytes) -> tuple[str, str] | None:
    """(entry key, apiVersion) from an alias file, or None unless it is exactly those two lines."""
    try:
        lines = data.decode("ascii").split("\n")
    except UnicodeDecodeError:
        return None
    if len(lines) != 3 or lines[2] or not is_key(lines[0]) or lines[1] not in API_VERSIONS:
        return None
    return lines[0], lines[1]
