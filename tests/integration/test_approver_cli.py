"""`cred-helper approver run` refuses a policy it cannot use at start, before it connects to
anything: one error naming the file, the line and the field, and exit 2."""

from __future__ import annotations

import subprocess

from tests.support.harness import CRED_HELPER, one_error
from tests.unit.broker.test_accesspolicy import RULE as ACCESS_POLICY


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




def test_an_access_section_without_an_ssh_ca_is_refused_at_start(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(ACCESS_POLICY)
    done = run(f"--policy={policy}", f"--kubeconfig={tmp_path / 'missing'}")
    assert done.returncode == 2 and done.stdout == ""
    assert "the policy has an access: section, and no --ssh-ca signs for it" in \
        one_error(done.stderr)


def test_an_ssh_ca_others_can_read_is_refused_at_start(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    policy = tmp_path / "policy.yaml"
    policy.write_text(ACCESS_POLICY)
    ca = tmp_path / "ca"
    ca.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()))
    ca.chmod(0o644)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n"
                          "  cluster: {server: 'https://127.0.0.1:1'}\ncontexts:\n- name: c\n"
                          "  context: {cluster: c, user: u}\nusers:\n- name: u\n"
                          "  user: {token: t}\n")
    done = run(f"--policy={policy}", f"--kubeconfig={kubeconfig}", f"--ssh-ca={ca}")
    assert done.returncode == 1 and done.stdout == ""
    error = one_error(done.stderr)
    assert f"--ssh-ca: SSH CA key {ca} is open to group or others" in error
    assert "PRIVATE KEY" not in done.stderr
