"""Many kubectl processes starting at once on an empty cache cause exactly one CSR; inside
the refresh margin, exactly one renewal."""

from __future__ import annotations

import json
import subprocess
import time

from cryptography import x509

from tests.support.harness import CRED_HELPER, as_kubectl_would, edit_entry


def test_32_processes_one_csr(sandbox):
    env = dict(sandbox.env, KUBERNETES_EXEC_INFO=json.dumps(sandbox.exec_info()))
    procs = [subprocess.Popen(as_kubectl_would(CRED_HELPER, *sandbox.base_args()), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(32)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 32, [err for _, err in outputs]
    assert sandbox.server.csr_creations == 1
    assert len({out for out, _ in outputs}) == 1, "all 32 must get the same credential"
    status = json.loads(outputs[0][0])["status"]
    cert = x509.load_pem_x509_certificate(status["clientCertificateData"].encode())
    assert cert.not_valid_after_utc.timestamp() > time.time() + 25 * 60


def test_16_processes_inside_the_margin_one_renewal(sandbox):
    """All due for renewal at once: one renews while the others are served the still-valid
    certificate at once, without a warning. One new CSR, and every process gets a
    certificate that works (the old one, or the new one)."""
    args = sandbox.base_args()
    env = dict(sandbox.env, KUBERNETES_EXEC_INFO=json.dumps(sandbox.exec_info()))
    assert subprocess.run(as_kubectl_would(CRED_HELPER, *args), env=env,
                          capture_output=True, timeout=60).returncode == 0
    (path,) = sandbox.cache_dir.glob("*.json")
    now = time.time()
    edit_entry(path, lambda doc: doc.update(issued_at=now - 1700, not_after=now + 100))
    procs = [subprocess.Popen(as_kubectl_would(CRED_HELPER, *args), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(16)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 16, [err for _, err in outputs]
    assert [err for _, err in outputs] == [""] * 16
    assert sandbox.server.csr_creations == 2, "the first certificate and one renewal"
    assert 1 <= len({out for out, _ in outputs}) <= 2
