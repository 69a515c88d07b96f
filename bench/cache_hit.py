"""Cache-hit wall time against the interpreter's own start-up, from one run.

    .venv/bin/python bench/cache_hit.py [--runs N] [--against DIR]

Starts the local API server, fills the cache with one real issuance, then alternates runs of
`cred-helper` (a cache hit) and `python -I -c pass` with the same venv interpreter, and prints
medians and their ratio. Each timed command is started by its own freshly forked parent, as
each kubectl process is: cred-helper reads a second run from one parent as a 401 retry.

`--against DIR` times another build in the same run: DIR is a tree of another commit (say
`git archive OLD | tar -x -C DIR`). This checkout and DIR are each installed into a throwaway
venv made the same way (their dependencies reached through this venv's site-packages), each
fills a cache of its own, and the three commands are timed interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
    return timed_with_cpu(argv, env)[0]


def timed_with_cpu(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one run of argv, from a forked child
    that is its parent. CPU time hardly moves when other work shares the cores."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        start = time.perf_counter()
        code = subprocess.call(argv, env=env, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        os.write(write_end, f"{code} {wall} {used.ru_utime + used.ru_stime}".encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as fh:
        code, wall, cpu = fh.read().split()
    os.waitpid(pid, 0)
    if code != "0":
        raise SystemExit(f"{argv[0]} failed with exit code {code}")
    return float(wall), float(cpu)


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


def throwaway_install(tree: str, where: Path) -> str:
    """`cred-helper` of `tree`, pip-installed into a new venv at `where` whose dependencies
    come from this venv (a .pth file): the same launcher and start-up for any tree."""
    subprocess.run([PYTHON, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    site_dir = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                               "get_paths()['purelib'])"], check=True, capture_output=True,
                              text=True).stdout.strip()
    ours = subprocess.run([PYTHON, "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True,
                          text=True).stdout.strip()
    Path(site_dir, "dependencies.pth").write_text(ours + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", tree], check=True, stdout=subprocess.DEVNULL)
    return str(where / "bin" / "cred-helper")


def compare(count: int, against: str) -> None:
    """This checkout's hit against `against`'s, and both against the interpreter."""
    here = str(Path(__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory() as tmp, bench_server() as server:
        commands = {}
        for name, tree in (("this tree", here), ("--against", against)):
            home = Path(tmp, name.strip("-").replace(" ", "-"))
            home.mkdir()
            script = throwaway_install(tree, home / "venv")
            argv, env = kubectl_run(str(home), server)
            commands[name] = ([script, *argv[1:]], env)
            timed(*commands[name])  # the miss that fills this build's cache
            imported = subprocess.run([str(Path(script).parent / "python"), "-X", "importtime",
                                       *commands[name][0]], env=env, capture_output=True,
                                      text=True).stderr
            assert " cred_helper.fastpath" in imported and " click" not in imported, \
                f"{name}: the timed runs would not be the cache-hit path"
        assert server.csr_creations == 2
        commands["python -I -c pass"] = ([PYTHON, "-I", "-c", "pass"], commands["this tree"][1])
        for _ in range(5):
            for argv, env in commands.values():
                timed(argv, env)
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        for i in range(count):
            order = list(commands.items())
            for name, (argv, env) in order[i % 3:] + order[:i % 3]:  # no place favoured
                wall, cpu = timed_with_cpu(argv, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
        assert server.csr_creations == 2, "every timed run must have been a cache hit"
    wall_ms = {name: statistics.median(t) * 1000 for name, t in walls.items()}
    cpu_ms = {name: statistics.median(t) * 1000 for name, t in cpus.items()}
    print(f"interpreter        {PYTHON}")
    print(f"runs               {count} of each, interleaved")
    print(f"against            {against}")
    for name in commands:
        print(f"{name:<18} median {wall_ms[name]:6.1f} ms  ratio "
              f"{wall_ms[name] / wall_ms['python -I -c pass']:5.2f}   CPU median "
              f"{cpu_ms[name]:6.1f} ms  ratio {cpu_ms[name] / cpu_ms['python -I -c pass']:5.2f}")
    print(f"this tree / --against  wall {wall_ms['this tree'] / wall_ms['--against']:6.3f}"
          f"   CPU {cpu_ms['this tree'] / cpu_ms['--against']:6.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--against", metavar="DIR",
                        help="a tree of another commit, timed in the same run")
    args = parser.parse_args()
    if args.against:
        compare(args.runs, args.against)
        return
    count = args.runs
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
