"""Access-request latency: a request created → its certificate in status, over N requests (100
by default), with `cred-helper approver run --ssh-ca` and an auto-approving rule (the request
read and its key checked, the rule's checks, the admission guard, the OpenSSH certificate
signed, one status update and an Event), running as its ServiceAccount against the real control
plane with packaging/kubernetes applied (tests/controlplane/build.py, built once per machine).

    .venv/bin/python bench/access.py [--runs N]

Each request is created by alice (a fresh Ed25519 key, her identity from SelfSubjectReview),
then followed by one watch on it from create's resourceVersion until the certificate shows;
requests go one at a time so that each figure is one request's. Prints p50 and p99.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.approval import percentile, runs_and_binaries, until  # noqa: E402
from cred_helper import accessrequest as ar  # noqa: E402
from tests.realcluster.test_access_requests import (  # noqa: E402
    Broker,
    alices_spec,
    create,
    install,
)
from tests.support.controlplane import ControlPlane  # noqa: E402

POLICY = """\
rules: [{name: none, match: {users: [nobody]}, action: manual}]
access:
  rules:
    - name: bench
      match: {groups: [oncall]}
      namespaces: [payments]
      action: approve
      max-expiration: 30m
      attestation: none
      grant: {commands: [pods, logs, exec], exec: [[ps, aux]]}
"""


def signed(obj: dict) -> bool:
    return bool((obj.get("status") or {}).get("certificate"))


def one(at, spec: dict) -> float:
    start = time.perf_counter()
    return until(at.alice, ar.PATH, create(at.alice, spec), signed, start, "signed")


def main() -> None:
    runs, binaries = runs_and_binaries(__doc__, "access-request latency")
    if binaries is None:
        return
    with tempfile.TemporaryDirectory() as tmp, ControlPlane(binaries) as plane:
        at = install(plane, Path(tmp), POLICY)
        broker = Broker(at).wait_started()
        try:
            # SelfSubjectReview once: the figure is the broker's, not the requester's set-up.
            specs = [alices_spec(at) for _ in range(runs + 1)]
            one(at, specs[0])  # the broker has listed and watches
            times = [one(at, spec) for spec in specs[1:]]
        finally:
            broker.kill()
    ms = [t * 1000 for t in times]
    print(f"access-request latency over {len(ms)} requests (created -> certificate in "
          "status), real kube-apiserver on loopback:")
    print(f"  p50 {statistics.median(ms):.1f} ms   p99 {percentile(ms, 99):.1f} ms   "
          f"max {max(ms):.1f} ms")


if __name__ == "__main__":
    main()
