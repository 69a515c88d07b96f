"""The approval wait against the local API server going away: it comes back, it does not, or
its watch history is gone. (The same on the real kube-apiserver: tests/realcluster.)"""

from __future__ import annotations

import json
import subprocess
import threading
import time

from cred_helper.issuers.approval import CSR_PATH
from cred_helper.issuers.csr import build_request, csr_object
from cred_helper.keys import software
from cred_helper.kube import BearerAuth, Endpoint, KubeClient
from tests.support.harness import CRED_HELPER, as_kubectl_would, one_error


def start_get(sandbox, *extra: str) -> subprocess.Popen:
    env = dict(sandbox.env, KUBERNETES_EXEC_INFO=json.dumps(sandbox.exec_info()))
    return subprocess.Popen(as_kubectl_would(CRED_HELPER, "get", *sandbox.base_args(*extra)),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)


def wait_for_csr(server, proc: subprocess.Popen, settle: float = 1.5) -> str:
    """The CSR's name, once the command has been waiting on it for `settle` seconds."""
    deadline = time.monotonic() + 30
    while not server.csrs:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no CSR appeared"
        time.sleep(0.05)
    time.sleep(settle)  # inside the watch
    (name,) = server.csrs
    return name


def other_csr(sandbox) -> None:
    """Someone else's CSR, created as the bootstrap user: a change after ours."""
    client = KubeClient(Endpoint(sandbox.server.url, sandbox.server.ca.cert_pem),
                        BearerAuth(sandbox.token))
    request = build_request(software.generate("ed25519"), "bob", ["dev"])
    client.post(CSR_PATH, csr_object("someone-else", request, 600, ["client auth"], ""))


def watches(server) -> list[str]:
    """cred-helper's GETs of the collection: its watches (it lists nothing on a first run)."""
    return [path for method, path, user in server.requests
            if method == "GET" and path.endswith("/certificatesigningrequests")]


def test_a_restart_mid_wait_is_survived_with_one_csr(sandbox):
    server = sandbox.server
    server.auto_approve = None
    proc = start_get(sandbox)
    name = wait_for_csr(server, proc)
    server.restart(down=1.5)  # refused meanwhile; the watch history is gone after
    time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()  # still waiting
    server.approve(name)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["status"]["clientCertificateData"]
    assert server.csr_creations == 1
    assert "cannot reach" not in err
    assert len(watches(server)) >= 2  # the watch was opened again


def test_a_server_that_stays_away_ends_the_wait_with_what_happened(sandbox):
    server = sandbox.server
    server.auto_approve = None
    proc = start_get(sandbox, "--approval-timeout=5s")
    name = wait_for_csr(server, proc, settle=0.5)
    server.stop()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and out == ""
    error = one_error(err)
    assert "cannot reach the API server" in error
    assert f"until the approval wait for {name} ended" in error
    assert "not approved" not in error  # nobody can say that: we could not see
    assert "the next run collects this same request" in err


def test_a_lost_watch_history_is_read_afresh(sandbox):
    """410 Expired (an ERROR event) after the history is gone: one GET, then a watch from
    the version that GET gave."""
    server = sandbox.server
    server.auto_approve = None
    proc = start_get(sandbox)
    name = wait_for_csr(server, proc)
    other_csr(sandbox)  # the history restarts after this change: our version is older
    server.restart()
    threading.Timer(1.0, server.approve, args=(name,)).start()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["status"]["clientCertificateData"]
    gets = [path for method, path, user in server.requests
            if method == "GET" and path.endswith(f"/certificatesigningrequests/{name}")]
    assert len(gets) == 1, server.requests
