"""`cred-helper setup` against the local API server, then real kubectl with no hand-editing;
KUBECONFIG lists, foreign entries, backups, idempotence, --print."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.harness import BIN, CRED_HELPER, as_kubectl_would, one_error

pytestmark = pytest.mark.kubectl

FOREIGN = {
    "apiVersion": "v1", "kind": "Config", "current-context": "other",
    "preferences": {"colors": True},
    "extensions": [{"name": "vendor", "extension": {"x": 1}}],
    "clusters": [{"name": "other", "cluster": {"server": "https://other.example:6443",
                                                 "x-unknown": "kept"}}],
    "users": [{"name": "other", "user": {"token": "foreign-token"}}],
    "contexts": [{"name": "other", "context": {"cluster": "other", "user": "other"}}],
}


def setup(sandbox, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = dict(sandbox.env, **(env or {}))
    return subprocess.run(as_kubectl_would(CRED_HELPER, "setup", *args), env=full,
                          capture_output=True, text=True, timeout=60)


def base(sandbox, name: str = "local") -> list[str]:
    return [f"--cluster={name}", f"--server={sandbox.server.url}",
            f"--certificate-authority={sandbox.ca_file}", "--issuer=csr",
            f"--bootstrap-token-file={sandbox.token_file}", f"--command={CRED_HELPER}"]


def kubectl_run(kubectl: str, sandbox, kubeconfig: str, *args: str):
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(sandbox.root),
           "KUBECONFIG": kubeconfig, **{k: v for k, v in sandbox.env.items()
                                        if k.startswith("XDG_")}}
    return subprocess.run([kubectl, *args], env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".bak-*"))


def test_setup_then_kubectl_works_with_no_hand_editing(sandbox, kubectl):
    config = sandbox.root / ".kube" / "config"
    done = setup(sandbox, *base(sandbox))
    assert done.returncode == 0, done.stderr
    assert "checked: the bootstrap identity is alice@example.com" in done.stderr
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    doc = yaml.safe_load(config.read_text())
    user = doc["users"][0]["user"]["exec"]
    hint = user.pop("installHint")
    assert user == {"apiVersion": "client.authentication.k8s.io/v1", "command": CRED_HELPER,
                    "args": ["--cluster=local"], "provideClusterInfo": True,
                    "interactiveMode": "IfAvailable"}
    assert "pipx install cred-helper" in hint and "--cluster local" in hint
    profile = (sandbox.root / "config" / "cred-helper" / "config.toml").read_text()
    assert '[clusters.local]\nissuer = "csr"' in profile
    out = kubectl_run(kubectl, sandbox, str(config), "--context=local", "auth", "whoami",
                      "-o", "jsonpath={.status.userInfo.username}")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "alice@example.com"
    assert len(sandbox.server.csrs) == 1  # kubectl got a certificate through the CSR


def test_second_run_changes_nothing_and_backs_up_nothing(sandbox):
    config = sandbox.root / ".kube" / "config"
    config.parent.mkdir()
    config.write_text(yaml.safe_dump(FOREIGN))
    config.chmod(0o640)
    assert setup(sandbox, *base(sandbox)).returncode == 0
    first = config.read_bytes()
    assert len(backups(config)) == 1
    assert yaml.safe_load(backups(config)[0].read_text()) == FOREIGN
    profile = sandbox.root / "config" / "cred-helper" / "config.toml"
    profile_text = profile.read_bytes()
    again = setup(sandbox, *base(sandbox))
    assert again.returncode == 0, again.stderr
    assert "nothing to change" in again.stderr
    assert config.read_bytes() == first and profile.read_bytes() == profile_text
    assert len(backups(config)) == 1
    assert oct(config.stat().st_mode & 0o777) == "0o640"  # the original mode, kept


def test_foreign_entries_and_unknown_fields_are_kept(sandbox):
    config = sandbox.root / ".kube" / "config"
    config.parent.mkdir()
    config.write_text(yaml.safe_dump(FOREIGN))
    assert setup(sandbox, *base(sandbox)).returncode == 0
    doc = yaml.safe_load(config.read_text())
    for key in ("preferences", "extensions", "current-context"):
        assert doc[key] == FOREIGN[key]
    for section in ("clusters", "users", "contexts"):
        assert FOREIGN[section][0] in doc[section]
        assert doc[section][0]["name"] == "other"


def test_kubeconfig_list_new_entries_go_to_the_first_existing_file(sandbox, kubectl):
    first, second = sandbox.root / "a.yaml", sandbox.root / "b.yaml"
    second.write_text(yaml.safe_dump(FOREIGN))
    listing = f"{first}{os.pathsep}{second}"
    done = setup(sandbox, *base(sandbox), env={"KUBECONFIG": listing})
    assert done.returncode == 0, done.stderr
    assert not first.exists()  # kubectl config set-* writes to the first file that exists
    names = [c["name"] for c in yaml.safe_load(second.read_text())["contexts"]]
    assert names == ["other", "local"]
    out = kubectl_run(kubectl, sandbox, listing, "--context=local", "auth", "whoami")
    assert out.returncode == 0, out.stderr


def test_kubeconfig_list_an_entry_is_updated_where_it_is(sandbox):
    first, second = sandbox.root / "a.yaml", sandbox.root / "b.yaml"
    first.write_text(yaml.safe_dump(FOREIGN))
    listing = f"{first}{os.pathsep}{second}"
    # our user, with an env setting of the user's own, lives in the second file (quoted as
    # kubectl quotes it: a plain y is a boolean to kubectl)
    second.write_text('apiVersion: v1\nkind: Config\nusers:\n- name: cred-helper-local\n'
                      '  user:\n    exec:\n      command: cred-helper\n'
                      '      args: ["--cluster=old"]\n'
                      '      apiVersion: client.authentication.k8s.io/v1beta1\n'
                      '      env:\n      - name: X\n        value: "y"\n')
    done = setup(sandbox, *base(sandbox), env={"KUBECONFIG": listing})
    assert done.returncode == 0, done.stderr
    user = yaml.safe_load(second.read_text())["users"][0]["user"]["exec"]
    assert user["args"] == ["--cluster=local"] and user["env"] == [{"name": "X", "value": "y"}]
    assert user["apiVersion"] == "client.authentication.k8s.io/v1"
    names = [u["name"] for u in yaml.safe_load(first.read_text())["users"]]
    assert "cred-helper-local" not in names  # not written twice


def test_a_foreign_entry_of_the_same_name_is_not_overwritten(sandbox):
    config = sandbox.root / ".kube" / "config"
    config.parent.mkdir()
    config.write_text(yaml.safe_dump(FOREIGN))
    before = config.read_bytes()
    done = setup(sandbox, *base(sandbox, name="other"))
    assert done.returncode == 2
    assert "already has a cluster named 'other'" in one_error(done.stderr)
    assert config.read_bytes() == before and not backups(config)


def test_from_context_uses_an_existing_cluster(sandbox, kubectl):
    admin = sandbox.admin_kubeconfig()  # context "local" with the local cluster
    config = sandbox.root / "kc"
    config.write_text(admin.read_text())
    done = setup(sandbox, "--cluster=dev", "--from-context=local", "--issuer=csr",
                 f"--bootstrap-token-file={sandbox.token_file}", f"--command={CRED_HELPER}",
                 env={"KUBECONFIG": str(config)})
    assert done.returncode == 0, done.stderr
    doc = yaml.safe_load(config.read_text())
    assert {"name": "dev", "context": {"cluster": "local", "user": "cred-helper-dev"}} in \
        doc["contexts"]
    assert len(doc["clusters"]) == 1
    out = kubectl_run(kubectl, sandbox, str(config), "--context=dev", "auth", "whoami",
                      "-o", "jsonpath={.status.userInfo.username}")
    assert out.stdout == "alice@example.com", out.stderr


def test_print_writes_nothing(sandbox):
    done = setup(sandbox, *base(sandbox), "--print")
    assert done.returncode == 0, done.stderr
    assert "[clusters.local]" in done.stdout and "cred-helper-local" in done.stdout
    assert not (sandbox.root / ".kube").exists()
    assert not (sandbox.root / "config").exists()
    assert not sandbox.server.requests


def test_a_bootstrap_identity_without_rights_is_named(sandbox):
    sandbox.server.csr_creators = set()
    done = setup(sandbox, *base(sandbox))
    assert done.returncode == 1
    line = one_error("\n".join(done.stderr.splitlines()[-2:]))  # after what was written
    assert "alice@example.com may not create certificate signing requests" in line
    assert "--print-rbac" in done.stderr
    assert not any(m == "POST" and p.endswith("/certificatesigningrequests")
                   for m, p, _ in sandbox.server.requests)  # proven without a CSR


def test_a_bad_profile_value_is_refused_before_anything_is_written(sandbox):
    done = setup(sandbox, *base(sandbox), "--ttl=1m")
    assert done.returncode == 2
    assert "minimum of 10m" in one_error(done.stderr)
    assert not (sandbox.root / ".kube").exists()


def test_profile_file_keeps_other_profiles_and_comments(sandbox):
    profile = sandbox.root / "config" / "cred-helper" / "config.toml"
    profile.parent.mkdir(parents=True)
    profile.write_text('# mine\n[clusters.other]\nissuer = "oidc"  # keep\n'
                       'oidc-issuer-url = "https://idp.example"\noidc-client-id = "x"\n\n'
                       '[clusters.local]\nissuer = "oidc"\n\n[clusters.z]\nissuer = "csr"\n')
    done = setup(sandbox, *base(sandbox), "--no-verify", "--overwrite")
    assert done.returncode == 0, done.stderr
    text = profile.read_text()
    assert text.startswith('# mine\n[clusters.other]\nissuer = "oidc"  # keep\n')
    assert text.endswith('\n\n[clusters.z]\nissuer = "csr"\n')
    assert f'bootstrap-token-file = "{sandbox.token_file}"' in text


@pytest.mark.parametrize("text", ["users: 5\n", "- a\n- b\n", "{{{{\n", "users: [1, {name: 2}]\n"])
def test_a_hostile_kubeconfig_is_one_error_and_left_alone(sandbox, text):
    config = sandbox.root / ".kube" / "config"
    config.parent.mkdir()
    config.write_text(text)
    done = setup(sandbox, *base(sandbox), "--no-verify")
    if text.startswith("users: [1"):  # odd items are kept as they are, ours appended
        assert done.returncode == 0, done.stderr
        assert yaml.safe_load(config.read_text())["users"][:2] == [1, {"name": 2}]
        return
    assert done.returncode == 2
    one_error(done.stderr)
    assert config.read_text() == text and not backups(config)


# ---- a newcomer's first setup (issue 25) ------------------------------------------------------

def test_kubectl_prints_the_install_hint_when_the_command_is_missing(sandbox, kubectl):
    """kubectl shows installHint when it cannot find the command on its PATH (a command by
    name; a missing absolute path is only "no such file")."""
    config = sandbox.root / ".kube" / "config"
    args = [a for a in base(sandbox) if not a.startswith("--command=")]
    done = setup(sandbox, *args, "--command=cred-helper-not-installed", "--no-verify")
    assert done.returncode == 0, done.stderr
    assert "note: cred-helper-not-installed is not on PATH" in done.stderr
    out = kubectl_run(kubectl, sandbox, str(config), "--context=local", "get", "--raw",
                      "/version")
    assert out.returncode != 0
    assert "pipx install cred-helper" in out.stderr
    assert "cred-helper setup --cluster local" in out.stderr


def test_a_token_others_can_read_is_refused_before_anything_is_written(sandbox):
    """setup checks everything first: with --no-verify too, nothing is written."""
    sandbox.token_file.chmod(0o644)
    data = sandbox.root / "data"
    args = [a for a in base(sandbox) if not a.startswith("--command=")]
    done = setup(sandbox, *args, "--no-verify", env={"XDG_DATA_HOME": str(data)})
    assert done.returncode == 1
    error = one_error(done.stderr)
    assert f"--bootstrap-token-file: token file {sandbox.token_file}" in error
    assert "chmod 600" in done.stderr
    assert not (sandbox.root / ".kube" / "config").exists()
    assert not (sandbox.root / "config" / "cred-helper" / "config.toml").exists()
    assert not data.exists()  # nor the fast launcher


def test_an_error_about_a_value_names_the_flag_that_was_typed(sandbox):
    done = setup(sandbox, *base(sandbox), "--ttl=1m")
    error = one_error(done.stderr)
    assert error.startswith("cred-helper: error: --ttl: 1m0s is shorter than")
    assert "cred-helper-setup-" not in error  # not the temporary file setup checks with
    assert done.returncode == 2


def test_subject_o_goes_into_the_profile_and_the_certificate_request(sandbox, kubectl):
    """docs/admin/rbac.md's ServiceAccount path: a bootstrap identity with only system: groups, and
    the subject chosen with --subject-cn and --subject-o."""
    import base64

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    done = setup(sandbox, *base(sandbox), "--subject-cn=alice@example.com",
                 "--subject-o=oncall", "--subject-o=sre")
    assert done.returncode == 0, done.stderr
    profile = (sandbox.root / "config" / "cred-helper" / "config.toml").read_text()
    assert 'subject-cn = "alice@example.com"\nsubject-o = ["oncall", "sre"]\n' in profile
    config = sandbox.root / ".kube" / "config"
    out = kubectl_run(kubectl, sandbox, str(config), "--context=local", "get", "--raw",
                      "/version")
    assert out.returncode == 0, out.stderr
    (csr,) = sandbox.server.csrs.values()
    request = x509.load_pem_x509_csr(base64.b64decode(csr["spec"]["request"]))
    groups = [a.value for a in request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert sorted(groups) == ["oncall", "sre"]
