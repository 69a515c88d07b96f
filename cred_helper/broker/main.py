"""`cred-helper approver run`: the wiring of the approver's parts. The judge is the policy slice's
facts + attestation + policy; the loops (run.py for CSRs, accessrun.py for access requests, each
in a thread of its own) and the Lease (leader.py) only see a `judge`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import CredHelperError, UsageError, os_reason
from ..kube import KubeClient
from .run import Approver, Judge
from .stream import WATCH_SECONDS
from .verdict import DENY, Decision


@dataclass(frozen=True)
class Options:
    policy: str
    kubeconfig: str | None = None
    context: str | None = None
    lease_namespace: str | None = None
    lease_name: str | None = None
    identity: str | None = None
    lease_duration: float = 15.0
    once: bool = False
    dry_run: bool = False
    health_address: str | None = None  # serve /livez and /readyz there (health.py)
    ssh_ca: str = ""  # the SSH user CA: a key file or a pkcs11: URI ("": no access requests)
    pkcs11_module: str = ""
    pin_source: str = ""


REQUEST_TIMEOUT = 30.0  # seconds, for every request to the API server
# How soon each part shows its next sign of life at the latest (health.py): a Lease round is a
# read and a write, then a pause; the loop's longest silence is one watch stream and its
# server-side timeout, or one CSR's reads and writes.
LEASE_PROMISE = 2 * REQUEST_TIMEOUT + 30.0
LOOP_PROMISE = WATCH_SECONDS + 15.0 + 4 * REQUEST_TIMEOUT


def policy_judge(policy: Any, wall: Callable[[], float]) -> Judge:
    """judge(obj) for a loaded Policy: read the CSR's facts (an unreadable CSR is denied, it
    could never be approved), verify its attestation only where the matching rule looks at it,
    and let the policy decide."""
    from .attestation import verify
    from .facts import FactsError, csr_facts
    from .verdict import NO_PROOF

    def judge(obj: dict) -> tuple[Decision, Any, Any]:
        try:
            facts = csr_facts(obj)
        except FactsError as exc:
            return Decision(DENY, "", f"the request cannot be read: {exc}"), NO_PROOF, None
        attestation = NO_PROOF
        if policy.needs_attestation(facts):
            attestation = verify(facts, policy.attestation, wall())
        return policy.decide(facts, attestation), attestation, facts

    return judge


def policy_file_loader(path: str, wall: Callable[[], float]
                       ) -> Callable[[], tuple[Judge, Any]]:
    """load() for Reloading: (the CSR judge, the access judge or None) of the policy file,
    parsed again only when the file changed (a ConfigMap update swaps a symlink: a new inode)."""
    from .accessrun import access_judge
    from .policy import load_policy_file

    last: dict[str, Any] = {}

    def load() -> tuple[Judge, Any]:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise UsageError(f"--policy: cannot read {path}: {os_reason(exc)}") from None
        signature = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        if last.get("signature") != signature:
            policy = load_policy_file(path)
            last["judges"] = (policy_judge(policy, wall), access_judge(policy, wall))
            last["signature"] = signature
        return last["judges"]

    return load


def connect(options: Options, env: dict[str, str]) -> Callable[[], KubeClient]:
    from ..connect import endpoint as where

    endpoint, auth = where(options.kubeconfig, options.context, env)
    return lambda: KubeClient(endpoint, auth, timeout=REQUEST_TIMEOUT)


class _Stop(Exception):
    pass


def _stop(signum: int, frame: Any) -> None:
    raise _Stop()


def run_approver(options: Options, load: Callable[[], Judge] | None = None,
                 env: dict[str, str] | None = None,
                 access_load: Callable[[], Any] | None = None) -> int:
    """`load` gives the CSR judge; without it both judges come from the policy file.
    `access_load` gives the access judge (None while the policy has no `access:` section)."""
    from .run import Reloading

    env = dict(os.environ) if env is None else env

    def out(line: str) -> None:
        with _OUT:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def warn(line: str) -> None:
        with _OUT:
            sys.stderr.write(f"cred-helper approver: {line}\n")
            sys.stderr.flush()

    if options.dry_run and options.lease_name:
        raise UsageError("--dry-run takes no --lease-name: it changes nothing, and holding "
                         "the Lease would stop the acting approver",
                         "run the dry run beside the broker, without --lease-name")
    if load is None:
        # One reload for both loops: a bad file is said once, and both keep the last good one.
        judges = Reloading(policy_file_loader(options.policy, time.time), warn)
        load = lambda: judges.get()[0]  # noqa: E731
        access_load = access_load or (lambda: judges.get()[1])
    load()  # a policy that does not parse is refused here, at start, before anything is done
    if options.dry_run and access_load is not None and access_load() is not None:
        warn("dry run: access requests are not judged, only CSRs")
        access_load = None
    if access_load is not None and access_load() is not None and not options.ssh_ca:
        raise UsageError("the policy has an access: section, and no --ssh-ca signs for it",
                         "pass --ssh-ca FILE|pkcs11:URI (the SSH user CA the gateway trusts)")
    make_client = connect(options, env)
    identity = options.identity or env.get("POD_NAME") or socket.gethostname()
    health, server = None, None
    if options.health_address:
        from .health import Health, serve

        health = Health(time.monotonic)
        health.beat("approver loop", LOOP_PROMISE)
        server = serve(options.health_address, health)
    elector = None
    if options.lease_name:
        from .leader import Elector, LeaseLock, Timing

        namespace = options.lease_namespace or _own_namespace() or "default"
        if options.lease_duration < 2:
            raise UsageError("--lease-duration must be at least 2 seconds")
        lock = LeaseLock(make_client(), namespace, options.lease_name, identity,
                         Timing.for_duration(options.lease_duration), time.monotonic,
                         time.time)
        elector = Elector(lock, warn, **_health_hooks(health, "lease", LEASE_PROMISE))
        if health:
            health.beat("lease", LEASE_PROMISE)  # due from the start, in case its thread dies
    leading = elector.leading if elector else (lambda: True)
    approver = Approver(make_client(), load, out=out, warn=warn, clock=time.monotonic,
                        sleep=time.sleep, identity=identity, leading=leading,
                        dry_run=options.dry_run,
                        **_health_hooks(health, "approver loop", LOOP_PROMISE))
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        with contextlib.ExitStack() as held:
            loops = [approver]
            if options.ssh_ca and access_load is not None:
                loops.append(_access_broker(options, access_load, make_client, held, env,
                                            out, warn, leading, health))
            if elector:
                elector.start()
            if options.once:
                if elector:
                    deadline = time.monotonic() + options.lease_duration * 2
                    while not elector.leading() and time.monotonic() < deadline:
                        time.sleep(0.1)
                    if not elector.leading():
                        raise CredHelperError(f"lease {options.lease_name} is held by another "
                                              "approver", "it acts; nothing to do here")
                for loop in loops:
                    loop.run_once()
            else:
                _run_all(loops)
    except (_Stop, KeyboardInterrupt):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if elector:
            elector.stop()
        if server:
            server.shutdown()
    return 0


def _health_hooks(health: Any, part: str, promise: float) -> dict[str, Any]:
    """`beat` and `observe` for a part of the approver, reporting to `health` (if served)."""
    if health is None:
        return {}
    return {"beat": lambda: health.beat(part, promise),
            "observe": lambda why: health.failed(why) if why else health.answered()}


_OUT = threading.Lock()  # two loops write lines: one line at a time


def _access_broker(options: Options, access_load: Callable[[], Any],
                   make_client: Callable[[], KubeClient], held: contextlib.ExitStack,
                   env: dict[str, str], out: Callable[[str], None],
                   warn: Callable[[str], None], leading: Callable[[], bool],
                   health: Any = None) -> Any:
    """The access-request loop, with its CA open (a token logged in once) for its lifetime;
    its signs of life go to `health` as the "access loop" (a hung one fails /livez, as a hung
    CSR loop does). Its API answers do not: the CSR loop's say whether the server answers."""
    from .accessguard import Guard
    from .accessrun import AccessBroker
    from .sshsign import open_ca

    ca = held.enter_context(open_ca(options.ssh_ca, options.pkcs11_module,
                                    options.pin_source or "prompt", env, warn))
    client = make_client()
    decider = _own_name(client)
    warn(f"signing access requests as {decider} with the SSH user CA {ca.fingerprint} "
         f"({ca.source})")
    beat = _health_hooks(health, "access loop", LOOP_PROMISE).get("beat", lambda: None)
    beat()  # due from the start, in case its thread dies before its first pass
    return AccessBroker(client, access_load, ca, decider=decider,
                        guard=Guard(make_client()), out=out,
                        warn=warn, clock=time.monotonic, sleep=time.sleep, wall=time.time,
                        leading=leading, beat=beat)


def _own_name(client: KubeClient) -> str:
    """The broker's user name, as the API server knows it (written as `decidedBy`, which
    admission checks against the writer)."""
    review = client.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                         {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    status = review.get("status")
    info = status.get("userInfo") if isinstance(status, dict) else None
    name = info.get("username") if isinstance(info, dict) else None
    if not isinstance(name, str) or not name:
        raise CredHelperError("the API server's SelfSubjectReview named no user for the broker")
    return name


def _run_all(loops: list[Any]) -> None:
    """Each loop in a thread of its own; the first that fails ends the run with its error
    (the main thread stays free for signals)."""
    failed: list[BaseException] = []
    ended = threading.Event()

    def follow(loop: Any) -> None:
        try:
            loop.run(until=ended.is_set)
        except BaseException as exc:  # re-raised in the main thread
            failed.append(exc)
        finally:
            ended.set()

    for loop in loops:
        threading.Thread(target=follow, args=(loop,), daemon=True,
                         name=type(loop).__name__).start()
    try:
        while not ended.wait(0.5):
            pass
    finally:
        ended.set()
    if failed:
        raise failed[0]


def _own_namespace() -> str:
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as fh:
            return fh.read(256).strip()
    except OSError:
        return ""
