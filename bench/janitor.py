"""The janitor over many pods: one pass (`cred-helper janitor`) against the local API server
(tests/support/apiserver.py) serving N pods in pages of 100, for N = 500 and 5,000 by default.
One pod in ten carries a debug container (stale or fresh), every five pods share a ReplicaSet
and a PodDisruptionBudget; pods are about 3 KB of JSON each, managedFields included.

    .venv/bin/python bench/janitor.py [--pods 500,5000]

The pass runs in a process of its own with tracemalloc on. Prints, per N: the pass's wall time
and time per pod, the peak of Python allocations during the pass (tracemalloc), the
process's peak resident size (VmHWM, interpreter and imports included), and the requests the
pass made (list pages, evictions, Events: what a change to the eviction must not add to).
Bounded memory shows as a peak that does not grow with N the way the pods' JSON does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.apiserver import LocalAPIServer, write_kubeconfig  # noqa: E402

TOKEN = "bench-admin-token"
# The pass's own allocations: everything it imports is imported before tracing starts.
CHILD = """
import json, sys, time, tracemalloc
from cred_helper.cli import run
import cred_helper.janitor.run, cred_helper.janitor.main, cred_helper.connect
import cred_helper.janitor.selectors, cred_helper.durations, cred_helper.kubeconfig
import yaml, stringprep, unicodedata  # the kubeconfig's reader and IDNA's tables
import cred_helper.janitor.run as passes
def measured(self, _run=passes.Janitor.run):
    # The pass alone: reading the kubeconfig briefly takes 16 MiB (kubeconfig.read_file's
    # buffer), whatever the number of pods.
    if tracemalloc.is_tracing():
        tracemalloc.reset_peak()
    return _run(self)
passes.Janitor.run = measured
if "--no-trace" not in sys.argv:
    tracemalloc.start()
sys.argv = [a for a in sys.argv if a != "--no-trace"]
start = time.perf_counter()
rc = run(sys.argv[1:])
elapsed = time.perf_counter() - start
_, peak = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (0, 0)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child of this
# benchmark (which holds every pod) would report the parent's size.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status")
           if line.startswith("VmHWM:"))
sys.stderr.write(json.dumps({"rc": rc, "seconds": elapsed, "peak": peak, "maxrss_kib": hwm})
                 + "\\n")
"""


def stamp(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))


def make_pod(i: int) -> dict:
    rs = i // 5
    app = f"app-{rs}"
    meta = {
        "name": f"{app}-{i}", "namespace": f"ns-{i % 20}",
        "uid": f"00000000-0000-0000-0000-{i:012d}", "resourceVersion": str(1000 + i),
        "creationTimestamp": stamp(86400),
        "labels": {"app": app, "pod-template-hash": "5d8f7c9b6d", "team": "payments"},
        "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": app,
                             "uid": f"rs-{rs}", "controller": True,
                             "blockOwnerDeletion": True}],
        "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                           "apiVersion": "v1", "time": stamp(86400), "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}},
                                        "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {}}}}},
                          {"manager": "kubelet", "operation": "Update", "apiVersion": "v1",
                           "time": stamp(86000), "fieldsType": "FieldsV1", "subresource": "status",
                           "fieldsV1": {"f:status": {"f:conditions": {}, "f:phase": {}}}}],
    }
    spec = {"containers": [{"name": "app", "image": "registry.example.com/payments/api:1.42.0",
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                            "env": [{"name": f"VAR_{k}", "value": "x" * 20} for k in range(8)]}],
            "nodeName": f"node-{i % 50}", "serviceAccountName": "default"}
    status = {"phase": "Running", "podIP": f"10.0.{i // 250}.{i % 250}",
              "conditions": [{"type": t, "status": "True", "lastTransitionTime": stamp(86000)}
                             for t in ("Initialized", "Ready", "ContainersReady",
                                       "PodScheduled")],
              "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0,
                                     "image": "registry.example.com/payments/api:1.42.0",
                                     "state": {"running": {"startedAt": stamp(86000)}}}]}
    if i % 10 == 0:
        spec["ephemeralContainers"] = [{"name": "debugger-x7k2p", "image": "nicolaka/netshoot",
                                        "targetContainerName": "app"}]
        ago = 3600 if i % 20 == 0 else 60  # half stale, half fresh
        status["ephemeralContainerStatuses"] = [{
            "name": "debugger-x7k2p", "image": "nicolaka/netshoot", "ready": False,
            "state": {"terminated": {"exitCode": 0, "startedAt": stamp(ago + 600),
                                     "finishedAt": stamp(ago)}}}]
        meta["managedFields"].append({"manager": "kubectl-debug", "operation": "Update",
                                      "apiVersion": "v1", "time": stamp(ago + 600),
                                      "subresource": "ephemeralcontainers",
                                      "fieldsType": "FieldsV1", "fieldsV1": {}})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
            "status": status}


def one(count: int, tmp: Path) -> dict:
    """Two passes over the same pods: one traced (the allocation peak), one not (the time and
    the resident size, which tracemalloc's own tables would inflate)."""
    figures: dict = {}
    for traced in (True, False):
        server = LocalAPIServer(tokens={TOKEN: ("admin", ["system:masters"])})
        server.pods = [make_pod(i) for i in range(count)]
        server.pdbs = [{"metadata": {"namespace": f"ns-{(rs * 5) % 20}", "name": f"app-{rs}"},
                        "spec": {"selector": {"matchLabels": {"app": f"app-{rs}"}}}}
                       for rs in range(count // 5)]
        size = sum(len(json.dumps(p)) for p in server.pods)
        with server:
            kubeconfig = tmp / f"bench-{count}.kubeconfig"
            write_kubeconfig(str(kubeconfig), server, {"token": TOKEN})
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            env.pop("KUBERNETES_SERVICE_HOST", None)
            done = subprocess.run([sys.executable, "-c", CHILD, "janitor", "--kubeconfig",
                                   str(kubeconfig), "--max-evictions", "10",
                                   *([] if traced else ["--no-trace"])],
                                  capture_output=True, text=True, env=env, timeout=600)
            got = json.loads(done.stderr.strip().splitlines()[-1])
            lines = [json.loads(x) for x in done.stdout.splitlines()]
            stale = (count + 19) // 20  # one pod in twenty, each of its own ReplicaSet
            if got["rc"] != 0 or len(server.evicted) != min(10, stale):
                raise SystemExit(f"the pass failed: {done.stderr[-2000:]}")
            figures["requests"] = requests_by_kind(server.requests)
        if traced:
            figures["peak"] = got["peak"]
        else:
            figures.update(seconds=got["seconds"], maxrss_kib=got["maxrss_kib"])
    figures.update(pods=count, json_mib=size / 2**20, lines=len(lines))
    return figures


def requests_by_kind(requests: list[tuple[str, str, str]]) -> dict[str, int]:
    kinds = {"lists": 0, "evictions": 0, "events": 0}
    for method, path, _ in requests:
        kind = "lists" if method == "GET" else "evictions" if path.endswith("/eviction") \
            else "events" if path.endswith("/events") else path
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", default="500,5000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'pods':>6} {'JSON MiB':>9} {'lines':>6} {'pass s':>7} {'ms/pod':>7} "
              f"{'tracemalloc peak MiB':>21} {'peak RSS MiB':>13}  requests")
        for count in (int(n) for n in args.pods.split(",")):
            f = one(count, Path(tmp))
            print(f"{f['pods']:>6} {f['json_mib']:>9.1f} {f['lines']:>6} {f['seconds']:>7.2f} "
                  f"{1000 * f['seconds'] / f['pods']:>7.3f} {f['peak'] / 2**20:>21.2f} "
                  f"{f['maxrss_kib'] / 1024:>13.1f}  "
                  + " ".join(f"{kind} {n}" for kind, n in f["requests"].items()))


if __name__ == "__main__":
    main()
