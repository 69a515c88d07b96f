"""Approval latency: a CSR created → its Approved condition seen, over N CSRs (100 by default),
with `cred-helper approver run` and a real policy file (the CSR read and its signature checked,
the rule's checks, the approval and its Event) running as a process of its own against the real
control plane (tests/controlplane/build.py, built once per machine).

    .venv/bin/python bench/approval.py [--runs N]

Each CSR is created, then followed by one watch on it from create's resourceVersion until the
approval shows; CSRs go one at a time so that each figure is one CSR's. Prints p50 and p99.
"""

from __future__ import annotations

import argparse
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
CRED_HELPER = str(Path(sys.executable).parent / "cred-helper")
# The admin's CSRs (tests/realcluster/test_approver_runtime.create_csr: CN admin, P-256, 600 s).
POLICY = """\
default: manual
rules:
  - name: bench
    match: {users: [admin]}
    action: approve
    subject-groups: []
    max-expiration: 10m
    key-types: [p256]
    attestation: none
"""


def approved(obj: dict) -> bool:
    return any(c.get("type") == "Approved"
               for c in (obj.get("status") or {}).get("conditions") or [])


def one(client, name: str) -> float:
    start = time.perf_counter()
    return until(client, CSRS, create_csr(client, name), approved, start, "approved")


def until(client, path: str, created: dict, done, start: float, what: str) -> float:
    """Seconds from `start` until the object `created` (followed by one watch from its
    resourceVersion) is `done`."""
    name = created["metadata"]["name"]
    params = {"fieldSelector": f"metadata.name={name}",
              "resourceVersion": created["metadata"]["resourceVersion"]}
    for event in client.watch(path, params, 30):
        if done(event["object"]):
            return time.perf_counter() - start
    raise SystemExit(f"{name} was not {what} within 30 s")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def runs_and_binaries(doc: str, figure: str) -> tuple[int, Path | None]:
    """(--runs, the control plane's binaries), or None after saying why `figure` is skipped."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    built = subprocess.run([sys.executable, str(ROOT / "tests" / "controlplane" / "build.py")],
                           capture_output=True, text=True)
    if built.returncode != 0:
        lines = built.stderr.strip().splitlines() or ["build failed"]
        print(f"{figure}: skipped, no real control plane ({lines[-1]})")
        return args.runs, None
    return args.runs, Path(built.stdout.strip())


def main() -> None:
    runs, binaries = runs_and_binaries(__doc__, "approval latency")
    if binaries is None:
        return
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    with tempfile.TemporaryDirectory() as tmp, ControlPlane(binaries) as plane:
        kubeconfig = plane.write_kubeconfig(Path(tmp, "kubeconfig"),
                                            {"token": plane.admin_token})
        policy = Path(tmp, "policy.yaml")
        policy.write_text(POLICY)
        approver = subprocess.Popen(
            [CRED_HELPER, "approver", "run", f"--policy={policy}", f"--kubeconfig={kubeconfig}"],
            stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            client = admin_client(plane)
            one(client, f"{prefix}approve-warmup")  # the approver has listed and watches
            times = [one(client, f"{prefix}approve-{i}") for i in range(runs)]
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
