"""Where cred-helper keeps things by default. Stdlib only: the cache-hit path uses it."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing itself is too slow to import on the hit path
if TYPE_CHECKING:
    from collections.abc import Mapping



def _xdg(env: Mapping[str, str], var: str, fallback: str) -> str:
    base = env.get(var) or os.path.join(env.get("HOME") or os.path.expanduser("~"), fallback)
    return os.path.join(base, "cred-helper")


def default_cache_dir(env: Mapping[str, str]) -> str:
    return _xdg(env, "XDG_CACHE_HOME", ".cache")


def default_config_file(env: Mapping[str, str]) -> str:
    return os.path.join(_xdg(env, "XDG_CONFIG_HOME", ".config"), "config.toml")
