"""The issuance lock excludes other processes: brackets written under it never interleave."""

import multiprocessing
import os

from cred_helper.cache.lock import exclusive
from cred_helper.cache.sidefile import SideFiles


def _worker(cache_dir: str, log: str) -> None:
    for _ in range(5):
        with exclusive(cache_dir, "key", 30, SideFiles(print)):
            with open(log, "a") as fh:
                fh.write(f"<{os.getpid()}\n")
                fh.flush()
            with open(log, "a") as fh:
                fh.write(f">{os.getpid()}\n")


def test_brackets_never_interleave(tmp_path):
    cache_dir, log = str(tmp_path / "cache"), str(tmp_path / "log")
    procs = [multiprocessing.get_context("spawn").Process(target=_worker, args=(cache_dir, log))
             for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with open(log) as fh:
        lines = fh.read().split()
    assert len(lines) == 60
    for opening, closing in zip(lines[::2], lines[1::2], strict=True):
        assert opening[0] == "<" and closing == ">" + opening[1:]
    assert os.stat(os.path.join(cache_dir, "key.lock")).st_mode & 0o777 == 0o600
