"""Issued certificates against a misbehaving signer, the pending CSR taken up again, renewals
that do not wait for a person, and secret files that others can read."""

from __future__ import annotations

import json
import os
import re
import stat
import threading
import time

import pytest

from cred_helper.cache.pending import PendingStore
from cred_helper.cache.sidefile import SideFiles
from cred_helper.config import Settings
from cred_helper.errors import ServerError, StillPending
from cred_helper.issuers.csr import CsrIssuer
from cred_helper.kube import BearerAuth, Endpoint, KubeClient
from tests.support.apiserver import write_kubeconfig
from tests.support.harness import assert_no_secrets, edit_entry, one_error
from tests.support.pki import CA


def _get(sandbox, *extra):
    return sandbox.run("get", *sandbox.base_args(*extra), exec_info=sandbox.exec_info())


def _nothing_kept(sandbox):
    kept = [p.name for p in sandbox.cache_dir.glob("*")
            if p.suffix in (".json", ".pending", ".alias")] if sandbox.cache_dir.exists() else []
    assert not kept, kept


@pytest.mark.parametrize("knob, value, message", [
    ("other_ca", CA(), "does not chain to the cluster CA"),
    ("add_groups", ("system:masters",), "adds groups that were not requested: system:masters"),
    ("other_key", True, "for another key"),
    ("no_client_auth", True, "not valid for client authentication"),
    ("not_before_offset", 900.0, "not valid yet"),
])
def test_a_bad_certificate_is_one_error_and_nothing_is_kept(sandbox, knob, value, message):
    setattr(sandbox.server.signer, knob, value)
    result = _get(sandbox)
    assert result.returncode == 1
    assert result.stdout == ""
    assert message in one_error(result.stderr)
    assert_no_secrets(result.stderr, sandbox.token)
    _nothing_kept(sandbox)


def test_a_chain_failure_hints_at_signer_ca(sandbox):
    signer = CA("client-signer")
    sandbox.server.signer.other_ca = signer
    result = _get(sandbox)
    assert "hint: many clusters sign client certificates with a CA other than" in result.stderr
    assert "pass --signer-ca" in result.stderr
    signer_file = sandbox.root / "signer.crt"
    signer_file.write_bytes(signer.cert_pem)
    good = _get(sandbox, f"--signer-ca={signer_file}")
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["status"]["clientCertificateData"]


def test_a_day_long_certificate_is_kept_only_the_ttl(sandbox):
    sandbox.server.signer.ignore_expiration = True
    before = time.time()
    result = _get(sandbox)
    assert result.returncode == 0, result.stderr
    stamp = json.loads(result.stdout)["status"]["expirationTimestamp"]
    expires = time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert expires <= before + 30 * 60 + 1  # not 24 hours
    (entry,) = json.loads(sandbox.run("status", "-o", "json").stdout)
    assert entry["expiresInSeconds"] <= 30 * 60


def test_after_an_approval_timeout_the_next_run_collects_the_same_csr(sandbox):
    server = sandbox.server
    server.auto_approve = None
    first = _get(sandbox, "--approval-timeout=3s")
    assert first.returncode == 1 and first.stdout == ""
    error = one_error(first.stderr)
    (name,) = server.csrs
    assert f"certificate signing request {name} was not approved within 3s" in error
    assert "the next run collects this same request (it makes no new one)" in first.stderr
    waited = re.search(r"waiting up to (\d+)s for approval", first.stderr)
    assert waited and 1 <= int(waited.group(1)) <= 2, first.stderr  # 3s minus the quiet second
    (pending,) = sandbox.cache_dir.glob("*.pending")
    assert stat.S_IMODE(pending.stat().st_mode) == 0o600

    again = _get(sandbox, "--approval-timeout=2s")  # still nobody: the same request again
    assert again.returncode == 1 and name in again.stderr
    assert server.csr_creations == 1

    server.approve(name)
    done = _get(sandbox, "--approval-timeout=10s")
    assert done.returncode == 0, done.stderr
    assert server.csr_creations == 1
    assert not list(sandbox.cache_dir.glob("*.pending"))


def test_a_changed_identity_or_a_denial_drops_the_pending_csr(sandbox):
    server = sandbox.server
    server.auto_approve = None
    assert _get(sandbox, "--approval-timeout=2s").returncode == 1
    # The same entry, but the bootstrap identity's groups changed: that request is not ours.
    server.tokens[sandbox.token] = ("alice@example.com", ["oncall"])
    assert _get(sandbox, "--approval-timeout=2s").returncode == 1
    assert server.csr_creations == 2
    assert len(list(sandbox.cache_dir.glob("*.pending"))) == 1
    name = max(server.csrs, key=lambda n: int(server.csrs[n]["metadata"]["resourceVersion"]))
    server.deny(name, message="not on call")
    denied = _get(sandbox, "--approval-timeout=2s")
    assert denied.returncode == 1
    assert f"{name} was denied: TestDenied: not on call" in one_error(denied.stderr)
    assert not list(sandbox.cache_dir.glob("*.pending"))
    assert server.csr_creations == 2


def test_approved_but_not_signed_is_said_so(sandbox):
    sandbox.server.signer_delay = 3600  # the signer is down
    result = _get(sandbox, "--approval-timeout=2s")
    assert result.returncode == 1
    assert "was approved, but not signed within 2s" in one_error(result.stderr)
    assert "ask a cluster administrator" in result.stderr
    assert "kubectl certificate approve" not in result.stderr.split("hint:", 1)[1]


def _issuer(sandbox, said, tmp_path):
    settings = Settings(issuer="csr", ttl=1800, approval_timeout=300,
                        cache_dir=str(tmp_path / "c"))
    client = KubeClient(Endpoint(sandbox.server.url, sandbox.server.ca.cert_pem),
                        BearerAuth(sandbox.token))
    return CsrIssuer(settings, client, say=said.append,
                     pending=PendingStore(settings.cache_dir, "e" * 64, SideFiles(said.append)))


def test_a_renewal_does_not_wait_for_a_person(sandbox, tmp_path):
    server = sandbox.server
    server.auto_approve = None
    said: list[str] = []
    with pytest.raises(StillPending) as err:
        _issuer(sandbox, said, tmp_path).issue(renewing=True)
    assert said == []  # no "waiting up to ..." for a renewal
    (name,) = server.csrs
    assert name in err.value.message and "not approved yet" in err.value.message
    with pytest.raises(StillPending):
        _issuer(sandbox, said, tmp_path).issue(renewing=True)
    assert server.csr_creations == 1  # the pending one, found again
    server.approve(name)
    issued = _issuer(sandbox, said, tmp_path).issue(renewing=True)
    assert issued.source == name and server.csr_creations == 1
    assert not os.path.exists(tmp_path / "c" / ("e" * 64 + ".pending"))


def test_a_renewal_with_an_auto_approver_gets_its_certificate(sandbox, tmp_path):
    issued = _issuer(sandbox, [], tmp_path).issue(renewing=True)
    assert issued.status["clientCertificateData"].startswith("-----BEGIN CERTIFICATE")


def test_a_pending_record_whose_key_is_of_an_unknown_kind_makes_a_new_csr(sandbox, tmp_path):
    """cryptography raises UnsupportedAlgorithm (not a ValueError) for a key type it does not
    know: a damaged record, dropped like any other, never `unexpected`."""
    import base64

    from cred_helper.cache.pending import PendingCsr

    der = bytes.fromhex("300d020100300506032a0304040100")  # PKCS#8, algorithm 1.2.3.4
    pem = b"-----BEGIN PRIVATE KEY-----\n" + base64.encodebytes(der) + \
        b"-----END PRIVATE KEY-----\n"
    issuer = _issuer(sandbox, [], tmp_path)
    issuer.pending.save(PendingCsr("cred-helper-old", pem, "alice@example.com",
                                   ("oncall", "sre"), 1800, "ed25519", time.time()))
    issued = issuer.issue()
    assert issued.source != "cred-helper-old" and sandbox.server.csr_creations == 1


@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_an_open_token_file_is_refused(sandbox, mode):
    sandbox.token_file.chmod(mode)
    result = _get(sandbox)
    assert result.returncode == 1 and result.stdout == ""
    line = one_error(result.stderr)
    assert str(sandbox.token_file) in line and f"mode {mode:04o}" in line
    assert f"hint: chmod 600 {sandbox.token_file}" in result.stderr
    assert sandbox.server.csr_creations == 0


def test_an_open_bootstrap_kubeconfig_is_refused(sandbox):
    path = sandbox.root / "boot.kubeconfig"
    write_kubeconfig(str(path), sandbox.server, {"token": sandbox.token})
    args = ["get", "--issuer=csr", f"--bootstrap-kubeconfig={path}"]
    assert sandbox.run(*args, exec_info=sandbox.exec_info()).returncode == 0
    path.chmod(0o640)
    result = sandbox.run(*args, "--ttl=45m", exec_info=sandbox.exec_info())
    assert result.returncode == 1
    assert "chmod 600" in result.stderr and str(path) in one_error(result.stderr)


def test_a_lost_answer_to_the_create_leaves_no_second_csr(sandbox):
    """The CSR is on record before it is sent: when the create's answer is lost (a 504 from a
    proxy after the server made it; or a kill), the next run finds that CSR and collects it."""
    server = sandbox.server

    def lose_the_create(method, path, code, body):
        if method == "POST" and path.endswith("/certificatesigningrequests"):
            return 504, b'{"kind":"Status","code":504,"message":"the gateway timed out"}'
        return code, body

    server.tamper = lose_the_create
    lost = _get(sandbox)
    assert lost.returncode == 1 and lost.stdout == ""
    one_error(lost.stderr)
    assert server.csr_creations == 1
    assert list(sandbox.cache_dir.glob("*.pending"))
    server.tamper = None
    again = _get(sandbox)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["status"]["clientCertificateData"]
    assert server.csr_creations == 1, "the CSR made the first time, collected"
    assert not list(sandbox.cache_dir.glob("*.pending"))


def test_a_refused_create_leaves_no_record(sandbox):
    sandbox.server.csr_creators = set()  # nobody may create CSRs: 403
    refused = _get(sandbox)
    assert refused.returncode == 1
    assert not list(sandbox.cache_dir.glob("*.pending"))


def test_a_renewal_that_cannot_see_its_csr_says_so(sandbox, tmp_path):
    """The API server goes away right after the renewal's CSR is made: the error says what
    stood in the way, not that nobody approved it."""
    server = sandbox.server
    server.auto_approve = None

    def away_once_created(method, path, code, body):
        if method == "POST" and path.endswith("/certificatesigningrequests"):
            threading.Timer(0.2, server.stop).start()
        return code, body

    server.tamper = away_once_created
    with pytest.raises(ServerError) as err:
        _issuer(sandbox, [], tmp_path).issue(renewing=True)
    (name,) = server.csrs
    assert f"until the approval wait for {name} ended" in err.value.message
    assert "approved" not in err.value.message
    assert "the next run collects this same request" in err.value.hint


def test_a_refused_renewal_is_not_asked_again_while_the_certificate_works(sandbox):
    """An approver that denies a renewal's CSR is not sent another one by every command inside
    the margin: the refusal is remembered beside the entry, the still-valid certificate is
    served with one warning saying so, and once it has expired the next run asks again."""
    server = sandbox.server
    assert _get(sandbox).returncode == 0
    (path,) = sandbox.cache_dir.glob("*.json")
    now = time.time()
    edit_entry(path, lambda doc: doc.update(issued_at=now - 1700, not_after=now + 100))
    server.auto_approve = None
    first = _get(sandbox)
    assert first.returncode == 0, first.stderr
    assert server.csr_creations == 2
    (waiting,) = [n for n, csr in server.csrs.items() if not csr.get("status")]
    server.deny(waiting, reason="NotOnCall", message="alice is \x1b[31mnot\nhere")

    for _ in range(3):
        again = _get(sandbox)
        assert again.returncode == 0, again.stderr
        (warning,) = [ln for ln in again.stderr.splitlines() if ln.startswith("cred-helper:")]
        assert f"{waiting} was" in warning and "NotOnCall: alice is ?[31mnot here" in warning
        assert "\x1b" not in again.stderr  # the server's text shown, never its escapes
        assert server.csr_creations == 2, "a refused renewal is not asked again"
    assert list(sandbox.cache_dir.glob("*.pending-refused"))

    # Expired: nothing to fall back on, so the next run asks again (and a person approves).
    edit_entry(path, lambda doc: doc.update(issued_at=now - 1900, not_after=now - 10))
    server.auto_approve = lambda csr: True
    renewed = _get(sandbox)
    assert renewed.returncode == 0, renewed.stderr
    assert server.csr_creations == 3
    assert not list(sandbox.cache_dir.glob("*.pending-refused"))


def test_a_user_name_past_x509s_64_bytes_is_issued(sandbox):
    """Kubernetes bounds no user name (an OIDC name with its issuer prefix is longer than 64):
    the certificate names it whole, and nobody sees cryptography's warning about it."""
    name = "oidc:https://login.example.com/tenant#" + "0123456789" * 6 + "ab"
    assert len(name) == 100
    sandbox.server.tokens[sandbox.token] = (name, ["oncall", "o" * 200])
    result = _get(sandbox)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from cred_helper.x509names import subject_of

    cert = x509.load_pem_x509_certificate(
        json.loads(result.stdout)["status"]["clientCertificateData"].encode())
    names = subject_of(cert)
    assert [a.value for a in names.get_attributes_for_oid(NameOID.COMMON_NAME)] == [name]
    assert {a.value for a in names.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)} == \
        {"oncall", "o" * 200}
    again = _get(sandbox)  # and the cache serves it
    assert again.returncode == 0 and again.stdout == result.stdout.replace(
        json.loads(result.stdout)["status"]["expirationTimestamp"],
        json.loads(again.stdout)["status"]["expirationTimestamp"])


def test_a_subject_that_is_not_text_is_one_error(sandbox):
    bad = _get(sandbox, "--subject-cn=caf\udce9")  # a Latin-1 byte on a UTF-8 command line
    assert bad.returncode == 2
    assert "--subject-cn (or its profile key): it is not valid Unicode text" in \
        one_error(bad.stderr)
    # A server's JSON can say the same with an escape: a wrong shape, not a crash.
    sandbox.server.tokens[sandbox.token] = ("\ud800alice", ["oncall"])
    worse = _get(sandbox)
    assert worse.returncode == 1
    assert "a user or group name is not valid Unicode text" in one_error(worse.stderr)
