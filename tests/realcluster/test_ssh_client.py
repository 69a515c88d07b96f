"""`cred-helper ssh` on the real kube-apiserver with the real broker (`cred-helper approver run
--ssh-ca`, as its ServiceAccount, packaging/kubernetes and `setup --print-rbac` applied as a
user would): the request made, approved by rule and signed, then the system's ssh to the
gateway with the command's words, its output and exit code; the same request for `ssh-config`
and plain ssh; runs of both at once make one request; a denial ends it before ssh starts.

The gateway here is tests/support/sshpeer.py (asyncssh trusting the broker's SSH user CA,
answering `exec` as the gateway and the kubelet stand-in do). Once `cred-helper gateway run` is
merged, the `gateway` fixture is the one place to change: the real gateway with this plane's
CRD, the stand-in and a pod payment-api-7d4f; the grant below already holds what the tests run.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.realcluster import test_access_requests as access
from tests.realcluster.test_access_requests import (
    BROKER,
    POLICY,
    Person,
    install,
    names,
    pending_in,
    user_of,
)
from tests.support.controlplane import ControlPlane
from tests.support.harness import one_error
from tests.support.sshpeer import SshPeer

pytestmark = pytest.mark.realcluster

POD = "payment-api-7d4f"
# The payments rule of the access-request tests, granting the commands run here.
GRANTING = POLICY.replace("exec: [[ps, aux]]", 'exec: [[ps, aux], [echo, "**"], [sh, -c, "**"]]')


broker = access.broker  # the broker fixture of the access-request tests, on this plane


@pytest.fixture(scope="module")
def installed(control_plane_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("ssh-client")
    os.chmod(root, 0o700)
    with ControlPlane(control_plane_bin) as plane:
        yield install(plane, root, GRANTING)


@pytest.fixture
def gateway(installed):
    """THE FIXTURE TO SWAP for the real gateway (see the module's text)."""
    with SshPeer(installed.ca_pub.decode(), ports=[8080]) as peer:
        yield peer


def ssh(alice: Person, namespace: str, *words: str, **kw) -> subprocess.CompletedProcess:
    return alice.run("ssh", "--cluster", "prod", "--namespace", namespace, "--pod", POD,
                     "--reason", "INC-47", "--", *words, **kw)


def approved_name(stderr: str) -> str:
    return re.search(r"access request (\S+) approved by ", stderr).group(1)


def test_a_request_then_the_command_then_the_same_request_everywhere(installed, broker,
                                                                     gateway, tmp_path):
    at = installed
    alice = Person(at, tmp_path, gateway.port, gateway.host_key_line)
    known = names(at)
    first = ssh(alice, "payments", "exec", POD, "--", "echo", "hi", "it's me")
    assert (first.returncode, first.stdout) == (0, "hi it's me\n"), first.stderr
    name = approved_name(first.stderr)
    assert f"access request {name} approved by {BROKER}" in first.stderr
    assert names(at) - known == {name}
    assert gateway.sessions[-1].login == name
    assert gateway.sessions[-1].words == ["exec", POD, "--", "echo", "hi", "it's me"]
    # Warm: no request, nothing said, the remote exit code.
    again = ssh(alice, "payments", "exec", POD, "--", "sh", "-c", "exit 3")
    assert (again.returncode, again.stderr) == (3, ""), again.stderr
    assert names(at) - known == {name} and gateway.sessions[-1].login == name
    # ssh-config takes the same request, and plain ssh logs in with it.
    printed = alice.ssh_config("payments", "--pod", POD)
    assert printed.returncode == 0 and user_of(printed.stdout) == name, printed.stderr
    assert f"using access request {name} (made for: INC-47)" in printed.stderr
    (tmp_path / "ssh_config").write_text(f"Include {alice.ssh_dir}/*.conf\n")
    plain = subprocess.run(["ssh", "-F", str(tmp_path / "ssh_config"), "-o", "BatchMode=yes",
                            "prod-payments", "exec", POD, "--", "echo", "plain"],
                           capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
    assert (plain.returncode, plain.stdout) == (0, "plain\n"), plain.stderr
    assert gateway.sessions[-1].login == name
    # ...and after logout, the next run asks again.
    assert alice.run("logout", "--cluster", "prod").returncode == 0
    fresh = ssh(alice, "payments", "exec", POD, "--", "echo", "again")
    assert fresh.returncode == 0, fresh.stderr
    assert approved_name(fresh.stderr) != name and len(names(at) - known) == 2


def test_ssh_and_ssh_config_at_once_make_one_request(installed, broker, gateway, tmp_path):
    at = installed
    alice = Person(at, tmp_path, gateway.port, gateway.host_key_line)
    login = alice.run("login", "--cluster", "prod")  # the cluster credential, once
    assert login.returncode == 0, login.stderr
    known = names(at)
    base = ("--cluster", "prod", "--namespace", "payments", "--pod", POD, "--reason", "INC-48")
    runs = [alice.start("ssh", *base, "--", "exec", POD, "--", "echo", str(i))
            for i in range(4)] + [alice.start("ssh-config", *base) for _ in range(4)]
    outs = [run.communicate(timeout=120) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err for _, err in outs]
    assert sorted(out for out, _ in outs[:4]) == [f"{i}\n" for i in range(4)]
    made = names(at) - known
    assert len(made) == 1
    assert {user_of(out) for out, _ in outs[4:]} == made
    assert {s.login for s in gateway.sessions[-4:]} == made


def test_a_denial_is_one_error_and_ssh_never_starts(installed, broker, gateway, tmp_path):
    at = installed
    alice = Person(at, tmp_path, gateway.port, gateway.host_key_line)
    known = names(at)
    waiting = alice.start("ssh", "--cluster", "prod", "--namespace", "shop", "--reason",
                          "INC-49", "--", "pods")
    name = pending_in(at, "shop", known)
    carol = alice.run("deny", name, "--kubeconfig", str(at.carol), "--reason", "not now")
    assert carol.returncode == 0, carol.stderr
    out, err = waiting.communicate(timeout=60)
    assert (waiting.returncode, out) == (1, "")
    assert one_error(err[err.index("cred-helper: error: "):]) == (
        f"cred-helper: error: access request {name} was denied by carol@example.com: not now")
    assert gateway.sessions == []


def test_the_docs_commands_as_typed(installed, broker, gateway, tmp_path):
    """docs/access-requests.md's `cred-helper ssh` lines, typed by alice with a profile that
    names the namespace (as the page says the later lines may): the exec runs in the pod, the
    forward reaches the pod's port (its local port this test's own), and no command shows who
    logged in. `logs` and `shell` are listed as not runnable against this stand-in (see
    NOT_RUNNABLE in tests/support/doccommands.py)."""
    import socket
    import threading
    import time
    import urllib.request

    from tests.support import doccommands
    from tests.support.controlplane import free_port
    from tests.support.harness import BIN

    alice = Person(installed, tmp_path, gateway.port, gateway.host_key_line)
    profile = tmp_path / "config" / "cred-helper" / "config.toml"
    profile.write_text(profile.read_text() + 'namespace = "payments"\n')
    env = {**alice.env, "PATH": f"{BIN}{os.pathsep}{alice.env['PATH']}"}
    local = free_port()
    replace = {"-L 8080:payment-api-7d4f:8080": f"-L {local}:payment-api-7d4f:8080"}
    exec_ps, forward, who = doccommands.block(
        "docs/access-requests.md", "The engineer's session: `cred-helper ssh`").runnable

    done = doccommands.run(exec_ps, cwd=tmp_path, env=env, replace=replace)
    assert done.returncode == 0, done.stderr
    assert "PID" in done.stdout.splitlines()[0]  # ps aux ran, in the pod's directory
    assert gateway.sessions[-1].words == ["exec", POD, "--", "ps", "aux"]

    body = b"the pod's port\n"
    with socket.create_server(("127.0.0.1", 8080)) as pod_port:  # the stand-in forwards here
        def answer() -> None:
            conn, _ = pod_port.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(body), body))
        threading.Thread(target=answer, daemon=True).start()
        forwarding = doccommands.start(forward, cwd=tmp_path, env=env, replace=replace)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=5) as r:
                        assert r.read() == body
                    break
                except OSError:
                    assert time.monotonic() < deadline and forwarding.poll() is None
                    time.sleep(0.2)
        finally:
            os.killpg(forwarding.pid, 15)
            forwarding.wait(15)

    done = doccommands.run(who, cwd=tmp_path, env=env, replace=replace)
    assert done.returncode == 0, done.stderr
    assert gateway.sessions[-1].line is None  # no command: the gateway's answer to none
