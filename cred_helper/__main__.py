"""Entry point: the cache-hit path first, the full CLI only on a miss."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
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
