"""What a command costs inside the refresh margin while a person is the approver (issue 15's
slow approver), against a cache hit, from one run.

    .venv/bin/python bench/renewal.py [--runs N]

Starts the local API server, issues one certificate, ages it into its refresh margin and
switches approval to a person (nobody approves). Then times: the first run (it makes the
renewal CSR and waits for it briefly, about 2.5 s, for an automatic approver), the runs after
it (each takes that CSR up: one look, no wait, the still-valid certificate served), and cache
hits of a fresh certificate. Before issue 15, each of those runs waited the whole approval
timeout (5 minutes) and made a CSR of its own.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cache_hit import bench_server, kubectl_run, runs, timed

from tests.support.harness import edit_entry


def _age(cache: Path, left: float) -> None:
    (path,) = cache.glob("*.json")
    now = time.time()
    edit_entry(path, lambda doc: doc.update(issued_at=now + left - 1800, not_after=now + left))


def main() -> None:
    count = runs(20)
    with tempfile.TemporaryDirectory() as tmp, bench_server() as server:
        get, env = kubectl_run(tmp, server)
        cache = Path(tmp, "cache", "cred-helper")
        timed(get, env)
        hits = [timed(get, env) for _ in range(count)]

        _age(cache, 240)  # inside the 5-minute margin, valid for 4 more minutes
        server.auto_approve = None
        first = timed(get, env)
        later = [timed(get, env) for _ in range(count)]
        assert server.csr_creations == 2, "one renewal CSR, whatever the number of runs"
    def median_ms(seconds: list[float]) -> str:
        return f"median {statistics.median(seconds) * 1000:7.1f} ms"

    figures = [("runs", f"{count} of each"),
               ("cache hit (fresh)", median_ms(hits)),
               ("first run inside the margin (new CSR)", f"{first * 1000:7.1f} ms"),
               ("later runs inside the margin", median_ms(later)),
               ("renewal CSRs made", "1")]
    for label, value in figures:
        print(f"{label:<38}{value}")

if __name__ == "__main__":
    main()
