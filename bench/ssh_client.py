"""`cred-helper ssh`'s own cost: a command through it against the same command through plain
`ssh` and the Host block it wrote, and a cold run (request, auto-approval, certificate,
command) on the real control plane.

    .venv/bin/python bench/ssh_client.py [--runs N]

Warm (the certificate cached): `cred-helper ssh --cluster prod --reason R -- exec api-1 --
true` against `ssh -F prod-payments.conf prod-payments exec api-1 -- true`, runs alternating,
both to the SSH peer of the tests (tests/support/sshpeer.py: asyncssh on loopback, the "pod"
a local process). The difference is what cred-helper adds before it becomes ssh: its start,
the settings, the cache entry read and checked, the files compared, the exec.

Cold (with the real control plane, tests/controlplane/build.py): the request's cache entry
removed before each run, the person's cluster credential cached; `cred-helper approver run
--ssh-ca` approving by rule, as its ServiceAccount. Prints medians (and the ratio for warm).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402

from bench.approval import runs_and_binaries  # noqa: E402
from cred_helper import accessrequest as ar  # noqa: E402
from cred_helper.broker.sshsign import SshCa  # noqa: E402
from tests.support.sshpeer import SshPeer  # noqa: E402
from tests.support.sshsession import Holder  # noqa: E402

COMMAND = ("--", "exec", "api-1", "--", "true")
POLICY_EXEC = 'exec: [[ps, aux], [echo, "**"], ["true"]]'


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=120)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed: {done.stderr.decode()[-500:]}")
    return took


def warm(runs: int) -> tuple[list[float], list[float]]:
    ca = SshCa(ed25519.Ed25519PrivateKey.generate(), "bench")
    grant = ar.Grant("payments", (), ("exec",), (("true",),), False, ())
    with tempfile.TemporaryDirectory() as tmp, SshPeer(ca.public_line) as peer:
        alice = Holder(Path(tmp), peer.port, peer.host_key_line, ca)
        alice.hold(grant)
        through = alice.argv(*COMMAND)
        timed(through, alice.env)  # writes the Host block plain ssh reads
        plain = ["ssh", "-F", str(alice.ssh_dir / "prod-payments.conf"), "-o",
                 "BatchMode=yes", "prod-payments", *COMMAND[1:]]
        ours, theirs = [], []
        for _ in range(runs):
            ours.append(timed(through, alice.env))
            theirs.append(timed(plain, alice.env))
    return ours, theirs


def cold(runs: int, binaries: Path) -> list[float]:
    from tests.realcluster.test_access_requests import POLICY, Broker, Person, install
    from tests.support.controlplane import ControlPlane

    with tempfile.TemporaryDirectory() as tmp, ControlPlane(binaries) as plane:
        at = install(plane, Path(tmp), POLICY.replace("exec: [[ps, aux]]", POLICY_EXEC))
        broker = Broker(at).wait_started()
        try:
            with SshPeer(at.ca_pub.decode()) as peer:
                home = Path(tmp, "alice")
                home.mkdir()
                alice = Person(at, home, peer.port, peer.host_key_line)
                login = alice.run("login", "--cluster", "prod")
                if login.returncode != 0:
                    raise SystemExit(login.stderr)
                argv = alice.argv("ssh", "--cluster", "prod", "--namespace", "payments",
                                  "--reason", "bench", *COMMAND)
                times = []
                for _ in range(runs + 1):
                    for entry in (home / "cache" / "cred-helper").glob("*.ssh"):
                        entry.unlink()
                    times.append(timed(argv, alice.env))
                return times[1:]  # the first one also waits for the broker's first watch
        finally:
            broker.kill()


def main() -> None:
    runs, binaries = runs_and_binaries(__doc__, "cold request")
    ours, theirs = warm(runs)
    a, b = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
    print(f"warm, certificate cached, {runs} runs each (alternating), SSH peer on loopback:")
    print(f"  cred-helper ssh             median {a:7.1f} ms")
    print(f"  plain ssh with the block    median {b:7.1f} ms")
    print(f"  ratio {a / b:.2f}, cred-helper's own part {a - b:.1f} ms")
    if binaries is None:
        return
    times = cold(min(runs, 10), binaries)
    ms = [t * 1000 for t in times]
    print(f"cold, {len(ms)} runs (request, auto-approval by the broker, certificate checked "
          "and kept, the command), real kube-apiserver on loopback:")
    print(f"  median {statistics.median(ms):7.1f} ms   max {max(ms):7.1f} ms")


if __name__ == "__main__":
    main()
