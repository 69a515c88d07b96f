"""The cache hit: no heavy imports, and exactly the credential the miss printed."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.harness import CRED_HELPER, as_kubectl_would

HEAVY = ("click", "cryptography", "requests", "keyring", "pkcs11", "urllib3", "yaml",
         "filelock", "json", "re", "hashlib")


def _imported(stderr: str) -> set[str]:
    """Top-level module names from `python -X importtime` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_cache_hit_imports_nothing_heavy(sandbox):
    info = sandbox.exec_info()
    miss = sandbox.run(*sandbox.base_args(), exec_info=info)
    assert miss.returncode == 0, miss.stderr
    env = dict(sandbox.env, KUBERNETES_EXEC_INFO=json.dumps(info))
    command = as_kubectl_would(sys.executable, "-X", "importtime", CRED_HELPER,
                               *sandbox.base_args())
    hit = subprocess.run(command, env=env, capture_output=True, text=True)
    assert hit.returncode == 0
    imported = _imported(hit.stderr)
    assert "cred_helper" in imported, "the importtime evidence must cover our package"
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
    assert json.loads(hit.stdout)["status"] == json.loads(miss.stdout)["status"]
    assert sandbox.server.csr_creations == 1


def test_hit_answers_in_the_requested_api_version(sandbox):
    v1beta1 = sandbox.exec_info(api_version="client.authentication.k8s.io/v1beta1")
    for _ in range(2):
        out = sandbox.run(*sandbox.base_args(), exec_info=v1beta1)
        assert json.loads(out.stdout)["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    v1 = sandbox.run(*sandbox.base_args(), exec_info=sandbox.exec_info())
    assert json.loads(v1.stdout)["apiVersion"] == "client.authentication.k8s.io/v1"
    assert sandbox.server.csr_creations == 1


def test_changed_profile_is_not_served_a_stale_alias(sandbox):
    config = sandbox.root / "config" / "cred-helper" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[clusters.prod]\nissuer = "csr"\nbootstrap-token-file = '
                      f'"{sandbox.token_file}"\n')
    info = sandbox.exec_info()
    assert sandbox.run("--cluster=prod", exec_info=info).returncode == 0
    config.write_text(config.read_text() + 'key = "p256"\n')
    out = sandbox.run("--cluster=prod", exec_info=info)
    assert out.returncode == 0, out.stderr
    assert "EC PRIVATE KEY" not in out.stdout  # PKCS#8, not SEC1
    assert sandbox.server.csr_creations == 2, "a changed profile shapes a new credential"


def _single_line_warning(stderr: str, words: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cred-helper: warning:"), stderr
    assert words in lines[0]


def test_a_damaged_entry_is_discarded_with_one_warning_and_replaced(sandbox):
    info = sandbox.exec_info()
    first = sandbox.run(*sandbox.base_args(), exec_info=info)
    assert first.returncode == 0, first.stderr
    (entry,) = sandbox.cache_dir.glob("*.json")
    data = bytearray(entry.read_bytes())
    data[data.index(b"BEGIN CERTIFICATE") + 2] ^= 0x01  # one flipped bit in the certificate
    entry.write_bytes(bytes(data))
    out = sandbox.run(*sandbox.base_args(), exec_info=info)
    assert out.returncode == 0, out.stderr
    _single_line_warning(out.stderr, "checksum mismatch")
    assert json.loads(out.stdout)["status"] != json.loads(first.stdout)["status"]
    assert sandbox.server.csr_creations == 2
    again = sandbox.run(*sandbox.base_args(), exec_info=info)
    assert again.stdout == out.stdout and again.stderr == ""


def test_a_directory_where_the_alias_belongs_costs_one_warning_not_the_credential(sandbox):
    info = sandbox.exec_info()
    assert sandbox.run(*sandbox.base_args(), exec_info=info).returncode == 0
    (alias,) = sandbox.cache_dir.glob("*.alias")
    alias.unlink()
    alias.mkdir(mode=0o700)
    out = sandbox.run(*sandbox.base_args(), exec_info=info)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"]["clientCertificateData"]
    _single_line_warning(out.stderr, str(alias))
    assert not list(sandbox.cache_dir.glob(".tmp-*"))
    assert sandbox.server.csr_creations == 1


def _certificate(stdout: str):
    from cryptography import x509

    return x509.load_pem_x509_certificate(
        json.loads(stdout)["status"]["clientCertificateData"].encode())


def test_an_alias_naming_another_clusters_entry_is_not_followed(sandbox):
    """Two clusters, each with its own CA and entry; this cluster's alias, well formed, made
    to name the other's entry. The hit must not print a certificate this cluster's CA never
    signed: the full CLI serves this cluster's own, and points the alias back."""
    from tests.support.apiserver import LocalAPIServer

    with LocalAPIServer() as other:
        other.tokens[sandbox.token] = sandbox.server.tokens[sandbox.token]
        other.auto_approve = sandbox.server.auto_approve
        here = sandbox.exec_info()
        there = {**here, "spec": {**here["spec"], "cluster": other.cluster_entry()}}
        mine = sandbox.run(*sandbox.base_args(), exec_info=here)
        theirs = sandbox.run(*sandbox.base_args(), exec_info=there)
        assert mine.returncode == 0 and theirs.returncode == 0, mine.stderr + theirs.stderr
        aliases = {p: p.read_bytes() for p in sandbox.cache_dir.glob("*.alias")}
        first, second = aliases
        first.write_bytes(aliases[second])  # each alias now names the other cluster's entry
        second.write_bytes(aliases[first])
        for info, ca in ((here, sandbox.server.ca), (there, other.ca)):
            out = sandbox.run(*sandbox.base_args(), exec_info=info)
            assert out.returncode == 0, out.stderr
            _certificate(out.stdout).verify_directly_issued_by(ca.cert)  # its own CA's
            assert out.stderr == ""
        assert sandbox.server.csr_creations == 1 and other.csr_creations == 1
        assert {p: p.read_bytes() for p in aliases} == aliases, "pointed back"


def test_an_alias_of_another_api_version_is_not_followed(sandbox):
    v1 = sandbox.exec_info()
    v1beta1 = sandbox.exec_info(api_version="client.authentication.k8s.io/v1beta1")
    assert sandbox.run(*sandbox.base_args(), exec_info=v1).returncode == 0
    assert sandbox.run(*sandbox.base_args(), exec_info=v1beta1).returncode == 0
    aliases = sorted(sandbox.cache_dir.glob("*.alias"))
    beta = next(p for p in aliases if p.read_text().endswith("v1beta1\n"))
    plain = next(p for p in aliases if p != beta)
    plain.write_bytes(beta.read_bytes())  # v1's shortcut now says v1beta1
    out = sandbox.run(*sandbox.base_args(), exec_info=v1)
    assert json.loads(out.stdout)["apiVersion"] == "client.authentication.k8s.io/v1"
    assert out.stderr == "" and sandbox.server.csr_creations == 1
