"""The broker's judgment of one attested CSR: the CSR read and its signature checked, the
proof's signature, binding and freshness, the YubiKey chain (slot -> f9 -> root, with what the
root and f9 may issue), the registry and the rule's checks, through `policy_judge` with the
shipped step-2 policy and the test attestation root. Pure CPU, no network: the part of an
approval that attestation adds.

    .venv/bin/python bench/attestation.py [--runs N]

Prints the median and p90 per judgment, and for a forged chain (refused at the chain).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cred_helper.broker.main import policy_judge  # noqa: E402
from cred_helper.broker.policy import load_policy  # noqa: E402
from tests.support import policies  # noqa: E402
from tests.support.forgeries import Scene, request_pem  # noqa: E402
from tests.unit.broker.build import csr_object  # noqa: E402


def timed(judge, obj: dict, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        judge(obj)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    scene = Scene()
    with tempfile.TemporaryDirectory() as where:
        root = Path(where) / "root.pem"
        root.write_bytes(scene.ca.root_pem)
        policy = load_policy(policies.with_attestation(policies.step_two(), [str(root)]), "p")
    now = time.time()
    judge = policy_judge(policy, lambda: now)
    forged = scene.forgeries()["software key as alice's serial, under mallory's real slot and f9"]
    for label, forgery, want in (("genuine chain", scene.genuine(), "approve"),
                                 ("forged chain", forged, "deny")):
        pem, _ = request_pem(forgery, ("oncall",), now=now)
        obj = csr_object(pem, username=forgery.user,
                         groups=("oncall", "system:authenticated"))
        decision, _, _ = judge(obj)
        assert decision.action == want, decision.reason
        times = sorted(timed(judge, obj, args.runs))
        p90 = times[int(len(times) * 0.9) - 1]
        print(f"{label}: median {statistics.median(times):.2f} ms, p90 {p90:.2f} ms "
              f"({args.runs} judgments, {decision.action})")


if __name__ == "__main__":
    main()
