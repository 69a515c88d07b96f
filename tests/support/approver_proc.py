"""An approver process for the runtime's tests, with a test judge in place of the policy: a
CSR named `<prefix>approve-*` is approved, `<prefix>deny-*` denied, `<prefix>manual-*` left
for a person; any other CSR (another test's) cannot be judged and stays pending.

    python -m tests.support.approver_proc --prefix P [cred-helper approver run options]
"""

from __future__ import annotations

import sys

from cred_helper.broker.main import Options, run_approver
from cred_helper.broker.verdict import APPROVE, DENY, MANUAL, NO_PROOF, Decision


def judge_for(prefix: str):
    def judge(obj: dict):
        name = obj["metadata"]["name"]
        if not name.startswith(prefix):
            raise LookupError("not this test's CSR")
        for action in (APPROVE, DENY, MANUAL):
            if name[len(prefix):].startswith(action + "-"):
                return Decision(action, f"test-{action}", f"the name says {action}"), \
                    NO_PROOF, None
        raise LookupError("no action in the name")

    return judge


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--lease-name")
    parser.add_argument("--lease-namespace", default="default")
    parser.add_argument("--identity")
    parser.add_argument("--lease-duration", type=float, default=15.0)
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args(argv)
    judge = judge_for(args.prefix)
    options = Options(policy="(test judge)", kubeconfig=args.kubeconfig,
                      lease_name=args.lease_name, lease_namespace=args.lease_namespace,
                      identity=args.identity, lease_duration=args.lease_duration,
                      once=args.once)
    return run_approver(options, load=lambda: judge, env={})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
