"""`cred-helper approver run` refuses a policy it cannot use at start, before it connects to
anything: one error naming the file, the line and the field, and exit 2."""

from __future__ import annotations

import subprocess

from tests.support.harness import CRED_HELPER, one_error


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CRED_HELPER, "approver", "run", *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_a_policy_with_an_unknown_field_is_refused_at_start(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n  - name: oncall\n    match: {groups: [oncall]}\n"
                      "    action: manual\n    colour: blue\n")
    # The kubeconfig does not exist: the policy is checked first, so its error is the one said.
    done = run(f"--policy={policy}", f"--kubeconfig={tmp_path / 'missing'}")
    assert done.returncode == 2 and done.stdout == ""
    error = one_error(done.stderr)
    assert f"policy {policy}:5: rules[0]: unknown field 'colour'" in error
    assert "it was not applied" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_policy_file_is_one_error(tmp_path):
    done = run(f"--policy={tmp_path / 'nope.yaml'}", f"--kubeconfig={tmp_path / 'missing'}")
    assert done.returncode == 2 and done.stdout == ""
    assert "nope.yaml" in one_error(done.stderr)
