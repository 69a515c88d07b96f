"""Entry point: the cache-hit path first, the full CLI only on a miss."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    from .fastpath import try_serve

    if try_serve(args, os.environ, sys.stdout):
        return 0
    from .cli import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
