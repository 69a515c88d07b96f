"""doctor's kuberc check against kubectl 1.37's own behaviour (the credential-plugin policy
arrived in 1.35; the machine's kubectl is older): for each kuberc, doctor says OK exactly when
the real kubectl runs cred-helper. The API server is the local one; only kubectl is real here."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from tests.integration.test_doctor import _by_name, _setup
from tests.support.harness import CRED_HELPER

pytestmark = pytest.mark.realcluster

BIN = os.path.dirname(CRED_HELPER)
POLICIES = {
    "no kuberc": None,
    "$KUBERC names a missing file": "missing",
    "DenyAll": {"credentialPluginPolicy": "DenyAll"},
    "Allowlist, full path": {"credentialPluginPolicy": "Allowlist",
                             "credentialPluginAllowlist": [{"name": CRED_HELPER}]},
    "Allowlist, command name": {"credentialPluginPolicy": "Allowlist",
                                "credentialPluginAllowlist": [{"name": "cred-helper"}]},
    "Allowlist, another plugin": {"credentialPluginPolicy": "Allowlist",
                                  "credentialPluginAllowlist": [{"name": "other"}]},
}


@pytest.mark.parametrize("case", list(POLICIES))
def test_doctor_says_what_kubectl_does(sandbox, control_plane_bin, case):
    kubectl = str(control_plane_bin / "kubectl")
    _setup(sandbox, kubectl)
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    kuberc = sandbox.root / "kuberc"
    if isinstance(POLICIES[case], dict):
        kuberc.write_text(yaml.safe_dump({"apiVersion": "kubectl.config.k8s.io/v1beta1",
                                          "kind": "Preference", **POLICIES[case]}))
    if POLICIES[case] is not None:
        env["KUBERC"] = str(kuberc)

    ran = subprocess.run([kubectl, "get", "--raw", "/version"], capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL,
                         env={**sandbox.env, **env})
    doctor = sandbox.run("doctor", "--cluster=prod", "-o", "json", extra_env=env)
    checks = _by_name(json.loads(doctor.stdout))
    # doctor finds it in the policy check, or (a kuberc kubectl cannot use at all) in kubectl's
    found = [checks[name] for name in ("kubectl", "kuberc plugin policy")
             if checks[name]["status"] == "FAIL"]
    assert (not found) == (ran.returncode == 0), (checks, ran.stderr)
    if ran.returncode != 0:
        assert any(why in ran.stderr for why in ("not allowed", "not permitted", "kuberc"))
        assert all(check["hint"] for check in found)
