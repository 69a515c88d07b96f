"""Every bad input: the exit code, one error line (plus a hint), and no secret on stderr."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from tests.support.harness import assert_no_secrets, one_error


def _fails(sandbox, *args, code=1, exec_info=None, **kw) -> str:
    result = sandbox.run(*args, exec_info=exec_info, **kw)
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    assert_no_secrets(result.stderr, sandbox.token)
    return one_error(result.stderr)


@pytest.mark.parametrize(("args", "expected"), [
    (["--ttl=5m"], "--ttl: 5m0s is shorter than the CSR API's minimum of 10m"),
    (["--ttl=soon"], "--ttl: 'soon' is not a duration"),
    (["--cache=redis"], "--cache: 'redis' is not one of file, keyring, none"),
    (["--key=rsa"], "--key: 'rsa' is not one of ed25519, p256"),
    (["--key=pkcs11:token=yk;object=x"], "a hardware key cannot be the certificate's key"),
    (["--pin-source=stdin"], "is not prompt, env:VAR, file:PATH or cmd:COMMAND"),
    (["--approval-timeout=0"], "--approval-timeout: '0' is not a duration"),
    (["--server=http://127.0.0.1:1"], "is not an https:// URL"),
    (["--config=/nonexistent/c.toml"], "config file /nonexistent/c.toml does not exist"),
    (["--no-such-flag"], "No such option '--no-such-flag'"),
])
def test_bad_flags_are_usage_errors(sandbox, args, expected):
    line = _fails(sandbox, *sandbox.base_args(*args), code=2)
    assert expected in line


def test_no_issuer(sandbox):
    line = _fails(sandbox, "--cluster=prod", code=2)
    assert "no profile 'prod'" in line and "does not exist" in line


@pytest.mark.parametrize(("profile", "expected"), [
    ('ttl = "5m"', "profile key ttl in [clusters.prod]"),
    ('ttl = true', "profile key ttl in [clusters.prod]"),
    ('colour = "blue"', "unknown profile key colour in [clusters.prod]"),
    ('subject-o = [1]', "profile key subject-o in [clusters.prod]"),
    ('issuer = [', "is not valid TOML"),
])
def test_bad_profile_values_name_the_key(sandbox, profile, expected):
    config = sandbox.root / "c.toml"
    config.write_text(f'[clusters.prod]\nissuer = "csr"\n{profile}\n')
    line = _fails(sandbox, "--cluster=prod", f"--config={config}",
                  f"--bootstrap-token-file={sandbox.token_file}", code=2)
    assert expected in line


def test_flags_override_environment_and_profile(sandbox):
    config = sandbox.root / "c.toml"
    config.write_text('[clusters.prod]\nissuer = "csr"\nttl = "5m"\n')
    # The profile's TTL would fail; the flag wins over it.
    result = sandbox.run("--cluster=prod", "--ttl=20m",
                         f"--bootstrap-token-file={sandbox.token_file}",
                         exec_info=sandbox.exec_info(),
                         extra_env={"CRED_HELPER_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    (csr,) = sandbox.server.csrs.values()
    assert csr["spec"]["expirationSeconds"] == 1200


@pytest.mark.parametrize("raw", ["{not json", "[]", '{"apiVersion": "v2", "kind": "X"}',
                                 '{"apiVersion": "client.authentication.k8s.io/v1", '
                                 '"kind": "ExecCredential", "spec": {"interactive": "yes"}}'])
def test_malformed_exec_info_answers_v1_with_a_warning(sandbox, raw):
    result = sandbox.run(*sandbox.base_args(f"--server={sandbox.server.url}",
                                            f"--certificate-authority={sandbox.ca_file}"),
                         exec_info=raw)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["apiVersion"] == "client.authentication.k8s.io/v1"
    assert "cred-helper: warning: KUBERNETES_EXEC_INFO" in result.stderr
    assert_no_secrets(result.stderr, sandbox.token)


def test_corrupt_cache_entry_is_discarded(sandbox):
    info = sandbox.exec_info()
    assert sandbox.run(*sandbox.base_args(), exec_info=info).returncode == 0
    (entry,) = sandbox.cache_dir.glob("*.json")
    entry.write_text('{"format": 1, "key": "trunc')
    result = sandbox.run(*sandbox.base_args(), exec_info=info)
    assert result.returncode == 0, result.stderr
    assert "warning: discarding unreadable cache entry" in result.stderr
    assert json.loads(entry.read_text())["format"] == 2
    assert sandbox.server.csr_creations == 2


def test_group_readable_cache_dir_is_refused(sandbox):
    info = sandbox.exec_info()
    assert sandbox.run(*sandbox.base_args(), exec_info=info).returncode == 0
    os.chmod(sandbox.cache_dir, 0o750)
    line = _fails(sandbox, *sandbox.base_args(), exec_info=info)
    assert "readable or writable by group/others" in line


def test_symlinked_cache_entry_is_refused(sandbox):
    info = sandbox.exec_info()
    assert sandbox.run(*sandbox.base_args(), exec_info=info).returncode == 0
    (entry,) = sandbox.cache_dir.glob("*.json")
    planted = sandbox.root / "planted.json"
    planted.write_text(entry.read_text())
    planted.chmod(0o600)
    entry.unlink()
    entry.symlink_to(planted)
    assert "is a symlink" in _fails(sandbox, *sandbox.base_args(), exec_info=info)


def test_symlinked_cache_dir_is_refused(sandbox):
    real = sandbox.root / "elsewhere"
    real.mkdir(mode=0o700)
    sandbox.cache_dir.parent.mkdir(parents=True)
    sandbox.cache_dir.symlink_to(real)
    line = _fails(sandbox, *sandbox.base_args(), exec_info=sandbox.exec_info())
    assert "is a symlink" in line


def test_unreachable_server(sandbox):
    line = _fails(sandbox, *sandbox.base_args("--server=https://127.0.0.1:9",
                                              f"--certificate-authority={sandbox.ca_file}"))
    assert "cannot reach the API server at https://127.0.0.1:9" in line


def test_untrusted_server_certificate(sandbox):
    from tests.support.pki import CA

    other = sandbox.root / "other-ca.crt"
    other.write_bytes(CA("someone-else").cert_pem)
    line = _fails(sandbox, *sandbox.base_args(f"--server={sandbox.server.url}",
                                              f"--certificate-authority={other}"))
    assert "TLS verification of" in line
    assert line.endswith("failed: self-signed certificate in certificate chain"), line


def test_wrong_bootstrap_token(sandbox):
    (sandbox.root / "bad.token").write_text("not-a-known-token\n")
    (sandbox.root / "bad.token").chmod(0o600)
    line = _fails(sandbox, "--issuer=csr", f"--bootstrap-token-file={sandbox.root / 'bad.token'}",
                  exec_info=sandbox.exec_info())
    assert "did not accept the token in" in line
    assert "not-a-known-token" not in line


def test_missing_bootstrap(sandbox):
    line = _fails(sandbox, "--issuer=csr", exec_info=sandbox.exec_info(), code=2)
    assert "no bootstrap credential" in line


def test_bootstrap_without_rbac(sandbox):
    sandbox.server.csr_creators = {"someone-else"}
    line = _fails(sandbox, *sandbox.base_args(), exec_info=sandbox.exec_info())
    assert "forbidden:" in line


def test_no_server_anywhere(sandbox):
    line = _fails(sandbox, *sandbox.base_args(), code=2)
    assert "no API server" in line


def test_denied_csr(sandbox):
    sandbox.server.auto_approve = None
    import threading

    def deny():
        sandbox.server.deny(sandbox.server.wait_for_csr(), "NotOnCall", "not on call today")

    threading.Thread(target=deny).start()
    line = _fails(sandbox, *sandbox.base_args(), exec_info=sandbox.exec_info())
    assert "was denied: NotOnCall: not on call today" in line


def test_signer_failure(sandbox):
    sandbox.server.auto_approve = None
    import threading

    def fail():
        name = sandbox.server.wait_for_csr()
        with sandbox.server._cond:
            sandbox.server.csrs[name]["spec"]["usages"] = ["server auth"]
        sandbox.server.approve(name)

    threading.Thread(target=fail).start()
    line = _fails(sandbox, *sandbox.base_args(), exec_info=sandbox.exec_info())
    assert "was failed: SignerValidationFailure" in line


def test_reason_is_recorded_on_the_csr(sandbox):
    result = sandbox.run(*sandbox.base_args("--reason=INC-1234 node drain"),
                         exec_info=sandbox.exec_info())
    assert result.returncode == 0, result.stderr
    (csr,) = sandbox.server.csrs.values()
    assert csr["metadata"]["annotations"] == {"cred-helper/reason": "INC-1234 node drain"}


def test_insecure_cluster_without_a_ca_is_refused(sandbox):
    info = sandbox.exec_info()
    del info["spec"]["cluster"]["certificate-authority-data"]
    info["spec"]["cluster"]["insecure-skip-tls-verify"] = True
    line = _fails(sandbox, *sandbox.base_args(), exec_info=info, code=2)
    assert "always verifies TLS" in line


def test_insecure_bootstrap_kubeconfig_without_a_ca_sends_no_credential(sandbox):
    from tests.support.apiserver import write_kubeconfig

    path = sandbox.root / "boot.kubeconfig"
    write_kubeconfig(str(path), sandbox.server, {"token": sandbox.token})
    doc = yaml.safe_load(path.read_text())
    cluster = doc["clusters"][0]["cluster"]
    del cluster["certificate-authority-data"]
    cluster["insecure-skip-tls-verify"] = True
    path.write_text(yaml.safe_dump(doc))
    line = _fails(sandbox, "--issuer=csr", f"--bootstrap-kubeconfig={path}", code=2)
    assert "always verifies TLS" in line
    assert sandbox.server.requests == []


def test_without_watch_permission_it_polls(sandbox):
    sandbox.server.auto_approve = None
    sandbox.server.watch_allowed = False
    import threading
    import time

    def approve_later():
        name = sandbox.server.wait_for_csr()
        time.sleep(1.5)
        sandbox.server.approve(name)

    threading.Thread(target=approve_later).start()
    result = sandbox.run(*sandbox.base_args(), exec_info=sandbox.exec_info())
    assert result.returncode == 0, result.stderr
    csr_gets = [r[1] for r in sandbox.server.requests if r[0] == "GET"
                and "certificatesigningrequests" in r[1]]
    watches = [p for p in csr_gets if p.endswith("/certificatesigningrequests")]
    assert len(watches) == 1, "one watch, refused; never asked again"
    assert len(csr_gets) - len(watches) >= 1, "approval was noticed by polling"
