"""Cache-hit wall time against the interpreter's own start-up, from one run.

    .venv/bin/python bench/cache_hit.py [--runs N]

Starts the local API server, fills the cache with one real issuance, then alternates runs of
`cred-helper` (a cache hit) and `python -I -c pass` with the same venv interpreter, and prints
medians and their ratio. Each timed command is started by its own freshly forked parent, as
each kubectl process is: cred-helper reads a second run from one parent as a 401 retry.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.apiserver import LocalAPIServer

PYTHON = sys.executable
CRED_HELPER = str(Path(PYTHON).parent / "cred-helper")


def timed(argv: list[str], env: dict[str, str]) -> float:
    """Seconds for argv to run, measured inside a forked child that is argv's parent."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        start = time.perf_counter()
        code = subprocess.call(argv, env=env, stdout=subprocess.DEVNULL)
        os.write(write_end, f"{code} {time.perf_counter() - start}".encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as fh:
        code, seconds = fh.read().split()
    os.waitpid(pid, 0)
    if code != "0":
        raise SystemExit(f"{argv[0]} failed with exit code {code}")
    return float(seconds)


def bench_server() -> LocalAPIServer:
    """The local API server the benchmarks talk to, approving every CSR at once."""
    return LocalAPIServer(tokens={"bench-token": ("alice@example.com", ["oncall"])},
                          auto_approve=lambda csr: True)


def kubectl_run(tmp: str, server: LocalAPIServer) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of cred-helper as kubectl runs it against `server`, with its
    home, config and cache under `tmp`."""
    token_file = Path(tmp, "token")
    token_file.write_text("bench-token\n")
    token_file.chmod(0o600)  # a secret file must be private, as ssh wants of keys
    info = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
            "spec": {"interactive": False, "cluster": server.cluster_entry()}}
    env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp,
           "XDG_CACHE_HOME": f"{tmp}/cache", "XDG_CONFIG_HOME": f"{tmp}/config",
           "KUBERNETES_EXEC_INFO": json.dumps(info)}
    return [CRED_HELPER, "--issuer=csr", "--ttl=30m", f"--bootstrap-token-file={token_file}"], env


def runs(default: int) -> int:
    """The --runs argument: how many timed runs of each kind."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=default)
    return parser.parse_args().runs


def main() -> None:
    count = runs(60)
    with tempfile.TemporaryDirectory() as tmp, bench_server() as server:
        hit, env = kubectl_run(tmp, server)
        miss = timed(hit, env)
        assert server.csr_creations == 1
        baseline = [PYTHON, "-I", "-c", "pass"]
        for _ in range(5):  # warm the page cache for both
            timed(hit, env)
            timed(baseline, env)
        hits, bases = [], []
        for _ in range(count):
            hits.append(timed(hit, env))
            bases.append(timed(baseline, env))
        assert server.csr_creations == 1, "every timed run must have been a cache hit"
    hit_ms, base_ms = statistics.median(hits) * 1000, statistics.median(bases) * 1000
    print(f"interpreter        {PYTHON}")
    print(f"runs               {count} of each, interleaved")
    print(f"python -I -c pass  median {base_ms:6.1f} ms")
    print(f"cache hit          median {hit_ms:6.1f} ms")
    print(f"ratio              {hit_ms / base_ms:6.2f}  (target <= 1.3)")
    print(f"first run (miss: key, CSR, approval, signing) {miss * 1000:.0f} ms")


if __name__ == "__main__":
    main()
