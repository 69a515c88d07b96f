"""Entry point: the cache-hit path first (`get`, or a warm `ssh`), the full CLI only on a miss."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    run_as = os.environ.pop("CRED_HELPER_RUN_AS", None)
    if run_as:
        # The name the single file was run by (its sh header exports it; the Python it starts
        # sees the unpacked script as argv[0]). Taken out of the environment so that no child
        # process inherits it.
        sys.argv[0] = run_as
    if args[:1] == ["ssh"]:
        from .sshaccess.warm import try_session

        try_session(args, os.environ)  # becomes ssh, or does nothing
    else:
        from .fastpath import try_serve

        if try_serve(args, os.environ, sys.stdout):
            return 0
    if sys.flags.no_site:
        # Started by the fast launcher (-I -S, launcher.py): the hit needed no site
        # processing, but the full CLI's dependencies may need their .pth files.
        import site

        from .launcher import site_dir

        site.addsitedir(site_dir())
    from .cli import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
