"""Which kubectl versions run cred-helper, measured against the real kube-apiserver 1.37: each
kubectl on this machine (1.27 to 1.33) and the one built with the plane (1.37), through the
same exec entry (client.authentication.k8s.io/v1, interactiveMode, provideClusterInfo), with an
Ed25519 and a P-256 client key. The first command issues (a person approves); every other
kubectl is served the cached certificate and must accept it. docs/compatibility.md states
what this shows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.realcluster.test_real_kubectl import run_approving

pytestmark = pytest.mark.realcluster

SDK = Path("/usr/lib/google-cloud-sdk/bin")
KUBECTLS = sorted(SDK.glob("kubectl.1.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))


@pytest.mark.parametrize("key", ["ed25519", "p256"])
def test_every_kubectl_here_runs_the_plugin(box, control_plane, key):
    kubeconfig = box.kubeconfig(box.base_args(f"--key={key}"))
    issued, _ = run_approving(box, control_plane, kubeconfig, "get", "--raw", "/version")
    assert issued.returncode == 0, issued.stderr
    worked, failed = [], {}
    for kubectl in [*KUBECTLS, Path(control_plane.kubectl_path)]:
        if not os.access(kubectl, os.X_OK):
            continue
        done = box.kubectl(str(kubectl), kubeconfig, "get", "--raw", "/version")
        if done.returncode == 0 and json.loads(done.stdout)["gitVersion"] == "v1.37.2":
            worked.append(kubectl.name)
        else:
            failed[kubectl.name] = done.stderr[-300:]
    assert failed == {}
    assert worked[-1] == "kubectl"  # 1.37; the older ones where this machine has them
    assert not KUBECTLS or worked[0] == "kubectl.1.27"
