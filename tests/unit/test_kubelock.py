"""kubectl's FILE.lock: held while setup works, waited for, and reported when it stays."""

from __future__ import annotations

import os

import pytest

from cred_helper import kubelock
from cred_helper.errors import CredHelperError


def test_the_locks_exist_while_held_and_are_gone_after(tmp_path):
    paths = [str(tmp_path / "b"), str(tmp_path / "a"), str(tmp_path / "new" / "c")]
    with kubelock.holding(paths):
        for path in paths:
            assert os.path.exists(path + ".lock")
        # kubectl's own lockFile: an exclusive create, which now fails
        with pytest.raises(FileExistsError):
            os.open(paths[0] + ".lock", os.O_CREAT | os.O_EXCL, 0)
    assert not [p for p in paths if os.path.exists(p + ".lock")]


def test_kubectls_lock_that_stays_is_reported_with_what_to_do(tmp_path):
    path = str(tmp_path / "config")
    fd = os.open(path + ".lock", os.O_CREAT | os.O_EXCL, 0)  # as kubectl makes it: empty
    os.close(fd)
    with pytest.raises(CredHelperError) as held, kubelock.holding([path], wait=0.3):
        pass
    assert f"{path} is locked by another writer" in held.value.message
    assert f"remove {path}.lock" in held.value.hint
    assert os.path.exists(path + ".lock")  # kubectl's lock is never taken over


def test_a_lock_left_by_a_killed_setup_is_taken_over(tmp_path):
    import subprocess
    import sys

    path = str(tmp_path / "config")
    child = subprocess.run([sys.executable, "-c", (
        "import os, sys\nfrom cred_helper import kubelock\n"
        f"with kubelock.holding([{path!r}]):\n    os._exit(9)\n")],
        cwd=os.getcwd(), timeout=60)
    assert child.returncode == 9 and os.path.exists(path + ".lock")
    with kubelock.holding([path], wait=5):
        pass
    assert not os.path.exists(path + ".lock")
