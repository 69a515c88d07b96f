"""The SSH gateway end to end: OpenSSH 9.2's `ssh` with a request's certificate, `cred-helper
gateway run` as a process with its ServiceAccount's token, the real kube-apiserver, pods on the
kubelet stand-in. What runs, as whom, what is refused before any API call, and the trail."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support import gateway as gw
from tests.support.asciicast import output, parse_v2
from tests.support.controlplane import free_port, rbac_rule, role_and_binding
from tests.support.harness import on_terminal

pytestmark = pytest.mark.realcluster


@pytest.fixture(scope="module")
def world(gateway_world):
    return gateway_world


def everything(world) -> dict:
    return gw.grant(world.payments, exec_patterns=(
        ("echo", "**"), ("sh", "-c", "*"), ("cat",), ("pwd",)), shell=True)


def test_exec_prints_and_exits_as_the_command_did(world):
    name, key = world.request(everything(world))
    done = gw.ssh(world.gateway, key, name, "exec", "api-1", "--", "echo", "hi")
    assert (done.returncode, done.stdout, done.stderr) == (0, "hi\n", "")
    done = gw.ssh(world.gateway, key, name, "exec", "api-1", "--", "sh", "-c",
                  "'echo out; echo err >&2; exit 3'")
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    done = gw.ssh(world.gateway, key, name, "exec", "api-1", "--", "pwd")
    assert done.stdout.strip() == str(world.pod_dirs["api-1"])  # it ran in the pod


def test_stdin_reaches_the_command(world):
    name, key = world.request(everything(world))
    data = "".join(f"line {i} é\n" for i in range(5000))  # more than one read's worth
    done = gw.ssh(world.gateway, key, name, "exec", "api-1", "--", "cat", stdin=data)
    assert done.returncode == 0, done.stderr
    assert done.stdout == data


def test_a_command_outside_the_grant_is_refused_before_any_api_call(world):
    grant = gw.grant(world.payments, pods=("api-*",), exec_patterns=(("echo", "**"),))
    name, key = world.request(grant)
    before = gw.audit_ids(world.plane)
    for command, says in [
        (("exec", "api-1", "--", "rm", "-rf", "/"), "'rm -rf /' is not in your grant"),
        (("exec", "db-0", "--", "echo", "hi"), "pod 'db-0' is not in your grant"),
        (("shell", "api-1"), "a shell is not in your grant"),
        (("exec", "api-1", "--", "sh", "-c", "'echo hi'"), "is not in your grant"),
    ]:
        done = gw.ssh(world.gateway, key, name, *command)
        assert done.returncode == 126, done.stderr
        assert done.stdout == ""
        first, hint = done.stderr.splitlines()
        assert first.startswith("cred-helper: error: ") and says in first
        assert hint.startswith("hint: ")
    # A refusal is a trail line, and nothing reached the API server for it.
    refused = world.gateway.wait_trail(lambda t: t.get("request") == name and
                                       t.get("pod") == "db-0")
    assert refused["decision"] == "refused" and refused["exit_code"] == 126
    time.sleep(1)  # audit is blocking, but let any straggler land
    assert gw.gateway_calls(world.plane, before) == []


def test_rbac_refusing_the_person_comes_back_with_the_api_servers_message(world):
    name, key = world.request(gw.grant(world.ledger, exec_patterns=(("echo", "**"),)))
    done = gw.ssh(world.gateway, key, name, "exec", "ledger-0", "--", "echo", "hi")
    assert done.returncode == 126
    assert done.stderr.splitlines() == [
        'cred-helper: error: forbidden: pods "ledger-0" is forbidden: User '
        '"alice@example.com" cannot get resource "pods/exec" in API group "" in the '
        'namespace "ledger"']
    done = gw.ssh(world.gateway, key, name, "pods")
    assert done.returncode == 126
    assert 'cannot list resource "pods"' in done.stderr


def test_the_audit_log_names_the_gateway_the_person_and_the_command(world):
    name, key = world.request(everything(world))
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    done = gw.ssh(world.gateway, key, name, "exec", "api-1", "--", "echo", marker)
    assert done.returncode == 0, done.stderr
    (event,) = gw.audited(world.plane, marker)
    assert event["user"]["username"] == gw.GATEWAY_SA
    assert event["impersonatedUser"]["username"] == "alice@example.com"
    assert event["impersonatedUser"]["groups"] == ["oncall", "system:authenticated"]
    assert event["objectRef"] == {**event["objectRef"], "resource": "pods",
                                  "subresource": "exec", "namespace": "payments",
                                  "name": "api-1"}
    assert f"command=echo&command={marker}" in event["requestURI"]
    assert event["level"] == "RequestResponse"  # cred-helper's audit policy for pods/exec
    # The gateway's own trail says the same, with the session and the exit code.
    line = world.gateway.wait_trail(lambda t: t.get("argv") == ["echo", marker])
    assert (line["who"], line["request"], line["pod"], line["exit_code"]) == \
        ("alice@example.com", name, "api-1", 0)


def test_pods_logs_whoami_and_help(world):
    grant = gw.grant(world.payments, pods=("api-*",))
    name, key = world.request(grant)
    done = gw.ssh(world.gateway, key, name, "pods")
    assert done.returncode == 0
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["NAME", "api-1", "api-2"]
    (world.pod_dirs["api-2"] / "app.log").write_text("a\nb\nc\n")
    done = gw.ssh(world.gateway, key, name, "logs", "api-2", "--tail", "2")
    assert (done.returncode, done.stdout) == (0, "b\nc\n")
    done = gw.ssh(world.gateway, key, name, "whoami")
    assert done.stdout.startswith("you are alice@example.com (groups: oncall, "
                                  "system:authenticated)\n")
    assert f"request {name}: namespace payments" in done.stdout
    done = gw.ssh(world.gateway, key, name)  # no command: help
    assert done.returncode == 0 and "exec POD [-c CONTAINER] -- ARGV..." in done.stdout
    done = gw.ssh(world.gateway, key, name, "frobnicate")
    assert done.returncode == 2 and "unknown command 'frobnicate'" in done.stderr


def test_logs_follow_streams_until_the_client_leaves(world):
    name, key = world.request(gw.grant(world.payments))
    log = world.pod_dirs["api-1"] / "app.log"
    log.write_text("first\n")
    proc = subprocess.Popen(gw.ssh_argv(world.gateway, key, name, "logs", "api-1", "-f"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout.readline() == "first\n"
        with log.open("a") as fh:
            fh.write("second\n")
        assert proc.stdout.readline() == "second\n"
    finally:
        proc.terminate()
        proc.wait(10)
    line = world.gateway.wait_trail(lambda t: t.get("request") == name and t["kind"] == "command")
    assert line["verb"] == "logs" and line["bytes_out"] == len("first\nsecond\n")


@pytest.fixture(scope="module")
def asciinema(tmp_path_factory):
    """asciinema (PyPI) in a venv of its own; None where it cannot be installed, and the
    recordings are then only read strictly to the v2 spec."""
    venv = tmp_path_factory.mktemp("asciinema")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "asciinema==2.4.0"],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"asciinema cannot be installed: {done.stderr[-500:]}")
        return None
    return venv / "bin" / "asciinema"


def test_a_shell_session_is_recorded_and_plays_back(world, asciinema):
    name, key = world.request(everything(world))
    typed = "echo typed-$((6*7))\nexit 0\n"
    done = gw.ssh(world.gateway, key, name, "shell", "api-1", stdin=typed, tty=True)
    assert done.returncode == 0, done.stderr
    assert "typed-42" in done.stdout
    line = world.gateway.wait_trail(lambda t: t.get("request") == name and t.get("verb") ==
                                    "shell")
    cast = Path(line["recording"])
    header, _ = parse_v2(cast.read_text())
    assert header["title"] == f"alice@example.com on {name}"
    shown = output(cast.read_text())
    assert "echo typed-$((6*7))" in shown  # what was typed, as the terminal echoed it
    assert "typed-42" in shown  # and what it printed
    if asciinema is not None:
        code, seen = on_terminal([str(asciinema), "play", "-s", "50", "-i", "0.1", str(cast)],
                                 env={"PATH": os.environ.get("PATH", ""), "TERM": "xterm",
                                      "HOME": str(cast.parent)})
        assert code == 0, seen
        assert "echo typed-$((6*7))" in seen and "typed-42" in seen
    # A shell without a terminal is refused (the grant allows it: the terminal is missing).
    done = gw.ssh(world.gateway, key, name, "shell", "api-1")
    assert done.returncode == 2 and "shell needs a terminal" in done.stderr


def test_shell_needs_the_grant_and_the_certificates_pty(world):
    # The broker gives permit-pty only with a shell: without it ssh gets no terminal at all.
    name, key = world.request(gw.grant(world.payments, exec_patterns=(("echo", "**"),)))
    done = gw.ssh(world.gateway, key, name, "shell", "api-1", tty=True)
    assert done.returncode == 255 and "PTY allocation request failed" in done.stderr
    done = gw.ssh(world.gateway, key, name, "shell", "api-1")
    assert done.returncode == 126 and "a shell is not in your grant" in done.stderr


def _wait_listening(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"ssh -L did not listen: {proc.communicate()}")


def test_ssh_forwarding_reaches_a_granted_port_and_no_other(world):
    with gw.pod_http_server(b"hello through the gateway\n") as granted:
        _forward(world, granted)


def _forward(world, granted: int) -> None:
    other = free_port()
    name, key = world.request(gw.grant(world.payments, pods=("api-1",), ports=(granted,)))
    local, local_other, local_pod = free_port(), free_port(), free_port()
    argv = gw.ssh_argv(world.gateway, key, name, options=(
        "-N", "-o", "ExitOnForwardFailure=yes",
        "-L", f"{local}:api-1:{granted}", "-L", f"{local_other}:api-1:{other}",
        "-L", f"{local_pod}:api-2:{granted}"))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        _wait_listening(local, proc)
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10) as resp:
            assert resp.read() == b"hello through the gateway\n"
        for port in (local_other, local_pod):
            assert gw.closed_at_once(port)  # ssh's channel was refused
    finally:
        proc.kill()  # ssh -N sometimes outlives a SIGTERM for seconds: not what is tested
        proc.communicate(timeout=10)
    world.gateway.wait_trail(lambda t: t.get("request") == name and t.get("decision") ==
                             "allowed" and t.get("verb") == "forward")
    lines: dict[tuple[str, int], list[dict]] = {}
    for t in world.gateway.trail():
        if t.get("request") == name and t.get("verb") == "forward":
            lines.setdefault((t["pod"], t["port"]), []).append(t)
    assert lines.keys() == {("api-1", granted), ("api-1", other), ("api-2", granted)}
    # ssh -L's own probe above was a connection too; the HTTP one carried the bytes.
    assert {t["decision"] for t in lines["api-1", granted]} == {"allowed"}
    assert max(t["bytes_out"] for t in lines["api-1", granted]) > 26
    assert lines["api-1", other][0]["reason"].startswith(f"port {other} is not in your grant")
    assert lines["api-2", granted][0]["reason"].startswith("pod 'api-2' is not in your grant")


@contextlib.contextmanager
def _forwarding(world, pod_port: int):
    """`ssh -N -L LOCAL:api-1:POD_PORT` with a request granting that port, listening: yields
    the request's name and LOCAL."""
    name, key = world.request(gw.grant(world.payments, pods=("api-1",), ports=(pod_port,)))
    local = free_port()
    proc = subprocess.Popen(gw.ssh_argv(world.gateway, key, name, options=(
        "-N", "-o", "ExitOnForwardFailure=yes", "-L", f"{local}:api-1:{pod_port}")),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        _wait_listening(local, proc)
        yield name, local
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_a_forwarded_client_that_stops_sending_gets_the_whole_answer_and_a_trail_line(world):
    """A client that sends, then shuts down its writing half (`nc -N`, an HTTP/1.0 client),
    still gets everything the pod answers, however late; and the forwarded connection has its
    trail line, with its bytes, when the pod closes first."""
    def two_parts(conn) -> None:
        asked = conn.connection.recv(4096)
        conn.wfile.write(b"echo:")
        conn.wfile.flush()
        time.sleep(0.5)  # the client's end of input reaches the gateway long before this
        conn.wfile.write(asked)

    from tests.support.tcp import serve

    pod_port = serve(two_parts)
    granted = pod_port.server_address[1]
    with _forwarding(world, granted) as (name, local):
        answers = []
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", local), timeout=10) as s:
                s.sendall(b"hello")
                s.shutdown(socket.SHUT_WR)
                got = b""
                while chunk := s.recv(4096):
                    got += chunk
                answers.append(got)
    pod_port.shutdown()
    assert answers == [b"echo:hello"] * 3
    deadline = time.monotonic() + 10
    while True:  # _wait_listening's probe is a forwarded connection too, with no bytes
        carried = [t for t in world.gateway.trail() if t.get("request") == name and
                   t.get("verb") == "forward" and t.get("bytes_in")]
        if len(carried) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(t["decision"], t["port"], t["bytes_in"], t["bytes_out"]) for t in carried] == \
        [("allowed", granted, 5, 10)] * 3, world.gateway.trail()


def test_a_forward_to_a_port_nothing_listens_on_ends_with_a_trail_line_saying_why(world):
    closed = free_port()  # granted, but nothing in the pod listens there
    with _forwarding(world, closed) as (name, local):
        assert gw.closed_at_once(local)
        line = world.gateway.wait_trail(lambda t: t.get("request") == name and
                                        t.get("verb") == "forward" and t.get("reason"))
    assert (line["decision"], line["port"], line["bytes_out"]) == ("allowed", closed, 0)
    assert "connection refused" in line["reason"].lower(), line


def test_the_session_line(world):
    name, key = world.request(everything(world))
    gw.ssh(world.gateway, key, name, "exec", "api-1", "--", "echo", "x")
    line = world.gateway.wait_trail(lambda t: t["kind"] == "session" and
                                    t.get("request") == name)
    assert line["decision"] == "accepted" and line["who"] == "alice@example.com"
    assert line["commands"] == 1 and line["bytes_out"] == 2
    assert line["client"].startswith("127.0.0.1:") and line["start"] <= line["end"]
    json.dumps(line)


def test_a_role_with_create_alone_on_pods_exec_refuses_the_gateways_websocket(world):
    """Why the on-call Role grants get beside create on pods/exec: a WebSocket exec is a GET,
    checked as get (and, since 1.35, as create too). kubectl falls back to SPDY (a POST,
    create alone); the gateway speaks only WebSocket."""
    ns = gw.namespace(world.plane, f"create-only-{uuid.uuid4().hex[:6]}", oncall_group=None)
    world.plane.kubectl("apply", "-f", "-", stdin=role_and_binding(
        "exec-create-only", [rbac_rule("", ["pods"], ["get"]),
                             rbac_rule("", ["pods/exec"], ["create"])],
        "Group", "oncall", namespace=ns))
    gw.pod(world.plane, ns, "api-1")
    name, key = world.request(gw.grant(ns, exec_patterns=(("echo", "**"),)))
    done = gw.ssh(world.gateway, key, name, "exec", "api-1", "--", "echo", "hi")
    assert done.returncode == 126
    assert 'cannot get resource "pods/exec"' in done.stderr
    # kubectl with the same Role gets through, over SPDY.
    kubectl = gw.kubectl_as(world.plane, world.alice, "exec", "-n", ns, "api-1", "--",
                            "echo", "hi")
    assert (kubectl.returncode, kubectl.stdout) == (0, "hi\n"), kubectl.stderr


async def _shell_with_resize(world, key: gw.Key, name: str) -> str:
    async with await gw.connect(world.gateway, key, name) as conn:
        proc = await conn.create_process("shell api-1", term_type="xterm",
                                         term_size=(100, 30), encoding=None)
        proc.stdin.write(b"stty size\n")
        await asyncio.sleep(1)
        proc.change_terminal_size(120, 40)
        await asyncio.sleep(0.5)
        proc.stdin.write(b"stty size; exit 0\n")
        out = await asyncio.wait_for(proc.stdout.read(), 20)
        await proc.wait_closed()
        return out.decode()


def test_a_shells_window_size_follows_the_client(world):
    name, key = world.request(everything(world))
    shown = asyncio.run(_shell_with_resize(world, key, name))
    assert "30 100" in shown and "40 120" in shown
    line = world.gateway.wait_trail(lambda t: t.get("request") == name and t.get("verb") ==
                                    "shell")
    header, events = parse_v2(Path(line["recording"]).read_text())
    assert (header["width"], header["height"]) == (100, 30)
    assert ("r", "120x40") in [(code, data) for _, code, data in events]


def test_a_container_is_chosen_with_c(world):
    directory = gw.pod(world.plane, world.payments, f"multi-{uuid.uuid4().hex[:6]}",
                       containers=("app", "sidecar"))
    pod = directory.name
    name, key = world.request(gw.grant(world.payments, exec_patterns=(("sh", "-c", "*"),)))
    done = gw.ssh(world.gateway, key, name, "exec", pod, "-c", "sidecar", "--", "sh", "-c",
                  "'echo $CONTAINER_NAME'")
    assert (done.returncode, done.stdout) == (0, "sidecar\n"), done.stderr
    (directory / "sidecar.log").write_text("from the sidecar\n")
    done = gw.ssh(world.gateway, key, name, "logs", pod, "-c", "sidecar")
    assert done.stdout == "from the sidecar\n"
    done = gw.ssh(world.gateway, key, name, "logs", pod, "-c", "nope")
    assert done.returncode == 1 and "nope" in done.stderr


def test_the_docs_plain_openssh_commands_as_typed(world, tmp_path):
    """docs/ssh-gateway.md's two commands, typed by alice: her request's certificate from its
    status, then plain ssh with her key and it. Her ~/.ssh/config points the page's gateway
    name at this one and pins its host key, as a person's would; the page's request and pod
    names become this test's own."""
    import shutil

    from tests.support import doccommands
    from tests.support.harness import BIN

    name, key = world.request(everything(world) | {"exec": [["ps", "aux"]]})
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    shutil.copy(key.path, home / ".ssh" / name)
    (home / ".ssh" / name).chmod(0o600)
    (home / ".ssh" / "config").write_text(
        f"Host gateway.example.com\n  HostName 127.0.0.1\n  Port {world.gateway.port}\n"
        f"  UserKnownHostsFile {world.gateway.known_hosts}\n  StrictHostKeyChecking yes\n"
        "  BatchMode yes\n  LogLevel ERROR\n")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "kubectl").symlink_to(world.plane.kubectl_path)
    env = {"HOME": str(home), "PATH": f"{tools}{os.pathsep}{BIN}{os.pathsep}/usr/bin:/bin",
           "KUBECONFIG": str(world.alice.kubeconfig), "LANG": "C.UTF-8"}
    get, login = doccommands.block("docs/ssh-gateway.md", "Sessions, commands and exit codes",
                                   "sh", 1).runnable
    # ssh reads ~/.ssh/config from the passwd entry's home, never $HOME: -F names alice's
    replace = {"ar-7k2xq@": f"-F {home / '.ssh' / 'config'} ar-7k2xq@",
               "ar-7k2xq": name, "payment-api-7d4f": "api-1"}
    done = doccommands.run(get, cwd=tmp_path, env=env, replace=replace)
    assert done.returncode == 0, done.stderr
    assert (home / ".ssh" / f"{name}-cert.pub").read_text().startswith("ssh-ed25519-cert")
    done = doccommands.run(login, cwd=tmp_path, env=env, replace=replace)
    assert done.returncode == 0, done.stderr
    assert "PID" in done.stdout  # ps aux ran in the pod (its header line)
