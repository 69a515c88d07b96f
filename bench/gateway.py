"""`cred-helper ssh` through the SSH gateway against `kubectl exec`, and the cold path, in one run
on the real control plane with the kubelet stand-in, the real broker and the real gateway as
processes (tests/support/sshworld.py: the packaged manifests applied as a site would; the
binaries built once per machine by tests/controlplane/prebuild.py).

    .venv/bin/python bench/gateway.py [--runs N] [--cold-runs N]

Warm (alice's request and its certificate cached): three commands, one run of each per round,
their order rotated each round:
  - `cred-helper ssh --cluster prod --namespace payments --reason R -- exec POD -- true`:
    cred-helper's start, the cache entry read and the files compared, then OpenSSH's ssh: the
    handshake, the gateway's login (a read of the request), the WebSocket exec as alice;
  - `ssh -F prod-payments.conf prod-payments exec POD -- true`: plain ssh through the Host
    block cred-helper wrote, the same session without cred-helper's part;
  - `kubectl exec -n payments POD -- true` with alice's own credential: a kubeconfig entry
    that runs cred-helper for her cluster certificate (a cache hit), as she would run kubectl.
Prints the medians, the ratio cred-helper ssh / kubectl exec (aim: at most 1.5) and
cred-helper's own part (cred-helper ssh - plain ssh).

Cold: before each run the request's cache entry is removed (her cluster credential stays
cached), so `cred-helper ssh` makes a request, the broker approves it by rule and signs, the
certificate is checked and kept, then the command runs. Prints the median and the slowest
(aim: under 2 s).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.harness import CRED_HELPER  # noqa: E402
from tests.support.sshworld import POD, ssh_world  # noqa: E402

COMMAND = ("--", "exec", POD, "--", "true")


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=120)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} {' '.join(argv[1:3])} failed: "
                         f"{done.stderr.decode()[-500:]}")
    return took


def built() -> tuple[Path, Path] | str:
    """The control plane's and the stand-in's binaries, or why there are none."""
    found = []
    for script in ("build.py", "standin.py"):
        done = subprocess.run([sys.executable, str(ROOT / "tests" / "controlplane" / script)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            return (done.stderr.strip().splitlines() or [f"{script} failed"])[-1]
        found.append(Path(done.stdout.strip()))
    return found[0], found[1]


def kubeconfig_for(person, plane, path: Path) -> Path:
    """Her kubeconfig: the cluster, and a user that runs cred-helper for profile prod."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "clusters": [{"name": "prod", "cluster": plane.cluster_entry()}],
        "users": [{"name": "alice", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": CRED_HELPER,
            "args": ["--cluster", "prod"], "interactiveMode": "Never",
            "provideClusterInfo": True}}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "alice",
                                                  "namespace": "payments"}}]}))
    return path


def warm(world, alice, home: Path, runs: int) -> dict[str, list[float]]:
    ours = alice.argv("ssh", "--cluster", "prod", "--namespace", "payments", "--reason",
                      "bench", *COMMAND)
    plain = ["ssh", "-F", str(alice.ssh_dir / "prod-payments.conf"), "-o", "BatchMode=yes",
             "prod-payments", *COMMAND[1:]]
    kubectl = [world.plane.kubectl_path,
               f"--kubeconfig={kubeconfig_for(alice, world.plane, home / 'kubeconfig')}",
               "exec", *COMMAND[2:]]
    commands = {"cred-helper ssh": ours, "plain ssh": plain, "kubectl exec": kubectl}
    for argv in commands.values():  # the request, the Host block, kubectl's certificate
        timed(argv, alice.env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    names = list(commands)
    for round_ in range(runs):
        for name in names[round_ % 3:] + names[:round_ % 3]:
            times[name].append(timed(commands[name], alice.env))
    return times


def cold(alice, home: Path, runs: int) -> list[float]:
    argv = alice.argv("ssh", "--cluster", "prod", "--namespace", "payments", "--reason",
                      "bench cold", *COMMAND)
    times = []
    for _ in range(runs):
        for entry in (home / "cache" / "cred-helper").glob("*.ssh"):
            entry.unlink()
        times.append(timed(argv, alice.env))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="warm rounds")
    parser.add_argument("--cold-runs", type=int, default=10)
    args = parser.parse_args()
    found = built()
    if isinstance(found, str):
        print(f"gateway bench: skipped, no real control plane or stand-in ({found})")
        return
    with tempfile.TemporaryDirectory() as tmp, ssh_world(*found, Path(tmp)) as world:
        home = Path(tmp, "alice")
        home.mkdir()
        alice = world.person(home)
        login = alice.run("login", "--cluster", "prod")  # her cluster credential, cached
        if login.returncode != 0:
            raise SystemExit(login.stderr)
        times = warm(world, alice, home, args.runs)
        cold_times = cold(alice, home, args.cold_runs)
    ms = {name: statistics.median(t) * 1000 for name, t in times.items()}
    print(f"warm command (exec {POD} -- true), {args.runs} rounds (order rotated), medians:")
    print(f"  cred-helper ssh (certificate cached)   {ms['cred-helper ssh']:7.1f} ms")
    print(f"  plain ssh through its Host block       {ms['plain ssh']:7.1f} ms")
    print(f"  kubectl exec (her own credential)      {ms['kubectl exec']:7.1f} ms")
    ratio = ms["cred-helper ssh"] / ms["kubectl exec"]
    print(f"  ratio (cred-helper ssh / kubectl exec) {ratio:7.2f}   (aim: at most 1.5)")
    print(f"  cred-helper's own part                 "
          f"{ms['cred-helper ssh'] - ms['plain ssh']:7.1f} ms")
    cold_ms = [t * 1000 for t in cold_times]
    print(f"cold (request, auto-approval by the broker, certificate, command), "
          f"{len(cold_ms)} runs:")
    print(f"  median {statistics.median(cold_ms):7.1f} ms   max {max(cold_ms):7.1f} ms"
          "   (aim: median under 2000 ms)")


if __name__ == "__main__":
    main()
