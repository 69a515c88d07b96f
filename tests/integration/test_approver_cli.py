"""`cred-helper approver run` refuses a policy it cannot use at start, before it connects to
anything: one error naming the file, the line and the field, and exit 2."""

from __future__ import annotations

import subprocess

import pytest

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


# ---- approver check: a policy, and what it would decide, offline ------------------------------

def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CRED_HELPER, "approver", "check", *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_check_says_a_good_policy_is_valid(tmp_path):
    from tests.support import policies

    (tmp_path / "policy.yaml").write_text(policies.step_two())
    done = check(str(tmp_path / "policy.yaml"))
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr == (f"policy {tmp_path}/policy.yaml: valid; rules in order: break-glass "
                           "(manual), oncall (approve); default manual\n")


def test_check_refuses_a_bad_policy_with_file_line_and_field(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n  - name: r\n    match: {groups: [oncall]}\n    action: approve\n"
                      "    attestation: none\n    max-expiration: 30 minutes\n")
    done = check(str(policy))
    assert (done.returncode, done.stdout) == (1, "")
    assert one_error(done.stderr) == (
        f"cred-helper: error: policy {policy}:6: rules[0].max-expiration: '30 minutes' is not "
        "a duration (1800, 30m, 1h30m)")


def test_check_reads_the_shipped_configmap_and_counts_lines_in_it(tmp_path):
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "packaging/kubernetes/policy-configmap.yaml"
    done = check(str(shipped))
    assert done.returncode == 0, done.stderr
    assert "rules in order: none; default manual" in done.stderr
    text = shipped.read_text()
    broken = tmp_path / "configmap.yaml"
    broken.write_text(text.replace("    default: manual", "    default: approve"))
    line = text.splitlines().index("    default: manual") + 1
    done = check(str(broken))
    assert done.returncode == 1
    assert f"policy {broken}:{line}: default: 'approve' is not one of manual, deny" in \
        one_error(done.stderr)


def _csr_files(tmp_path):
    """Two CSR objects as kubectl prints them: a list in JSON, and one of them in YAML."""
    import json

    import yaml

    from tests.unit.broker.build import csr_object, request_pem

    ok = csr_object(request_pem("p256", cn="alice@example.com", orgs=("oncall",)),
                    username="alice@example.com", name="csr-everyday")
    masters = csr_object(request_pem("p256", cn="alice@example.com", orgs=("break-glass",)),
                         username="alice@example.com", name="csr-masters",
                         groups=("oncall", "sre", "system:authenticated"))
    (tmp_path / "list.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List",
                                                    "items": [ok, masters]}))
    (tmp_path / "one.yaml").write_text(yaml.safe_dump(masters))
    return tmp_path / "list.json", tmp_path / "one.yaml"


def test_check_prints_the_decision_for_each_csr(tmp_path):
    import json

    from tests.support import policies

    (tmp_path / "policy.yaml").write_text(policies.step_two())
    many, one = _csr_files(tmp_path)
    done = check(str(tmp_path / "policy.yaml"), f"--csr={many}")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(d["csr"], d["decision"], d["rule"], d["dryRun"]) for d in lines] == [
        ("csr-everyday", "deny", "oncall", True), ("csr-masters", "manual", "break-glass", True)]
    assert "the rule wants a hardware attestation; got none" in lines[0]["reason"]
    assert "asks for break-glass, which they do not hold" in lines[1]["reason"]
    done = check(str(tmp_path / "policy.yaml"), "--csr", str(one))
    assert [json.loads(line)["csr"] for line in done.stdout.splitlines()] == ["csr-masters"]


@pytest.mark.parametrize(("content", "error"), [
    ("{", "is not YAML or JSON"),
    ("kind: ConfigMap\n", "is not a CertificateSigningRequest (kind: 'ConfigMap')"),
    ("kind: List\nitems: 5\n", "the list's items are not a list"),
    ("kind: CertificateSigningRequest\nmetadata: {name: x}\n",
     "metadata.uid is not a string"),
])
def test_check_refuses_a_csr_file_it_cannot_use(tmp_path, content, error):
    (tmp_path / "policy.yaml").write_text("rules: []\n")
    (tmp_path / "csr.yaml").write_text(content)
    done = check(str(tmp_path / "policy.yaml"), f"--csr={tmp_path / 'csr.yaml'}")
    assert (done.returncode, done.stdout) == (1, "")
    assert error in one_error(done.stderr)


def test_dry_run_takes_no_lease(tmp_path):
    (tmp_path / "policy.yaml").write_text("rules: []\n")
    done = run(f"--policy={tmp_path / 'policy.yaml'}", "--dry-run", "--lease-name=x",
               f"--kubeconfig={tmp_path / 'missing'}")
    assert done.returncode == 2
    assert "--dry-run takes no --lease-name" in one_error(done.stderr)


def test_check_with_a_missing_csr_file_is_one_usage_error(tmp_path):
    (tmp_path / "policy.yaml").write_text("rules: []\n")
    done = check(str(tmp_path / "policy.yaml"), f"--csr={tmp_path / 'gone.yaml'}")
    assert (done.returncode, done.stdout) == (2, "")
    assert f"--csr: cannot read CSR file {tmp_path / 'gone.yaml'}" in one_error(done.stderr)


def test_check_denies_a_saved_csr_that_names_an_extension_twice(tmp_path):
    """kube-apiserver refuses such a request, but a file given to `--csr` has met none: a
    decision line with the reason, not "unexpected DuplicateExtension"."""
    import json

    from tests.unit.broker.build import csr_object, request_naming_an_extension_twice

    (tmp_path / "policy.yaml").write_text("rules:\n  - name: oncall\n    match: {groups: "
                                          "[oncall]}\n    action: approve\n    subject-groups: "
                                          "['*']\n    max-expiration: 1h\n    attestation: none\n")
    (tmp_path / "csr.json").write_text(json.dumps(csr_object(request_naming_an_extension_twice())))
    done = check(str(tmp_path / "policy.yaml"), f"--csr={tmp_path / 'csr.json'}")
    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(x) for x in done.stdout.splitlines()]
    assert (line["decision"], line["reason"]) == (
        "deny", "the request cannot be read: the request's extensions name 2.25.1433927580 twice")


def test_check_reads_a_name_longer_than_64_characters_without_a_python_warning(tmp_path):
    """An OIDC-style username of 89 characters (Kubernetes sets no bound): the decision, and
    on stderr only the summary line, not cryptography's UserWarning lines."""
    import json
    import warnings

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    from tests.unit.broker.build import csr_object, key
    from tests.unit.broker.test_facts import JUDGED_POLICY, LONG_NAME

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LONG_NAME, _validate=False)])
    pem = x509.CertificateSigningRequestBuilder().subject_name(name).sign(
        key("ed25519"), None).public_bytes(Encoding.PEM)
    (tmp_path / "policy.yaml").write_text(JUDGED_POLICY)
    (tmp_path / "csr.json").write_text(json.dumps(csr_object(pem, username=LONG_NAME)))
    done = check(str(tmp_path / "policy.yaml"), f"--csr={tmp_path / 'csr.json'}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["decision"] == "approve"
    assert done.stderr == f"policy {tmp_path}/policy.yaml: valid; rules in order: oncall " \
        "(approve); default manual\n"


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
