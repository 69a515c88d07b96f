"""The issuance lock excludes other processes: brackets written under it never interleave.

The processes start their first attempt together, at a barrier, so that they really contend:
with the lock replaced by nothing (the last test) the same workers interleave."""

import contextlib
import multiprocessing
import os
import time

from cred_helper.cache import lock
from cred_helper.cache.sidefile import SideFiles

WORKERS = 6
ROUNDS = 5


def _worker(cache_dir: str, log: str, barrier, held) -> None:
    barrier.wait(30)  # every process ready: the first attempts overlap
    for _ in range(ROUNDS):
        with held(cache_dir, "key", 30, SideFiles(print)):
            with open(log, "a") as fh:
                fh.write(f"<{os.getpid()}\n")
                fh.flush()
            time.sleep(0.02)  # held a moment: another process steps in here, if it may
            with open(log, "a") as fh:
                fh.write(f">{os.getpid()}\n")


@contextlib.contextmanager
def _no_lock(*args):
    yield


def _run(tmp_path, held) -> list[str]:
    cache_dir, log = str(tmp_path / "cache"), str(tmp_path / "log")
    os.makedirs(cache_dir, mode=0o700)
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(WORKERS)
    procs = [spawn.Process(target=_worker, args=(cache_dir, log, barrier, held))
             for _ in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with open(log) as fh:
        return fh.read().split()


def _interleaved(lines: list[str]) -> bool:
    return any(opening[0] != "<" or closing != ">" + opening[1:]
               for opening, closing in zip(lines[::2], lines[1::2], strict=True))


def test_brackets_never_interleave(tmp_path):
    lines = _run(tmp_path, lock.exclusive)
    assert len(lines) == 2 * WORKERS * ROUNDS
    assert not _interleaved(lines)
    assert os.stat(os.path.join(tmp_path, "cache", "key.lock")).st_mode & 0o777 == 0o600


def test_without_the_lock_the_same_workers_interleave(tmp_path):
    """The test above can fail: its processes do overlap."""
    assert _interleaved(_run(tmp_path, _no_lock))
