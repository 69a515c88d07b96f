"""`cred-helper doctor` against the local API server, real kubectl and SoftHSM2: one broken
thing at a time, each found (FAIL on its own line) and hinted; and the all-good case."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import yaml

from tests.support import softhsm
from tests.support.apiserver import CA
from tests.support.harness import BIN, CRED_HELPER, as_kubectl_would, profile_kubeconfig
from tests.support.needs import needs

CKF_USER_PIN_LOCKED = 0x40000


def _setup(sandbox, kubectl: str, extra_profile: str = "", provide: bool = True) -> None:
    """A profile, a kubeconfig whose exec entry runs `cred-helper --cluster=prod`, and
    cred-helper on PATH, as an install puts it there."""
    config = sandbox.root / "config" / "cred-helper"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(
        "[clusters.prod]\nissuer = \"csr\"\n"
        f"bootstrap-token-file = \"{sandbox.token_file}\"\n" + extra_profile)
    profile_kubeconfig(sandbox, ["--cluster=prod"], provide=provide)
    sandbox.env["KUBECTL"] = kubectl
    sandbox.env["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"


def _doctor(sandbox, *args: str, extra_env: dict | None = None) -> tuple[int, dict]:
    result = sandbox.run("doctor", "--cluster=prod", "-o", "json", *args, extra_env=extra_env)
    assert "Traceback" not in result.stderr
    assert sandbox.token not in result.stdout + result.stderr  # never a secret
    doc = json.loads(result.stdout)
    return result.returncode, doc


def _by_name(doc: dict) -> dict[str, dict]:
    return {c["name"]: c for c in doc["checks"]}


def _failures(doc: dict) -> list[str]:
    return [c["name"] for c in doc["checks"] if c["status"] == "FAIL"]


def test_all_good_and_json_shape(sandbox, kubectl):
    _setup(sandbox, kubectl)
    code, doc = _doctor(sandbox)
    assert _failures(doc) == [] and code == 0 and doc["ok"] is True
    assert all(set(c) == {"name", "status", "detail", "hint"} for c in doc["checks"])
    assert all(c["status"] in ("OK", "WARN", "FAIL", "SKIP") for c in doc["checks"])
    names = [c["name"] for c in doc["checks"]]
    # in the documented order
    for earlier, later in [("profile", "kubectl"), ("kubectl", "exec entry"),
                           ("exec entry", "API server"), ("API server", "clock"),
                           ("clock", "bootstrap identity"), ("bootstrap identity",
                                                             "may create CSRs"),
                           ("may create CSRs", "keyring"), ("keyring", "cache directory")]:
        assert names.index(earlier) < names.index(later)
    checks = _by_name(doc)
    assert "bootstrap-token-file from profile" in checks["profile"]["detail"]
    assert "ttl from default" not in checks["profile"]["detail"]  # only what was set
    assert "alice@example.com" in checks["bootstrap identity"]["detail"]
    assert checks["may create CSRs"]["status"] == "OK"
    assert checks["exec entry"]["status"] == "OK"
    assert "verified" in checks["API server"]["detail"]
    # the text form: one line per check with its status, exit 0
    text = sandbox.run("doctor", "--cluster=prod")
    assert text.returncode == 0, text.stdout
    assert text.stdout.splitlines()[0].startswith("OK    profile:")


def test_wrong_ca(sandbox, kubectl):
    other = sandbox.root / "other-ca.crt"
    other.write_bytes(CA().cert_pem)
    _setup(sandbox, kubectl, f'certificate-authority = "{other}"\n')
    code, doc = _doctor(sandbox)
    assert code == 1 and "API server" in _failures(doc)
    api = _by_name(doc)["API server"]
    assert "certificate" in (api["detail"] + api["hint"]).lower()
    assert "--certificate-authority" in api["hint"]
    assert _by_name(doc)["bootstrap identity"]["status"] == "SKIP"


def test_skewed_clock(sandbox, kubectl):
    _setup(sandbox, kubectl)
    sandbox.server.date_offset = -600
    code, doc = _doctor(sandbox)
    assert code == 1 and _failures(doc) == ["clock"]
    clock = _by_name(doc)["clock"]
    assert re.search(r"clock is 60[01]s ahead of the API server", clock["detail"])
    assert "sync the clock" in clock["hint"]


def test_no_rbac_to_create_csrs(tmp_path, kubectl, sandbox):
    sandbox.server.csr_creators = {"somebody-else"}
    _setup(sandbox, kubectl)
    code, doc = _doctor(sandbox)
    assert code == 1 and _failures(doc) == ["may create CSRs"]
    assert "--print-rbac" in _by_name(doc)["may create CSRs"]["hint"]


def test_unreadable_cache_directory(sandbox, kubectl):
    _setup(sandbox, kubectl)
    sandbox.cache_dir.mkdir(parents=True)
    sandbox.cache_dir.chmod(0o000)
    try:
        code, doc = _doctor(sandbox)
    finally:
        sandbox.cache_dir.chmod(0o700)
    assert code == 1 and _failures(doc) == ["cache directory"]
    assert f"chmod 700 {sandbox.cache_dir}" in _by_name(doc)["cache directory"]["hint"]


def test_the_cache_directory_named_by_the_flag_is_the_one_checked(sandbox, kubectl, tmp_path):
    """`--cache-dir` as every command that keeps something takes it."""
    _setup(sandbox, kubectl)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    elsewhere.chmod(0o755)  # readable by others: refused, as the cache itself refuses it
    code, doc = _doctor(sandbox, "--cache-dir", str(elsewhere))
    assert code == 1 and _failures(doc) == ["cache directory"]
    assert str(elsewhere) in _by_name(doc)["cache directory"]["detail"]


def test_the_profiles_ssh_gateway_is_read_as_ssh_config_reads_it(sandbox, kubectl, tmp_path):
    """A host key that is not a key: doctor said all was well, and every `cred-helper ssh`
    then failed on it."""
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    line = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    (tmp_path / "ca.pub").write_text(line + "\n")
    keys = f'gateway = "gw.example.com:2222"\nssh-user-ca = "{tmp_path / "ca.pub"}"\n'
    _setup(sandbox, kubectl, keys + f'gateway-host-key = "{line}"\n')
    _, doc = _doctor(sandbox)
    assert _by_name(doc)["SSH gateway"]["status"] == "OK", _by_name(doc)["SSH gateway"]
    assert "gw.example.com:2222" in _by_name(doc)["SSH gateway"]["detail"]
    assert _by_name(doc)["ssh"]["status"] == "OK"
    _setup(sandbox, kubectl, keys + 'gateway-host-key = "ssh-ed25519 not-a-key"\n')
    code, doc = _doctor(sandbox)
    assert code == 1 and _failures(doc) == ["SSH gateway"]
    assert "profile key gateway-host-key" in _by_name(doc)["SSH gateway"]["detail"]


def test_missing_pkcs11_module(sandbox, kubectl):
    _setup(sandbox, kubectl, 'attest-with = "pkcs11:token=ci;object=k"\n'
                             'pkcs11-module = "/nonexistent/libykcs11.so"\n')
    code, doc = _doctor(sandbox)
    assert code == 1 and _failures(doc) == ["PKCS#11 module"]
    check = _by_name(doc)["PKCS#11 module"]
    assert "/nonexistent/libykcs11.so does not exist" in check["detail"]
    assert "pkcs11-module" in check["hint"]


@needs(softhsm.available(), "SoftHSM2 is not installed")
def test_token_key_then_locked_token(sandbox, kubectl, tmp_path):
    box = softhsm.SoftHSM(tmp_path / "hsm")
    label = box.new_token("ci")
    env = {**box.env, "PIN": softhsm.USER_PIN}
    made = sandbox.run("keys", "generate", f"pkcs11:token={label};object=k;id=%01",
                       f"--pkcs11-module={softhsm.MODULE}", "--pin-source=env:PIN",
                       extra_env=env)
    assert made.returncode == 0, made.stderr
    _setup(sandbox, kubectl, f'attest-with = "pkcs11:token={label};object=k"\n'
                             f'pkcs11-module = "{softhsm.MODULE}"\n')
    code, doc = _doctor(sandbox, extra_env=box.env)
    checks = _by_name(doc)
    assert code == 0, doc
    assert checks["token"]["status"] == "OK" and checks["PIN"]["status"] == "OK"
    assert checks["key"]["status"] == "OK" and "no PIN used" in checks["key"]["detail"]

    # SoftHSM2 keeps no retry counter, so wrong PINs never lock it: set the token's flag as
    # a YubiKey sets it after three wrong PINs.
    box.add_token_flags(label, CKF_USER_PIN_LOCKED)
    code, doc = _doctor(sandbox, extra_env=box.env)
    assert code == 1 and _failures(doc) == ["PIN"]
    assert "locked" in _by_name(doc)["PIN"]["detail"]
    assert "PUK" in _by_name(doc)["PIN"]["hint"]
    assert _by_name(doc)["key"]["status"] == "SKIP"


def test_exec_entry_without_cluster_info(sandbox, kubectl):
    _setup(sandbox, kubectl, provide=False)
    code, doc = _doctor(sandbox)
    assert code == 1 and "exec entry" in _failures(doc)
    assert "provideClusterInfo: true" in _by_name(doc)["exec entry"]["hint"]


def test_misspelt_profile_is_refused_as_login_refuses_it(sandbox, kubectl):
    _setup(sandbox, kubectl)
    result = sandbox.run("doctor", "--cluster=prd")
    login = sandbox.run("login", "--cluster=prd")
    # Before: a FAIL line among SKIPs (exit 1), where every other command refuses the name.
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == login.stderr
    assert "no profile 'prd'" in result.stderr and "did you mean --cluster prod?" \
        in result.stderr


# ---- can kubectl find the exec entry's command? doctor answers as kubectl does ------------

def _kubectl_version(sandbox, kubectl: str, cwd=None) -> subprocess.CompletedProcess:
    """Real kubectl through the exec entry, in the environment doctor ran in."""
    return subprocess.run([kubectl, "get", "--raw", "/version"], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=cwd,
                          env={k: v for k, v in sandbox.env.items() if k != "KUBECTL"})


def _set_command(sandbox, command: str, env: list | None = None) -> None:
    path = Path(sandbox.env["KUBECONFIG"])
    doc = yaml.safe_load(path.read_text())
    doc["users"][0]["user"]["exec"]["command"] = command
    if env is not None:
        doc["users"][0]["user"]["exec"]["env"] = env
    path.write_text(yaml.safe_dump(doc))


def test_command_not_on_path(sandbox, kubectl):
    _setup(sandbox, kubectl)
    sandbox.env["PATH"] = os.environ.get("PATH", "")  # an install that did not reach PATH
    code, doc = _doctor(sandbox)
    kubectl_ran = _kubectl_version(sandbox, kubectl)
    # Before: doctor said OK and exited 0, and kubectl then failed like this.
    assert kubectl_ran.returncode != 0
    assert "executable cred-helper not found" in kubectl_ran.stderr
    assert code == 1 and _failures(doc) == ["exec command"]
    check = _by_name(doc)["exec command"]
    assert check["detail"] == "kubectl cannot run `cred-helper`: it is not on PATH"
    assert "pipx ensurepath" in check["hint"] and "--command PATH" in check["hint"]

    sandbox.env["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    code, doc = _doctor(sandbox)
    assert code == 0, doc
    assert _by_name(doc)["exec command"]["detail"].startswith(
        f"`cred-helper` is {BIN / 'cred-helper'} (cred-helper, version ")
    assert _kubectl_version(sandbox, kubectl).returncode == 0


def test_the_entrys_own_env_does_not_find_the_command(sandbox, kubectl):
    """The exec entry's `env` is given to the plugin; kubectl looks the command up in its own
    PATH. A PATH set there does not help, for kubectl as for doctor."""
    _setup(sandbox, kubectl)
    sandbox.env["PATH"] = os.environ.get("PATH", "")
    _set_command(sandbox, "cred-helper", env=[{"name": "PATH", "value": str(BIN)}])
    code, doc = _doctor(sandbox)
    ran = _kubectl_version(sandbox, kubectl)
    assert ran.returncode != 0 and "executable cred-helper not found" in ran.stderr
    assert code == 1 and _failures(doc) == ["exec command"]


def test_relative_command_is_found_beside_the_kubeconfig(sandbox, kubectl, tmp_path):
    """`bin/cred-helper` in a kubeconfig means beside that file, wherever kubectl runs."""
    _setup(sandbox, kubectl)
    sandbox.env["PATH"] = os.environ.get("PATH", "")
    _set_command(sandbox, "bin/cred-helper")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "bin").mkdir(parents=True)
    (elsewhere / "bin" / "cred-helper").symlink_to(BIN / "cred-helper")  # a decoy in cwd
    code, doc = _doctor(sandbox)
    assert code == 1 and _failures(doc) == ["exec command"]
    assert f"{sandbox.root / 'bin' / 'cred-helper'} cannot be used" in \
        _by_name(doc)["exec command"]["detail"]
    assert _kubectl_version(sandbox, kubectl, cwd=elsewhere).returncode != 0

    (sandbox.root / "bin").mkdir()
    (sandbox.root / "bin" / "cred-helper").symlink_to(BIN / "cred-helper")
    code, doc = _doctor(sandbox)
    assert code == 0, doc
    assert _kubectl_version(sandbox, kubectl, cwd=elsewhere).returncode == 0


def test_found_only_through_a_relative_path_entry(sandbox, kubectl, tmp_path):
    """Go refuses a command found through a relative PATH directory (exec.ErrDot)."""
    _setup(sandbox, kubectl)
    (tmp_path / "rel").mkdir()
    (tmp_path / "rel" / "cred-helper").symlink_to(BIN / "cred-helper")
    sandbox.env["PATH"] = f"rel{os.pathsep}{os.environ.get('PATH', '')}"
    ran = _kubectl_version(sandbox, kubectl, cwd=tmp_path)
    assert ran.returncode != 0 and "executable cred-helper not found" in ran.stderr
    result = subprocess.run(as_kubectl_would(CRED_HELPER, "doctor", "-o", "json"),
                            env=sandbox.env, capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    check = _by_name(json.loads(result.stdout))["exec command"]
    assert result.returncode == 1 and check["status"] == "FAIL"
    assert "relative PATH entry" in check["detail"], check


def test_command_that_cannot_start(sandbox, kubectl, tmp_path):
    """Found, yet broken: a pipx venv whose Python is gone."""
    _setup(sandbox, kubectl)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "cred-helper").write_text("#!/nonexistent/python3.11\n")
    (broken / "cred-helper").chmod(0o755)
    sandbox.env["PATH"] = f"{broken}{os.pathsep}{os.environ.get('PATH', '')}"
    assert _kubectl_version(sandbox, kubectl).returncode != 0
    code, doc = _doctor(sandbox)
    assert code == 1 and _failures(doc) == ["exec command"]
    check = _by_name(doc)["exec command"]
    assert check["detail"].startswith(f"{broken / 'cred-helper'} does not start as "
                                      "cred-helper: it cannot start")
    assert "reinstall" in check["hint"]


# ---- which profile a bare doctor checks -----------------------------------------------------

def test_bare_doctor_checks_the_profile_kubectls_context_runs(sandbox, kubectl):
    _setup(sandbox, kubectl)
    config = sandbox.root / "config" / "cred-helper" / "config.toml"
    config.write_text('[clusters.dev]\nissuer = "csr"\n' + config.read_text())
    result = sandbox.run("doctor", "-o", "json")
    doc = json.loads(result.stdout)
    assert result.returncode == 0, doc
    assert "[clusters.prod]" in _by_name(doc)["profile"]["detail"]
    assert "the profile kubectl's current context 'prod' runs" in \
        _by_name(doc)["profile"]["detail"]


def test_bare_doctor_never_guesses_among_profiles(sandbox, kubectl):
    _setup(sandbox, kubectl)
    config = sandbox.root / "config" / "cred-helper" / "config.toml"
    config.write_text('[clusters.dev]\nissuer = "csr"\n' + config.read_text())
    Path(sandbox.env["KUBECONFIG"]).unlink()  # no current context to go by
    result = sandbox.run("doctor")
    # Before: the profile line failed and its hint named the first profile, dev.
    assert result.returncode == 2 and result.stdout == ""
    assert f"doctor checks one profile, and {config} has dev, prod" in result.stderr
    assert "`cred-helper doctor --cluster dev` (or prod)" in result.stderr


def test_bare_doctor_with_one_profile_checks_it(sandbox, kubectl):
    _setup(sandbox, kubectl)
    Path(sandbox.env["KUBECONFIG"]).unlink()
    result = sandbox.run("doctor", "-o", "json")
    profile = _by_name(json.loads(result.stdout))["profile"]
    assert profile["status"] == "OK" and "(the only profile in " in profile["detail"]


# ---- the keyring, only where the profile keeps something in it ------------------------------

def test_no_keyring_verdict_for_a_profile_that_never_uses_it(sandbox, kubectl):
    _setup(sandbox, kubectl)  # a CSR profile with a token file: the keyring is never touched
    sandbox.env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    code, doc = _doctor(sandbox)
    assert code == 0, doc
    # Before: WARN "no OS keyring" for a profile that keeps nothing there.
    assert _by_name(doc)["keyring"] == {
        "name": "keyring", "status": "SKIP", "hint": "",
        "detail": "this profile keeps nothing in the OS keyring"}


def test_keyring_warning_says_what_an_oidc_profile_keeps_there(sandbox, kubectl):
    _setup(sandbox, kubectl)
    config = sandbox.root / "config" / "cred-helper" / "config.toml"
    config.write_text('[clusters.prod]\nissuer = "oidc"\n'
                      'oidc-issuer-url = "https://127.0.0.1:1"\noidc-client-id = "c"\n')
    sandbox.env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    _, doc = _doctor(sandbox)
    keyring = _by_name(doc)["keyring"]
    assert keyring["status"] == "WARN"
    assert keyring["detail"].startswith("no OS keyring for OIDC refresh tokens")
    assert "0600 file" in keyring["hint"]
