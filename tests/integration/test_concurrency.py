"""Many kubectl processes starting at once on an empty cache cause exactly one CSR."""

from __future__ import annotations

import json
import subprocess
import time

from cryptography import x509

from tests.support.harness import CRED_HELPER, as_kubectl_would


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
