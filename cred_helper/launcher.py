"""The fast launcher `cred-helper setup` writes by default (`--no-fast-launcher`: not): a
script whose shebang starts the interpreter isolated and without site processing (`-IS`), and
which puts cred-helper's own site-packages on `sys.path` itself. setup writes it with the
profile and kubeconfig (setupcmd.py), as one change.

kubectl starts the plugin on every command, and a cache hit needs neither the environment's
variables (`-I`) nor site processing (`-S`: a quarter of the interpreter's start here). pip's
launcher cannot carry such flags (it rewrites `#!python` and keeps none), so this one is
written apart. A Linux shebang passes one argument: `-IS`, not `-I -S`. On a miss, `main()`
runs site processing for that directory after all (`.pth` files), see __main__.py.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# Linux reads at most 127 bytes of a shebang on older kernels (256 since 5.1): stay portable.
MAX_SHEBANG = 127


def site_dir() -> str:
    """The directory this installation of cred_helper was imported from (its site-packages)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def launcher_text(python: str, site: str) -> str:
    shebang = f"#!{python} -IS"
    if len(shebang) > MAX_SHEBANG or any(c.isspace() for c in python):
        from .errors import UsageError

        raise UsageError(f"the interpreter path {python!r} cannot go in a shebang (too long, "
                         "or it has spaces)", "use the installed cred-helper command instead "
                         "(--no-fast-launcher)")
    return (f"{shebang}\n"
            "# cred-helper's fast launcher, written by `cred-helper setup`:\n"
            "# -I -S skip the environment and site processing on every kubectl command.\n"
            "import sys\n"
            f"sys.path.insert(0, {site!r})\n"
            "from cred_helper.__main__ import main\n"
            "sys.exit(main())\n")


def default_path(env: Mapping[str, str]) -> str:
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "cred-helper", "bin", "cred-helper")
