"""What a damaged side file of the cache can be: the kinds the tests (and the fuzz suite) put
where a small file of cred-helper's belongs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .needs import missing

KINDS = ("empty directory", "directory with a file", "symlink", "dangling symlink",
         "group-readable", "foreign owner")
# How cred-helper says each (cache/sidefile.py's warning).
SAID = {"empty directory": "is a directory", "directory with a file": "is a directory",
        "symlink": "is a symlink", "dangling symlink": "is a symlink",
        "group-readable": "by group/others (mode 640)",
        "foreign owner": "is owned by uid 65534, not you"}


def clear(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def plant(path: Path, kind: str, target: Path) -> None:
    """Put `kind` where the file `path` belongs; a symlink points at `target` (a file of the
    user's, which must stay as it is)."""
    clear(path)
    if kind == "empty directory":
        path.mkdir(mode=0o700)
    elif kind == "directory with a file":
        path.mkdir(mode=0o700)
        (path / "kept").write_text("not ours to remove")
    elif kind == "symlink":
        path.symlink_to(target)
    elif kind == "dangling symlink":
        path.symlink_to(path.parent / "nothing-here")
    else:
        path.write_bytes(b"")
        os.chmod(path, 0o640 if kind == "group-readable" else 0o600)
        if kind == "foreign owner":
            if os.geteuid() != 0:
                    missing("a file of another owner needs root (chown)")
            os.chown(path, 65534, 65534)
