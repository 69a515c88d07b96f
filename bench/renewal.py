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

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cache_hit import CRED_HELPER, timed
from tests.support.apiserver import LocalAPIServer
from tests.support.harness import edit_entry


def _age(cache: Path, left: float) -> None:
    (path,) = cache.glob("*.json")
    now = time.time()
    edit_entry(path, lambda doc: doc.update(issued_at=now + left - 1800, not_after=now + left))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalAPIServer(
            tokens={"bench-token": ("alice@example.com", ["oncall"])},
            auto_approve=lambda csr: True) as server:
        token_file = Path(tmp, "token")
        token_file.write_text("bench-token\n")
        token_file.chmod(0o600)
        info = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                "spec": {"interactive": False, "cluster": server.cluster_entry()}}
        env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp,
               "XDG_CACHE_HOME": f"{tmp}/cache", "XDG_CONFIG_HOME": f"{tmp}/config",
               "KUBERNETES_EXEC_INFO": json.dumps(info)}
        cache = Path(tmp, "cache", "cred-helper")
        get = [CRED_HELPER, "--issuer=csr", "--ttl=30m", f"--bootstrap-token-file={token_file}"]
        timed(get, env)
        hits = [timed(get, env) for _ in range(args.runs)]

        _age(cache, 240)  # inside the 5-minute margin, valid for 4 more minutes
        server.auto_approve = None
        first = timed(get, env)
        later = [timed(get, env) for _ in range(args.runs)]
        assert server.csr_creations == 2, "one renewal CSR, whatever the number of runs"
    hit_ms, later_ms = statistics.median(hits) * 1000, statistics.median(later) * 1000
    print(f"runs                                  {args.runs} of each")
    print(f"cache hit (fresh)                     median {hit_ms:7.1f} ms")
    print(f"first run inside the margin (new CSR) {first * 1000:7.1f} ms")
    print(f"later runs inside the margin          median {later_ms:7.1f} ms")
    print("renewal CSRs made                     1")


if __name__ == "__main__":
    main()
