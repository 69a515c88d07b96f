"""The README's debug workflow for real: kubectl 1.37 through a cred-helper certificate, with
the on-call Role of `setup --print-rbac`, runs `exec`, `logs` and `port-forward` against pods
on a node (the kubelet stand-in: tests/controlplane/standin) of the real kube-apiserver."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
import uuid

import pytest

from tests.realcluster.test_real_kubectl import run_approving
from tests.support import gateway as gw
from tests.support.controlplane import free_port

pytestmark = pytest.mark.realcluster


@pytest.fixture
def oncall(node_box, node_plane):
    """alice's kubeconfig running cred-helper (her certificate approved by the admin), a
    namespace with the on-call Role bound to her group, and a pod on the node there."""
    ns = gw.namespace(node_plane, f"shop-{uuid.uuid4().hex[:6]}")
    pod_dir = gw.pod(node_plane, ns, "shop-x7k2p")
    kubeconfig = node_box.kubeconfig(node_box.base_args())
    done, _ = run_approving(node_box, node_plane, kubeconfig, "auth", "whoami", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"]["userInfo"]["username"] == "alice@example.com"
    return node_box, kubeconfig, ns, pod_dir


def kubectl(box, plane, kubeconfig, *args, stdin: str = "") -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(box.root),
           "KUBECONFIG": str(kubeconfig)}
    return subprocess.run([plane.kubectl_path, *args], env=env, capture_output=True,
                          text=True, timeout=60, input=stdin)


def test_exec_runs_in_the_pod_with_its_exit_code_and_stdin(oncall, node_plane):
    box, kubeconfig, ns, pod_dir = oncall
    done = kubectl(box, node_plane, kubeconfig, "exec", "-n", ns, "shop-x7k2p", "--",
                   "sh", "-c", "echo hi; pwd; exit 3")
    assert done.stdout.splitlines() == ["hi", str(pod_dir)]
    assert done.returncode == 3
    assert "command terminated with exit code 3" in done.stderr
    done = kubectl(box, node_plane, kubeconfig, "exec", "-i", "-n", ns, "shop-x7k2p", "--",
                   "tr", "a-z", "A-Z", stdin="from stdin\n")
    assert (done.returncode, done.stdout) == (0, "FROM STDIN\n"), done.stderr


def test_logs_tail_and_follow(oncall, node_plane):
    box, kubeconfig, ns, pod_dir = oncall
    (pod_dir / "app.log").write_text("one\ntwo\nthree\n")
    done = kubectl(box, node_plane, kubeconfig, "logs", "-n", ns, "shop-x7k2p", "--tail=2")
    assert (done.returncode, done.stdout) == (0, "two\nthree\n"), done.stderr
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(box.root),
           "KUBECONFIG": str(kubeconfig)}
    follow = subprocess.Popen([node_plane.kubectl_path, "logs", "-f", "-n", ns, "shop-x7k2p"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        assert follow.stdout.readline() == "one\n"
        with open(pod_dir / "app.log", "a") as log:
            log.write("four\n")
        lines = [follow.stdout.readline() for _ in range(3)]
        assert lines == ["two\n", "three\n", "four\n"]
    finally:
        follow.kill()
        follow.wait()


@pytest.fixture
def pod_server():
    with gw.pod_http_server(b"hello from the pod\n") as port:
        yield port


def test_port_forward_reaches_the_pod(oncall, node_plane, pod_server):
    box, kubeconfig, ns, _ = oncall
    local = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(box.root),
           "KUBECONFIG": str(kubeconfig)}
    forward = subprocess.Popen([node_plane.kubectl_path, "port-forward", "-n", ns,
                                "pod/shop-x7k2p", f"{local}:{pod_server}"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "Forwarding from 127.0.0.1" in forward.stdout.readline()
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10) as resp:
            assert resp.read() == b"hello from the pod\n"
    finally:
        forward.kill()
        forward.wait()


def test_the_audit_log_names_the_person_and_the_command(oncall, node_plane):
    box, kubeconfig, ns, _ = oncall
    marker = f"audit-{uuid.uuid4().hex[:8]}"
    done = kubectl(box, node_plane, kubeconfig, "exec", "-n", ns, "shop-x7k2p", "--",
                   "echo", marker)
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 10
    while True:
        events = [e for e in node_plane.audit_events()
                  if e.get("objectRef", {}).get("subresource") == "exec"
                  and marker in e.get("requestURI", "")]
        if events or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert events
    assert events[0]["user"]["username"] == "alice@example.com"
    assert f"command={marker}" in events[0]["requestURI"]


def test_the_docs_commands_as_typed(oncall, node_plane, pod_server, tmp_path):
    """docs/admin/debug-workflow.md's four commands, typed into a shell with alice's
    kubeconfig: only the page's namespace and ports become the test's own."""
    import signal

    from tests.support import doccommands
    from tests.support.harness import BIN

    box, kubeconfig, ns, pod_dir = oncall
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "kubectl").symlink_to(node_plane.kubectl_path)
    env = {"HOME": str(box.root), "KUBECONFIG": str(kubeconfig), "LANG": "C.UTF-8",
           "PATH": f"{tools}{os.pathsep}{BIN}{os.pathsep}/usr/bin:/bin",
           **{k: v for k, v in box.env.items() if k.startswith("XDG_")}}
    local = free_port()
    replace = {" -n shop ": f" -n {ns} ", "8080:8080": f"{local}:{pod_server}"}
    (tmp_path / "notes.txt").write_text("from a file\n")
    (pod_dir / "app.log").write_text("one\ntwo\nthree\n")
    failing, piped, logs, forward = doccommands.block(
        "docs/admin/debug-workflow.md", "exec, logs and port-forward, for real").runnable

    done = doccommands.run(failing, cwd=tmp_path, env=env, replace=replace)
    assert (done.returncode, done.stdout) == (3, "hi\n"), done.stderr
    assert "command terminated with exit code 3" in done.stderr
    done = doccommands.run(piped, cwd=tmp_path, env=env, replace=replace)
    assert (done.returncode, done.stdout) == (0, "FROM A FILE\n"), done.stderr
    done = doccommands.run(logs, cwd=tmp_path, env=env, replace=replace)
    assert (done.returncode, done.stdout) == (0, "two\nthree\n"), done.stderr
    forwarding = doccommands.start(forward, cwd=tmp_path, env=env, replace=replace)
    try:
        assert "Forwarding from 127.0.0.1" in forwarding.stdout.readline()
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10) as resp:
            assert resp.read() == b"hello from the pod\n"
    finally:
        os.killpg(forwarding.pid, signal.SIGKILL)
        forwarding.wait()
