"""Issuance latency: a cold `cred-helper` run that makes a key, a CSR, waits for approval and
signing, and prints the certificate, with the round trips it took.

    .venv/bin/python bench/issuance.py [--runs N] [--real]

Against the local API server (which approves and signs at once), and with `--real` also
against the real control plane (tests/controlplane/build.py; kube-apiserver with
kube-controller-manager signing), where an approver watching as the admin approves each CSR
as soon as it appears. Every run uses `--cache=none`, so every run is a full issuance. Prints
medians, and the requests per issuance (SelfSubjectReview, create, one watch: three).
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.apiserver import LocalAPIServer

PYTHON = sys.executable
CRED_HELPER = str(Path(PYTHON).parent / "cred-helper")
CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


def issue(cluster: dict, token: str, tmp: str) -> float:
    token_file = Path(tmp, "token")
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    info = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
            "spec": {"interactive": False, "cluster": cluster}}
    env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, "XDG_CACHE_HOME": f"{tmp}/cache",
           "XDG_CONFIG_HOME": f"{tmp}/config", "KUBERNETES_EXEC_INFO": json.dumps(info)}
    start = time.perf_counter()
    done = subprocess.run([CRED_HELPER, "--issuer=csr", "--ttl=30m", "--cache=none",
                           f"--bootstrap-token-file={token_file}"], env=env,
                          capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - start
    if done.returncode != 0 or "clientCertificateData" not in done.stdout:
        raise SystemExit(f"issuance failed: {done.stderr.strip()}")
    return seconds


def report(where: str, seconds: list[float], requests: float) -> None:
    print(f"{where:<36} median {statistics.median(seconds) * 1000:6.0f} ms   "
          f"min {min(seconds) * 1000:6.0f} ms   requests per issuance {requests:.1f}")


def local(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, LocalAPIServer(
            tokens={"bench-token": ("alice@example.com", ["oncall"])},
            auto_approve=lambda csr: True) as server:
        seconds = [issue(server.cluster_entry(), "bench-token", tmp) for _ in range(runs)]
        asked = [r for r in server.requests if r[2] == "alice@example.com"]
        report("local API server (approves at once)", seconds, len(asked) / runs)


class Approver(threading.Thread):
    """Approves each pending CSR of the bench user as the admin, as soon as a watch shows it
    (what an access broker does)."""

    def __init__(self, plane) -> None:
        super().__init__(daemon=True)
        self.plane = plane
        self.ctx = ssl.create_default_context(cadata=plane.ca.cert_pem.decode())
        self.stop = threading.Event()

    def _call(self, method: str, path: str, body: dict | None = None):
        request = urllib.request.Request(
            self.plane.url + path, method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.plane.admin_token}",
                     "Content-Type": "application/json"})
        return urllib.request.urlopen(request, context=self.ctx, timeout=300)

    def run(self) -> None:
        try:
            self._approve()
        except OSError:
            if not self.stop.is_set():  # the control plane going away at the end is no news
                raise

    def _approve(self) -> None:
        while not self.stop.is_set():
            with self._call("GET", f"{CSRS}?watch=true&timeoutSeconds=60") as stream:
                for line in stream:
                    event = json.loads(line)
                    csr = event["object"]
                    if event["type"] != "ADDED" or (csr.get("status") or {}).get("conditions"):
                        continue
                    csr.setdefault("status", {})["conditions"] = [
                        {"type": "Approved", "status": "True", "reason": "Bench",
                         "message": "approved by bench/issuance.py"}]
                    name = csr["metadata"]["name"]
                    self._call("PUT", f"{CSRS}/{name}/approval", csr).close()


def real(runs: int) -> None:
    from tests.support.controlplane import BOOTSTRAP, ControlPlane

    build = Path(__file__).resolve().parent.parent / "tests" / "controlplane" / "build.py"
    built = subprocess.run([PYTHON, str(build)], capture_output=True, text=True)
    if built.returncode != 0:
        print(f"real control plane: skipped ({built.stderr.strip().splitlines()[-1]})")
        return
    with tempfile.TemporaryDirectory() as tmp, ControlPlane(Path(built.stdout.strip())) as plane:
        approver = Approver(plane)
        approver.start()
        seen = len(plane.audit_events("cred-helper/"))
        seconds = [issue(plane.cluster_entry(), plane.bootstrap_token, tmp)
                   for _ in range(runs)]
        time.sleep(1)  # a watch is logged once the server notices its client has gone
        asked = len(plane.audit_events("cred-helper/")) - seen
        approver.stop.set()
        report(f"kube-apiserver + kcm (approver, {BOOTSTRAP[0]})", seconds, asked / runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--real", action="store_true",
                        help="also against the real control plane (needs Go, builds once)")
    args = parser.parse_args()
    print(f"interpreter {PYTHON}; {args.runs} cold issuances each (--cache=none)")
    local(args.runs)
    if args.real:
        real(args.runs)


if __name__ == "__main__":
    main()
