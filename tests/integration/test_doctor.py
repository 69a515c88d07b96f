"""`cred-helper doctor` against the local API server, real kubectl and SoftHSM2: one broken
thing at a time, each found (FAIL on its own line) and hinted; and the all-good case."""

from __future__ import annotations

import json
import re

from tests.support import softhsm
from tests.support.apiserver import CA
from tests.support.harness import profile_kubeconfig
from tests.support.needs import needs

CKF_USER_PIN_LOCKED = 0x40000


def _setup(sandbox, kubectl: str, extra_profile: str = "", provide: bool = True) -> None:
    config = sandbox.root / "config" / "cred-helper"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(
        "[clusters.prod]\nissuer = \"csr\"\n"
        f"bootstrap-token-file = \"{sandbox.token_file}\"\n" + extra_profile)
    profile_kubeconfig(sandbox, ["--cluster=prod"], provide=provide)
    sandbox.env["KUBECTL"] = kubectl


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


def test_misspelt_profile(sandbox, kubectl):
    _setup(sandbox, kubectl)
    result = sandbox.run("doctor", "--cluster=prd")
    assert result.returncode == 1
    assert "FAIL  profile: no profile 'prd'" in result.stdout
    assert "did you mean --cluster prod?" in result.stdout
