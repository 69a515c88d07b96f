"""Approval latency: a CSR created → its Approved condition seen, over N CSRs (100 by default),
with `cred-helper approver run`'s loop (a test judge that approves by the CSR's name, so that
the figure is the runtime's: watch, re-read, judge, approval, Event) running as a process of its
own against the real control plane (tests/controlplane/build.py, built once per machine).

    .venv/bin/python bench/approval.py [--runs N]

Each CSR is created, then followed by one watch on it from create's resourceVersion until the
approval shows; CSRs go one at a time so that each figure is one CSR's. Prints p50 and p99.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.realcluster.test_approver_runtime import admin_client, create_csr  # noqa: E402
from tests.support.controlplane import ControlPlane  # noqa: E402

CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


def approved(obj: dict) -> bool:
    return any(c.get("type") == "Approved"
               for c in (obj.get("status") or {}).get("conditions") or [])


def one(client, name: str) -> float:
    start = time.perf_counter()
    created = create_csr(client, name)
    params = {"fieldSelector": f"metadata.name={name}",
              "resourceVersion": created["metadata"]["resourceVersion"]}
    for event in client.watch(CSRS, params, 30):
        if approved(event["object"]):
            return time.perf_counter() - start
    raise SystemExit(f"{name} was not approved within 30 s")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    built = subprocess.run([sys.executable, str(ROOT / "tests" / "controlplane" / "build.py")],
                           capture_output=True, text=True)
    if built.returncode != 0:
        lines = built.stderr.strip().splitlines() or ["build failed"]
        print(f"approval latency: skipped, no real control plane ({lines[-1]})")
        return
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    with tempfile.TemporaryDirectory() as tmp, ControlPlane(Path(built.stdout.strip())) as plane:
        kubeconfig = plane.write_kubeconfig(Path(tmp, "kubeconfig"),
                                            {"token": plane.admin_token})
        approver = subprocess.Popen(
            [sys.executable, "-m", "tests.support.approver_proc", "--prefix", prefix,
             "--kubeconfig", str(kubeconfig)], cwd=ROOT, stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL)
        try:
            client = admin_client(plane)
            one(client, f"{prefix}approve-warmup")  # the approver has listed and watches
            times = [one(client, f"{prefix}approve-{i}") for i in range(args.runs)]
        finally:
            approver.kill()
            approver.wait()
    ms = [t * 1000 for t in times]
    print(f"approval latency over {len(ms)} CSRs (created -> Approved seen), real "
          f"kube-apiserver on loopback:")
    print(f"  p50 {statistics.median(ms):.1f} ms   p99 {percentile(ms, 99):.1f} ms   "
          f"max {max(ms):.1f} ms")


if __name__ == "__main__":
    main()
