"""Renewing a certificate inside its refresh margin while a person is the approver (issue 15's
slow approver): real kubectl is served the still-valid certificate at once, one CSR waits for
the person, and a later run collects it."""

from __future__ import annotations

import json
import time

from cred_helper.cache.entrydoc import unseal
from tests.support.harness import edit_entry

RENEWAL_WARNING = "cred-helper: warning: could not renew the credential"


def _entry(sandbox) -> dict:
    (path,) = sandbox.cache_dir.glob("*.json")
    return json.loads(unseal(path.read_bytes()))


def _collection_reads(server) -> int:
    """GETs of the CSR collection: a watch, or the list that finds a pending CSR again."""
    return sum(1 for method, path, _ in server.requests
               if method == "GET" and path.endswith("/certificatesigningrequests"))


def _served(result, sandbox, serial: str) -> None:
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["gitVersion"].startswith("v1.")
    assert _entry(sandbox)["serial"] == serial, "the still-valid certificate was served"
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("cred-helper:")]
    assert len(warnings) == 1 and warnings[0].startswith(RENEWAL_WARNING), result.stderr
    assert "not approved yet" in warnings[0]
    assert "waiting up to" not in result.stderr  # nobody is asked to wait for a person


def test_a_certificate_inside_its_margin_is_served_while_its_renewal_waits(sandbox, kubectl):
    server = sandbox.server
    kubeconfig = sandbox.kubeconfig(sandbox.base_args())
    first = sandbox.kubectl(kubectl, kubeconfig, "get", "--raw", "/version")
    assert first.returncode == 0, first.stderr
    serial = _entry(sandbox)["serial"]

    # Inside the refresh margin (100 s left of 30 minutes), and from now on a person approves.
    (path,) = sandbox.cache_dir.glob("*.json")
    now = time.time()
    edit_entry(path, lambda doc: doc.update(issued_at=now - 1700, not_after=now + 100))
    server.auto_approve = None

    renewal = sandbox.kubectl(kubectl, kubeconfig, "get", "--raw", "/version")
    _served(renewal, sandbox, serial)
    assert server.csr_creations == 2
    (waiting,) = [n for n, csr in server.csrs.items() if not csr.get("status")]
    assert waiting in renewal.stderr, "the warning names the request an approver must act on"
    assert list(sandbox.cache_dir.glob("*.pending")), "kept for the next run"

    # Every command in the window: served again, the same request, and no second wait on it.
    for _ in range(3):
        reads = _collection_reads(server)
        again = sandbox.kubectl(kubectl, kubeconfig, "auth", "whoami", "-o", "json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["status"]["userInfo"]["username"] == \
            "alice@example.com"
        assert _entry(sandbox)["serial"] == serial
        assert server.csr_creations == 2, "one CSR waits; no command makes another"
        assert waiting in again.stderr
        assert _collection_reads(server) == reads + 1, "one look at the request, no watch"

    # The person approves (real kubectl, an admin's certificate); the next run collects it.
    approved = sandbox.kubectl(kubectl, sandbox.admin_kubeconfig(), "certificate", "approve",
                               waiting)
    assert approved.returncode == 0, approved.stderr
    collected = sandbox.kubectl(kubectl, kubeconfig, "get", "--raw", "/version")
    assert collected.returncode == 0, collected.stderr
    assert "cred-helper:" not in collected.stderr, collected.stderr
    renewed = _entry(sandbox)
    assert renewed["serial"] != serial and renewed["source"] == waiting
    assert renewed["not_after"] - time.time() > 1500, "a new 30-minute certificate"
    assert server.csr_creations == 2
    assert not list(sandbox.cache_dir.glob("*.pending"))


def test_an_expired_certificate_still_waits_for_the_person(sandbox, kubectl):
    """EXPIRED is renew or fail: nothing valid to serve, so the wait is the approval wait."""
    server = sandbox.server
    kubeconfig = sandbox.kubeconfig(sandbox.base_args("--approval-timeout=3s"))
    assert sandbox.kubectl(kubectl, kubeconfig, "get", "--raw", "/version").returncode == 0
    (path,) = sandbox.cache_dir.glob("*.json")
    edit_entry(path, lambda doc: doc.update(not_after=time.time() - 1))
    server.auto_approve = None
    failed = sandbox.kubectl(kubectl, kubeconfig, "get", "--raw", "/version")
    assert failed.returncode != 0
    assert "was not approved within 3s" in failed.stderr
    assert RENEWAL_WARNING not in failed.stderr
