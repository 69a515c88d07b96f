from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from tests.controlplane import prebuild
from tests.support.apiserver import LocalAPIServer
from tests.support.harness import Sandbox, find_kubectl
from tests.support.needs import apply_needs


def _approve_all(csr: dict) -> bool:
    return True


@pytest.fixture
def server():
    with LocalAPIServer() as srv:
        yield srv


@pytest.fixture
def sandbox(tmp_path, server) -> Sandbox:
    token = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
    server.tokens[token] = ("alice@example.com", ["oncall", "sre", "system:bootstrappers"])
    server.auto_approve = _approve_all
    box = Sandbox(tmp_path, server, token)
    (tmp_path / "bootstrap.token").write_text(token + "\n")
    (tmp_path / "bootstrap.token").chmod(0o600)  # secret files must be private
    (tmp_path / "ca.crt").write_bytes(server.ca.cert_pem)
    box.env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
               "XDG_CACHE_HOME": str(tmp_path / "cache"),
               "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return box


def pytest_runtest_setup(item) -> None:
    apply_needs(item)  # a `needs` mark: skipped where missing, a failure under CI=true


@pytest.fixture(scope="session")
def control_plane_bin() -> Path:
    """The directory of the real control plane's binaries, which the test command builds up
    front (tests/controlplane/prebuild.py). Without Go the tier is skipped with one line saying
    why; under CI=true that, or an unbuilt plane, is a failure."""
    return prebuild.prebuilt(prebuild.CONTROL_PLANE)


@pytest.fixture(scope="session")
def kubelet_standin_bin() -> Path:
    """The kubelet stand-in (tests/controlplane/standin), built up front."""
    return prebuild.prebuilt(prebuild.KUBELET_STANDIN)


@pytest.fixture(scope="session")
def kubelogin_bin() -> Path:
    """kubelogin, the peer bench/kubelogin.py times cred-helper against (built up front)."""
    return prebuild.prebuilt(prebuild.KUBELOGIN)


@pytest.fixture(scope="session")
def kubectl() -> str:
    found = find_kubectl()
    if found is None:
        pytest.fail("no kubectl found: .ci/run installs one (set $KUBECTL to choose)")
    return found


def pytest_terminal_summary(terminalreporter) -> None:
    """One line that says whether the real control plane ran: a quiet (-q) CI log would not
    show it otherwise."""
    outcomes: dict[str, int] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if "realcluster" in getattr(report, "keywords", {}):
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
    if outcomes:
        counts = ", ".join(f"{n} {outcome}" for outcome, n in outcomes.items())
        terminalreporter.write_line(f"real control plane (tests/realcluster): {counts}")
