"""The whole SSH flow on a real control plane, set up as a site runs it, for the client's end-to-end
tests and bench/gateway.py:

- kube-apiserver with cred-helper's audit policy (`setup --print-rbac --audit-policy`: exec and
  port-forward in full) and, at Metadata, every request of the people and of the gateway; the
  kubelet stand-in as its node, with pods in `payments` and in `ledger`;
- packaging/kubernetes (the CRD, the admission policies, the broker's RBAC) and `setup
  --print-rbac --group oncall --approver-group sre --namespace payments` applied by kubectl
  (tests/realcluster/test_access_requests.install): `ledger` has no on-call Role, so RBAC
  refuses the people there;
- packaging/kubernetes/gateway applied with `kubectl apply -k`, with the two files a site puts
  beside it (its host key, the broker's SSH user CA) and its ClusterRole's impersonable groups
  edited to the groups the people hold, as its comment asks;
- the broker (`cred-helper approver run --ssh-ca`, as its ServiceAccount) with a policy whose
  `access:` rules approve payments and ledger by rule (granting what the tests run, a shell and
  one port), and leave `shop` to a person;
- the gateway (`cred-helper gateway run`, as its ServiceAccount, with the site's host key and
  CA file), and alice, whose profile names it (tests/realcluster/test_access_requests.Person:
  her bootstrap token, then a cluster certificate the broker approves);
- carol (group sre), who decides requests with her own client certificate.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from . import gateway as gw
from .controlplane import BOOTSTRAP, ControlPlane

POD = "payment-api-7d4f"
LEDGER_POD = "ledger-0"
# What the people's requests carry (SelfSubjectReview of alice's cluster certificate, whose
# subject holds her bootstrap identity's groups) and the site lists in the gateway's RBAC.
PEOPLES_GROUPS = (*BOOTSTRAP[1], "system:authenticated")


def policy(port: int) -> str:
    """The access-request tests' policy (CSRs of on-call people approved, `shop` decided by a
    person), its approving rule for payments and ledger granting the commands the tests run, a
    shell and `port`."""
    from tests.realcluster.test_access_requests import POLICY

    doc = yaml.safe_load(POLICY)
    rules = doc["access"]["rules"]
    by_rule = next(rule for rule in rules if rule["action"] == "approve")
    by_rule.pop("pods")
    by_rule.update(name="on-call", namespaces=["payments", "ledger"], grant={
        "commands": ["pods", "logs", "exec"], "shell": True, "ports": [port],
        "exec": [["ps", "aux"], ["echo", "**"], ["sh", "-c", "**"], ["cat"], ["true"],
                 ["sleep", "*"]]})
    return yaml.safe_dump(doc, sort_keys=False)


@dataclass
class SshWorld:
    at: object  # tests/realcluster/test_access_requests.Installed
    broker: object  # ...Broker
    gateway: gw.Gateway
    pod_port: int  # the granted port: an HTTP server answering `POD_BODY`
    pod_dirs: dict[str, Path]

    @property
    def plane(self) -> ControlPlane:
        return self.at.plane  # type: ignore[attr-defined]

    def person(self, home: Path):
        """Alice at her terminal, her profile `prod` naming this gateway."""
        from tests.realcluster.test_access_requests import Person

        os.chmod(home, 0o700)
        return Person(self.at, home, self.gateway.port, self.gateway.host_public)


POD_BODY = b"from the pod's port\n"


def install_gateway(plane: ControlPlane, root: Path, ca_public: bytes,
                    groups: tuple[str, ...]) -> Path:
    """packaging/kubernetes/gateway as a site applies it: a copy with its host key and the SSH
    user CA beside the kustomization, the groups its people hold in the ClusterRole. Returns
    the host key's file."""
    site = root / "gateway-site"
    shutil.copytree(gw.GATEWAY_MANIFESTS, site)
    key = site / "ssh_host_ed25519_key"
    key.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()))
    key.chmod(0o600)
    (site / "user_ca.pub").write_bytes(ca_public + b"\n")
    docs = list(yaml.safe_load_all((site / "rbac.yaml").read_text()))
    for doc in docs:
        for rule in doc.get("rules", []) if doc.get("kind") == "ClusterRole" else ():
            if rule.get("resources") == ["groups"]:
                rule["resourceNames"] = list(groups)
    (site / "rbac.yaml").write_text(yaml.safe_dump_all(docs))
    plane.kubectl("apply", "-k", str(site))
    return key


@contextlib.contextmanager
def ssh_world(control_plane_bin: Path, standin_bin: Path, root: Path) -> Iterator[SshWorld]:
    from tests.realcluster.conftest import node_plane_audit_policy
    from tests.realcluster.test_access_requests import Broker, install

    os.chmod(root, 0o700)
    with gw.pod_http_server(POD_BODY) as port, \
            ControlPlane(control_plane_bin, audit_policy=node_plane_audit_policy()) as plane:
        plane.start_node(standin_bin)
        at = install(plane, root, policy(port))
        host_key = install_gateway(plane, root, at.ca_pub, PEOPLES_GROUPS)
        plane.kubectl("create", "namespace", "ledger")
        for namespace in ("payments", "ledger"):  # no kcm controller makes it here
            plane.kubectl("create", "serviceaccount", "default", "-n", namespace)
        dirs = {pod: gw.pod(plane, namespace, pod) for namespace, pod in (
            ("payments", POD), ("payments", "payment-api-2"), ("ledger", LEDGER_POD))}
        broker = Broker(at).wait_started()
        gateway = gw.start_gateway(plane, None, root / "gateway", ca_lines=at.ca_pub.decode()
                                   + "\n", host_key=host_key)
        try:
            yield SshWorld(at, broker, gateway, port, dirs)
        finally:
            gateway.stop()
            broker.kill()


def run(person, *args: str, input: str | bytes | None = None, timeout: float = 120
        ) -> subprocess.CompletedProcess:
    """`cred-helper ARGS...` as the person, with `input` on stdin (none: /dev/null)."""
    return subprocess.run(person.argv(*args), env=person.env, capture_output=True,
                          timeout=timeout, input=input,
                          stdin=subprocess.DEVNULL if input is None else None,
                          text=not isinstance(input, bytes))
