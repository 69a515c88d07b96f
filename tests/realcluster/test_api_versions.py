"""Which Kubernetes APIs each feature calls, measured: each runs as a process against a real
kube-apiserver whose audit log records every request, and the requests cred-helper made (its
User-Agent) are read back as group/version, resource and verb. docs/compatibility.md's table
must name, in each feature's row, every API that feature was seen to call, so that the oldest
version it states rests on what the code calls, not on what someone remembers."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.support import controlplane as controlplane_module
from tests.support import doccommands
from tests.support.controlplane import ADMIN, BOOTSTRAP, ControlPlane
from tests.support.harness import CRED_HELPER, as_kubectl_would

pytestmark = pytest.mark.realcluster

# every request of the two people the tests play, the admin and alice
AUDIT_EVERYONE = f"""
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  users: ["{BOOTSTRAP[0]}", "{ADMIN[0]}"]
- level: None
"""
APPROVE_ALICE = """
default: manual
rules:
  - name: oncall
    match: {groups: [oncall]}
    action: approve
    subject-groups: ["*"]
    max-expiration: 30m
    attestation: none
"""
# the row of docs/compatibility.md's table that names each feature
ROWS = {
    "issuance": "client certificates (`issuer csr`)",
    "subject": "the default subject, `setup`'s and `doctor`'s identity check",
    "access review": "`setup`'s and `doctor`'s right to create CSRs",
    "broker": "the access broker",
    "janitor": "the janitor",
}


@pytest.fixture(scope="module")
def plane(control_plane_bin):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(controlplane_module, "AUDIT_POLICY", AUDIT_EVERYONE)
        with ControlPlane(control_plane_bin) as own:
            yield own


class Calls:
    """cred-helper's requests in the audit log since the last look."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.seen = 0

    def since(self) -> set[str]:
        time.sleep(0.5)  # blocking mode: written before the answer, but watches end later
        events = self.plane.audit_events("cred-helper/")
        new, self.seen = events[self.seen:], len(events)
        calls = set()
        for event in new:
            ref = event.get("objectRef")
            if ref is None:
                calls.add(f"{event['verb']} {event['requestURI'].split('?')[0]}")
                continue
            group = ref.get("apiGroup") or "core"
            resource = ref["resource"] + (f"/{ref['subresource']}"
                                          if ref.get("subresource") else "")
            calls.add(f"{event['verb']} {group}/{ref['apiVersion']} {resource}")
        return calls


def run(*argv: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(as_kubectl_would(CRED_HELPER, *argv), env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def row(feature: str) -> str:
    for line in (doccommands.ROOT / "docs" / "compatibility.md").read_text().splitlines():
        if line.startswith(f"| {ROWS[feature]} |"):
            return line
    raise AssertionError(f"docs/compatibility.md has no row {ROWS[feature]!r}")


def named_in_row(feature: str, calls: set[str]) -> list[str]:
    """The group/versions (and resources) of `calls` that the feature's row does not name."""
    line = row(feature)
    missing = []
    for call in calls:
        api = call.split(" ")[1]
        if api.startswith("/"):  # a path, not a resource: /version, /apis
            if api not in line:
                missing.append(call)
            continue
        group, version = api.rsplit("/", 1)
        spelled = f"core `{version}`" if group == "core" else f"`{group}/{version}`"
        if spelled not in line:
            missing.append(call)
    return missing


def test_each_feature_calls_only_what_the_compatibility_page_names(plane, tmp_path: Path):
    calls = Calls(plane)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    token = tmp_path / "bootstrap.token"
    token.write_text(plane.bootstrap_token + "\n")
    token.chmod(0o600)
    ca = plane.dir / "ca.crt"
    admin = plane.write_kubeconfig(tmp_path / "admin.kubeconfig", {"token": plane.admin_token})
    policy = tmp_path / "policy.yaml"
    policy.write_text(APPROVE_ALICE)
    base = ["--issuer=csr", f"--server={plane.url}", f"--certificate-authority={ca}",
            f"--bootstrap-token-file={token}"]
    measured: dict[str, set[str]] = {}

    # setup's check: who the bootstrap identity is, and whether it may create CSRs
    done = run("setup", "--cluster=prod", *base, f"--kubeconfig={tmp_path / 'kubeconfig'}",
               env=env)
    assert done.returncode == 0, done.stderr
    setup = calls.since()
    measured["subject"] = {c for c in setup if "selfsubjectreviews" in c}
    measured["access review"] = setup - measured["subject"]

    # an issuance, approved by the broker as soon as it is pending
    get = subprocess.Popen(as_kubectl_would(CRED_HELPER, *base, "--approval-timeout=60s"),
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    issuance_before_approval = calls.since()
    broker = run("approver", "run", f"--policy={policy}", f"--kubeconfig={admin}", "--once",
                 "--lease-name=cred-helper-approver", "--lease-namespace=default", env=env)
    assert broker.returncode == 0, broker.stderr
    measured["broker"] = calls.since()
    _, err = get.communicate(timeout=60)
    assert get.returncode == 0, err
    measured["issuance"] = (issuance_before_approval | calls.since()) - measured["subject"]

    janitor = run("janitor", f"--kubeconfig={admin}", "--dry-run", env=env)
    assert janitor.returncode == 0, janitor.stderr
    measured["janitor"] = calls.since()

    print("\n".join(f"{feature}: {sorted(seen)}" for feature, seen in measured.items()))
    assert any("certificatesigningrequests" in c for c in measured["issuance"])
    assert any("leases" in c for c in measured["broker"])
    assert any("poddisruptionbudgets" in c for c in measured["janitor"])
    unnamed = {f: named_in_row(f, seen) for f, seen in measured.items()}
    assert not any(unnamed.values()), f"docs/compatibility.md does not name {unnamed}"
