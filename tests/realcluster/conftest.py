"""The real control plane (issue 10): built once per machine into a version-keyed cache by
tests/controlplane/build.py, which the test command runs up front (prebuild.py; the
`control_plane_bin` fixture is in tests/conftest.py), started once per session.

The session's OpenID provider (the real oidc-provider, over https with a test CA) starts first,
so that the one session plane's kube-apiserver trusts it through its structured authentication
configuration. Without Node.js the plane starts without it and only the OIDC tests skip."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from tests.support.controlplane import BOOTSTRAP, ControlPlane, OidcSettings
from tests.support.harness import Sandbox
from tests.support.oidc_provider import OIDCProvider, provider_clients

OIDC_CLIENT = "public"  # the audience kube-apiserver accepts


@pytest.fixture(scope="session")
def oidc_provider():
    if shutil.which("node") is None:
        yield None
        return
    with OIDCProvider(provider_clients(), https=True) as provider:
        yield provider


@pytest.fixture(scope="session")
def control_plane(control_plane_bin, oidc_provider):
    oidc = OidcSettings(oidc_provider.issuer, oidc_provider.ca_pem, OIDC_CLIENT) \
        if oidc_provider else None
    with ControlPlane(control_plane_bin, oidc=oidc) as plane:
        yield plane


@pytest.fixture
def own_plane(control_plane_bin):
    """A control plane of its own, with a client CA apart from the serving one, for tests
    that restart or rotate it."""
    with ControlPlane(control_plane_bin, separate_client_ca=True) as plane:
        yield plane


@pytest.fixture(scope="session")
def node_plane(control_plane_bin, kubelet_standin_bin):
    """A control plane with a node: the kubelet stand-in runs its pods (exec, logs and
    port-forward work), kube-apiserver audits with cred-helper's audit policy
    (`setup --print-rbac --audit-policy`: exec and port-forward in full) and records every
    other request of the people the tests play and of the SSH gateway at Metadata."""
    with ControlPlane(control_plane_bin, audit_policy=node_plane_audit_policy()) as plane:
        plane.start_node(kubelet_standin_bin)
        yield plane


def node_plane_audit_policy() -> str:
    from cred_helper import rbac
    from tests.support.gateway import GATEWAY_SA, PEOPLE

    policy = yaml.safe_load(rbac.audit_policy())
    policy["rules"] += [{"level": "Metadata", "users": [BOOTSTRAP[0], GATEWAY_SA, *PEOPLE]},
                        {"level": "None"}]
    return yaml.safe_dump(policy)


@pytest.fixture
def box(tmp_path, control_plane) -> Sandbox:
    return _sandbox(tmp_path, control_plane)


@pytest.fixture
def node_box(tmp_path, node_plane) -> Sandbox:
    """`box` on the plane with a node."""
    return _sandbox(tmp_path, node_plane)


def _sandbox(tmp_path: Path, plane: ControlPlane) -> Sandbox:
    os.chmod(tmp_path, 0o700)
    sandbox = Sandbox(tmp_path, plane, plane.bootstrap_token)  # type: ignore[arg-type]
    sandbox.token_file.write_text(plane.bootstrap_token + "\n")
    sandbox.token_file.chmod(0o600)
    sandbox.env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
                   "XDG_CACHE_HOME": str(tmp_path / "cache"),
                   "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return sandbox


@pytest.fixture
def procs():
    """Approver processes a test started (test_approver_runtime.Proc), killed after it."""
    started: list = []
    yield started
    for proc in started:
        proc.kill()


@pytest.fixture(scope="session")
def gateway_world(node_plane, tmp_path_factory):
    """The SSH gateway on the node plane, for the session: the CRD and the gateway's RBAC
    applied, namespace `payments` (the on-call Role bound to `oncall`) with pods on the node,
    namespace `ledger` (no Role: RBAC refuses alice there), alice and bob (group oncall) with
    client certificates, an SSH user CA, and `cred-helper gateway run` as a process."""
    from tests.support import gateway as gw

    directory = tmp_path_factory.mktemp("gateway")
    gw.install(node_plane)
    world = gw.World(plane=node_plane, directory=directory, ca=gw.UserCA(),
                     payments=gw.namespace(node_plane, "payments"),
                     ledger=gw.namespace(node_plane, "ledger", oncall_group=None),
                     alice=gw.person(node_plane, directory, "alice@example.com", ["oncall"]),
                     bob=gw.person(node_plane, directory, "bob@example.com", ["oncall"]))
    for pod in ("api-1", "api-2", "db-0"):
        world.pod_dirs[pod] = gw.pod(node_plane, world.payments, pod)
    world.pod_dirs["ledger-0"] = gw.pod(node_plane, world.ledger, "ledger-0")
    world.gateway = gw.start_gateway(node_plane, world.ca, directory / "gateway")
    yield world
    world.gateway.stop()
