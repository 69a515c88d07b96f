"""`cred-helper ssh` end to end, as people and a site run it (tests/support/sshworld.py): the
real kube-apiserver with the kubelet stand-in, the packaged manifests applied by kubectl, the
real broker (`cred-helper approver run --ssh-ca`) approving by rule and signing, the real
gateway (`cred-helper gateway run`), both as processes with their ServiceAccounts' tokens, and
OpenSSH 9.2's `ssh`, which `cred-helper ssh` becomes.

Shown here (issue 27's list, through the client): a command's output, exit code and stdin; a
command outside the grant refused with no call to the API server; RBAC refusing the person,
with the API server's message; the audit log naming the gateway, the person and the command; a
shell recorded and played back; `-L` to a granted port and not another; a session ended
within 5 s of a denial (`cred-helper deny` by another person) or a deletion; plain `ssh`
through the printed Host block. And the request's life as the client sees it: the same
request for `ssh`, `ssh-config` and plain ssh, runs at once making one request, a denial
ending the wait before ssh starts.

A control plane of its own: its broker decides every access request and CSR, which would
disturb the session plane's gateway tests (their requests are decided by the tests)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.realcluster.test_access_requests import BROKER, names, pending_in, user_of
from tests.realcluster.test_gateway import asciinema  # noqa: F401  (a fixture)
from tests.support import gateway as gw
from tests.support import sshworld
from tests.support.asciicast import output
from tests.support.controlplane import free_port
from tests.support.harness import on_terminal, one_error
from tests.support.sshworld import LEDGER_POD, POD, POD_BODY, run

pytestmark = pytest.mark.realcluster


@pytest.fixture(scope="module")
def world(control_plane_bin, kubelet_standin_bin, tmp_path_factory):
    with sshworld.ssh_world(control_plane_bin, kubelet_standin_bin,
                            tmp_path_factory.mktemp("ssh-client")) as made:
        yield made


@pytest.fixture
def alice(world, tmp_path):
    return world.person(tmp_path)


def ssh(alice, *words: str, namespace: str = "payments", input: str | bytes | None = None,
        reason: str = "INC-47", timeout: float = 120) -> subprocess.CompletedProcess:
    return run(alice, *ssh_argv(*words, namespace=namespace, reason=reason), input=input,
               timeout=timeout)


def ssh_argv(*words: str, namespace: str = "payments", reason: str = "INC-47") -> list[str]:
    """`cred-helper ssh` arguments: WORDS are options (-L) up to the first `--`."""
    return ["ssh", "--cluster", "prod", "--namespace", namespace, "--reason", reason, *words]


def approved_name(stderr: str) -> str:
    return re.search(r"access request (\S+) approved by ", stderr).group(1)


# ---- a command: output, exit code, stdin -------------------------------------------------------

def test_a_command_prints_exits_as_in_the_pod_and_reads_stdin(world, alice):
    first = ssh(alice, "--", "exec", POD, "--", "echo", "hi")
    assert (first.returncode, first.stdout) == (0, "hi\n"), first.stderr
    name = approved_name(first.stderr)
    assert f"access request {name} approved by {BROKER}" in first.stderr
    line = world.gateway.wait_trail(lambda t: t.get("request") == name and t.get("verb") == "exec")
    assert (line["argv"], line["pod"], line["exit_code"]) == (["echo", "hi"], POD, 0)
    # Warm: nothing said, the command's own exit code and streams.
    done = ssh(alice, "--", "exec", POD, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    data = "".join(f"line {i} é\n" for i in range(5000))  # more than one read's worth
    done = ssh(alice, "--", "exec", POD, "--", "cat", input=data)
    assert (done.returncode, done.stdout) == (0, data), done.stderr
    done = ssh(alice, "--", "exec", POD, "--", "sh", "-c", "pwd")
    assert done.stdout.strip() == str(world.pod_dirs[POD])  # it ran in the pod
    done = ssh(alice, "--", "exec", POD, "--", "ps", "aux")  # the docs' example
    assert done.returncode == 0 and "PID" in done.stdout.splitlines()[0], done.stderr


# ---- refusals: the grant, then RBAC ------------------------------------------------------------

def test_a_command_outside_the_grant_is_refused_and_the_api_server_saw_no_call(world, alice):
    warm = ssh(alice, "--", "exec", POD, "--", "true")  # the request, approved, signed
    assert warm.returncode == 0, warm.stderr
    name = approved_name(warm.stderr)
    before = gw.audit_ids(world.plane)
    for words, says in [(("exec", POD, "--", "rm", "-rf", "/"), "'rm -rf /' is not in your grant"),
                        (("exec", POD, "--", "sh", "-x"), "'sh -x' is not in your grant"),
                        (("exec", POD, "--", "cat", "/etc/shadow"), "is not in your grant")]:
        done = ssh(alice, "--", *words)
        assert (done.returncode, done.stdout) == (126, ""), done.stderr
        assert says in one_error(done.stderr)
    line = world.gateway.wait_trail(lambda t: t.get("request") == name and
                                    t.get("argv") == ["rm", "-rf", "/"])
    assert (line["decision"], line["exit_code"]) == ("refused", 126)
    time.sleep(1)  # the audit log is written before the answer (blocking); let stragglers land
    assert gw.gateway_calls(world.plane, before) == []


def test_rbac_refusing_the_person_comes_back_with_the_api_servers_message(world, alice):
    """The rule lets alice ask for ledger, and the broker approves; RBAC gives her nothing
    there, and the gateway acts as her."""
    done = ssh(alice, "--", "exec", LEDGER_POD, "--", "echo", "hi", namespace="ledger")
    assert (done.returncode, done.stdout) == (126, "")
    assert done.stderr.splitlines()[-1] == (
        f'cred-helper: error: forbidden: pods "{LEDGER_POD}" is forbidden: User '
        '"alice@example.com" cannot get resource "pods/exec" in API group "" in the '
        'namespace "ledger"')


def test_the_audit_log_names_the_gateway_the_person_and_the_command(world, alice):
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    done = ssh(alice, "--", "exec", POD, "--", "echo", marker)
    assert done.returncode == 0, done.stderr
    request = world.at.request(approved_name(done.stderr))
    (event,) = gw.audited(world.plane, marker)
    assert event["user"]["username"] == gw.GATEWAY_SA
    assert event["impersonatedUser"]["username"] == "alice@example.com"
    # The groups her request carries, as SelfSubjectReview showed her cluster certificate.
    assert event["impersonatedUser"]["groups"] == request["spec"]["groups"]
    assert sorted(request["spec"]["groups"]) == sorted(sshworld.PEOPLES_GROUPS)
    assert (event["objectRef"]["subresource"], event["objectRef"]["namespace"],
            event["objectRef"]["name"]) == ("exec", "payments", POD)
    assert f"command=echo&command={marker}" in event["requestURI"]


# ---- a shell, recorded -------------------------------------------------------------------------

def test_a_shell_session_is_recorded_and_plays_back(world, alice, asciinema):  # noqa: F811
    code, seen = on_terminal(alice.argv(*ssh_argv("--", "shell", POD)),
                             {**alice.env, "TERM": "xterm"}, timeout=60,
                             script=[(b"", b"echo typed-$((6*7)); exit 0\n")], size=(33, 101))
    assert code == 0, seen
    assert "typed-42" in seen
    name = approved_name(seen)
    line = world.gateway.wait_trail(lambda t: t.get("request") == name and
                                    t.get("verb") == "shell")
    cast = Path(line["recording"])
    shown = output(cast.read_text())
    assert "echo typed-$((6*7))" in shown and "typed-42" in shown  # typed, and shown
    if asciinema is not None:
        code, played = on_terminal([str(asciinema), "play", "-s", "50", "-i", "0.1", str(cast)],
                                   env={"PATH": os.environ["PATH"], "TERM": "xterm",
                                        "HOME": str(cast.parent)})
        assert code == 0, played
        assert "echo typed-$((6*7))" in played and "typed-42" in played


# ---- ssh -L ------------------------------------------------------------------------------------

def test_a_forward_reaches_a_granted_port_and_is_refused_on_another(world, alice):
    granted, other, not_granted = free_port(), free_port(), free_port()
    proc = subprocess.Popen(alice.argv(*ssh_argv("-L", f"{granted}:{POD}:{world.pod_port}",
                                                 "-L", f"{other}:{POD}:{not_granted}")),
                            env=alice.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60  # the request is made first
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{granted}/", timeout=10) as resp:
                    body = resp.read()
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the forward never answered"
                time.sleep(0.1)
        assert body == POD_BODY
        assert gw.closed_at_once(other)
    finally:
        # Not SIGTERM: OpenSSH 9.2's client loop can miss a signal that comes while it is busy
        # (a poll() race; seen about once in 20 here), and then waits minutes.
        proc.kill()
        _, err = proc.communicate(timeout=20)
    name = approved_name(err.decode())
    refused = world.gateway.wait_trail(lambda t: t.get("request") == name and
                                       t.get("verb") == "forward" and t.get("port") == not_granted)
    assert refused["decision"] == "refused"
    assert refused["reason"].startswith(f"port {not_granted} is not in your grant")
    assert "administratively prohibited" in err.decode()


# ---- revocation --------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["deny", "delete"])
def test_a_session_ends_within_5_seconds_of_a_denial_or_deletion(world, alice, how):
    warm = ssh(alice, "--", "exec", POD, "--", "true")
    assert warm.returncode == 0, warm.stderr
    name = approved_name(warm.stderr)
    proc = subprocess.Popen(alice.argv(*ssh_argv("--", "exec", POD, "--", "sh", "-c",
                                                 "echo started; sleep 60")),
                            env=alice.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    ended: list[float] = []
    try:
        assert proc.stdout.readline() == "started\n"
        threading.Thread(target=lambda: (proc.wait(), ended.append(time.monotonic())),
                         daemon=True).start()
        deciding = time.monotonic()
        if how == "deny":  # by another person, as the README shows
            decided = run(alice, "deny", name, "--kubeconfig", str(world.at.carol),
                          "--reason", "incident over")
            assert decided.returncode == 0, decided.stderr
            assert f"access request {name} revoked (denied after approval) by " \
                   "carol@example.com" in decided.stderr
        else:
            world.plane.kubectl("delete", "accessrequest", name, "--wait=false")
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert ended and ended[0] - deciding < 5, ended[0] - deciding
    says, at_login = {
        "deny": (f"access request {name} was denied by carol@example.com: incident over",) * 2,
        "delete": (f"access request {name} was deleted", f"there is no access request {name}"),
    }[how]
    assert (proc.returncode, out, err) == (1, "", f"cred-helper: error: session ended: {says}\n")
    # The request lets nobody in again: the certificate still in alice's cache is refused.
    again = ssh(alice, "--", "exec", POD, "--", "true")
    assert again.returncode == 255 and "Permission denied (publickey)" in again.stderr
    refused = world.gateway.wait_trail(lambda t: t.get("request") == name and
                                       t["kind"] == "session" and t["decision"] == "refused")
    assert refused["reason"] == at_login, refused


# ---- one request everywhere --------------------------------------------------------------------

def test_ssh_ssh_config_and_plain_ssh_share_one_request(world, alice, tmp_path):
    at = world.at
    known = names(at)
    first = ssh(alice, "--", "exec", POD, "--", "echo", "hi", "it's me")
    assert (first.returncode, first.stdout) == (0, "hi it's me\n"), first.stderr
    name = approved_name(first.stderr)
    assert names(at) - known == {name}
    line = world.gateway.wait_trail(lambda t: t.get("request") == name and t.get("verb") == "exec")
    assert line["argv"] == ["echo", "hi", "it's me"]
    # ssh-config takes the same request, and plain ssh logs in with the printed block.
    printed = alice.ssh_config("payments")
    assert printed.returncode == 0 and user_of(printed.stdout) == name, printed.stderr
    assert f"using access request {name} (made for: INC-47)" in printed.stderr
    (tmp_path / "ssh_config").write_text(f"Include {alice.ssh_dir}/*.conf\n")
    plain = subprocess.run(["ssh", "-F", str(tmp_path / "ssh_config"), "-o", "BatchMode=yes",
                            "prod-payments", "exec", POD, "--", "echo", "plain"],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert (plain.returncode, plain.stdout) == (0, "plain\n"), plain.stderr
    world.gateway.wait_trail(lambda t: t.get("request") == name and t.get("argv") ==
                             ["echo", "plain"])
    assert names(at) - known == {name}
    # After logout the next run asks again.
    assert alice.run("logout", "--cluster", "prod").returncode == 0
    fresh = ssh(alice, "--", "exec", POD, "--", "echo", "again")
    assert fresh.returncode == 0, fresh.stderr
    assert approved_name(fresh.stderr) != name and len(names(at) - known) == 2


def test_ssh_and_ssh_config_at_once_make_one_request(world, alice):
    at = world.at
    login = alice.run("login", "--cluster", "prod")  # the cluster credential, once
    assert login.returncode == 0, login.stderr
    known = names(at)
    base = ("--cluster", "prod", "--namespace", "payments", "--reason", "INC-48")
    runs = [alice.start("ssh", *base, "--", "exec", POD, "--", "echo", str(i))
            for i in range(4)] + [alice.start("ssh-config", *base) for _ in range(4)]
    outs = [started.communicate(timeout=120) for started in runs]
    assert all(started.returncode == 0 for started in runs), [err for _, err in outs]
    assert sorted(out for out, _ in outs[:4]) == [f"{i}\n" for i in range(4)]
    made = names(at) - known
    assert len(made) == 1
    assert {user_of(out) for out, _ in outs[4:]} == made
    (name,) = made
    assert len([t for t in world.gateway.trail() if t.get("request") == name and
                t.get("verb") == "exec"]) == 4


def test_a_denial_is_one_error_and_ssh_never_starts(world, alice):
    at = world.at
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
    time.sleep(0.5)
    assert not [t for t in world.gateway.trail() if t.get("request") == name]


def test_the_trail_names_the_person_and_the_request(world, alice):
    done = ssh(alice, "--", "whoami")
    assert done.returncode == 0, done.stderr
    name = approved_name(done.stderr)
    assert f"request {name}: namespace payments" in done.stdout
    session = world.gateway.wait_trail(lambda t: t["kind"] == "session" and
                                       t.get("request") == name)
    assert (session["decision"], session["who"]) == ("accepted", "alice@example.com")
    json.dumps(session)


# ---- the docs' commands, as typed --------------------------------------------------------------

def test_the_docs_commands_as_typed(world, alice, tmp_path):
    """docs/access-requests.md's `cred-helper ssh` lines, typed into bash by alice with a
    profile that names the namespace (as the page says the later lines may), against the real
    broker and gateway: the exec runs in the pod, the shell on a terminal, the log's tail comes
    back, the forward reaches the pod's port (local port and pod port this test's own: the
    page's 8080 is an example), and no command gets the gateway's help."""
    from tests.support import doccommands
    from tests.support.harness import BIN

    profile = Path(alice.env["XDG_CONFIG_HOME"]) / "cred-helper" / "config.toml"
    profile.write_text(profile.read_text() + 'namespace = "payments"\n')
    env = {**alice.env, "PATH": f"{BIN}{os.pathsep}{alice.env['PATH']}"}
    local = free_port()
    replace = {"-L 8080:payment-api-7d4f:8080": f"-L {local}:{POD}:{world.pod_port}"}
    (world.pod_dirs[POD] / "app.log").write_text("".join(f"log line {i}\n" for i in range(80)))
    exec_ps, shell, logs, forward, bare = doccommands.block(
        "docs/access-requests.md", "The engineer's session: `cred-helper ssh`").commands
    # docs/ssh-gateway.md opens its sessions with the same line: this run is that page's too
    assert doccommands.block("docs/ssh-gateway.md",
                             "Sessions, commands and exit codes").commands == [exec_ps]

    done = doccommands.run(exec_ps, cwd=tmp_path, env=env, replace=replace)
    assert done.returncode == 0, done.stderr
    assert "PID" in done.stdout.splitlines()[0]  # ps aux ran, in the pod
    name = approved_name(done.stderr)
    line = world.gateway.wait_trail(lambda t: t.get("request") == name and t.get("verb") == "exec")
    assert line["argv"] == ["ps", "aux"]

    code, seen = on_terminal(["bash", "-c", shell], {**env, "TERM": "xterm"}, timeout=60,
                             script=[(b"", b"echo in-the-$((2*3))-shell; exit 0\n")])
    assert code == 0 and "in-the-6-shell" in seen, seen

    done = doccommands.run(logs, cwd=tmp_path, env=env, replace=replace)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"log line {i}" for i in range(30, 80)]

    forwarding = subprocess.Popen(["bash", "-c", forward.replace(*next(iter(replace.items())))],
                                  cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10) as resp:
                    assert resp.read() == POD_BODY
                break
            except OSError:
                assert forwarding.poll() is None, forwarding.communicate()
                assert time.monotonic() < deadline, "the forward never answered"
                time.sleep(0.1)
    finally:
        os.killpg(forwarding.pid, 9)  # ssh can miss a SIGTERM while busy (see above)
        forwarding.communicate(timeout=20)

    done = doccommands.run(bare, cwd=tmp_path, env=env, replace=replace)
    assert done.returncode == 0, done.stderr
    assert "exec POD [-c CONTAINER] -- ARGV..." in done.stdout  # the gateway's help
