"""cred-helper beside kubelogin, its closest peer, against one real OpenID provider, in one run.

    .venv/bin/python bench/kubelogin.py [--runs N] [--cold-runs M]

Builds (once per machine) the pinned kubelogin with tests/controlplane/gotools.py, starts
the tests' oidc-provider on 127.0.0.1, and times, as kubectl runs them (KUBERNETES_EXEC_INFO
set, a fresh parent process each time, stdout read through a pipe):
- the cache hit: `kubelogin get-token` and `cred-helper --issuer=oidc`, N runs of each and of
  `python -I -c pass` (the venv's interpreter, the floor a Python plugin starts from),
  interleaved;
- the cold login through the client-credentials grant, caches cleared before each of M runs.
Prints medians and the ratios cred-helper / kubelogin. Every run must exit 0 and print an
ExecCredential whose token is the access token the provider issued (a cache hit: the same one;
a cold login: a new one, one token request each), else the script stops: timing failures
would say nothing.

What is compared: the client-credentials grant issues no ID token, so both give kubectl the
access token (`--oidc-use-access-token`), which the provider makes a JWT for one audience
(kubelogin decodes the token it prints as a JWT for its expiry). Same client (`confidential`,
HTTP basic auth, the secret from a file for cred-helper, from a flag for kubelogin, which has no
other way), plain http on loopback (both accept it there). kubelogin always asks for the scope
`openid`; cred-helper drops `openid` from a client-credentials request (no ID token comes of
it), so its token lacks the `scope` claim; nothing else differs.

Without Go or the module proxy, kubelogin cannot be built: the script says so in one line and
prints cred-helper's figures alone.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.controlplane import gotools as build
from tests.support.oidc_provider import OIDCProvider, provider_clients

PYTHON = sys.executable
CRED_HELPER = str(Path(PYTHON).parent / "cred-helper")
AUDIENCE = "urn:cred-helper-bench:kubernetes"
CLIENT, SECRET = "confidential", "s3cret-basic"


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Seconds for argv to run and its stdout, measured inside a forked child that is argv's
    parent: cred-helper reads a second run from one parent as kubectl's 401 retry."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            start = time.perf_counter()
            done = subprocess.run(argv, env=env, capture_output=True)
            seconds = time.perf_counter() - start
            report = {"code": done.returncode, "seconds": seconds,
                      "stdout": done.stdout.decode(errors="replace"),
                      "stderr": done.stderr.decode(errors="replace")[-1000:]}
            with os.fdopen(write_end, "w") as fh:
                fh.write(json.dumps(report))
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as fh:
        report = json.loads(fh.read())
    os.waitpid(pid, 0)
    if report["code"] != 0:
        raise SystemExit(f"{Path(argv[0]).name} failed with exit code {report['code']}: "
                         f"{report['stderr'].strip()}")
    return report["seconds"], report["stdout"]


def token_of(name: str, stdout: str, issuer: str) -> str:
    """The token of the one ExecCredential on stdout, checked to be the provider's access token
    for this client and audience."""
    try:
        credential = json.loads(stdout)
        token = credential["status"]["token"]
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise SystemExit(f"{name} printed no ExecCredential with a JWT token ({exc!r}): "
                         f"{stdout[:200]!r}") from None
    if credential.get("kind") != "ExecCredential" or (
            claims.get("iss"), claims.get("aud"), claims.get("client_id")) != (
            issuer, AUDIENCE, CLIENT):
        raise SystemExit(f"{name} printed a token that is not the provider's access token for "
                         f"{CLIENT}: {claims}")
    return token


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=60, help="cache hits of each")
    parser.add_argument("--cold-runs", type=int, default=15, help="cold logins of each")
    args = parser.parse_args()
    try:
        kubelogin: Path | None = build.ensure(build.KUBELOGIN)
        skipped = ""
    except build.Unavailable as exc:
        kubelogin, skipped = None, str(exc)
    with tempfile.TemporaryDirectory() as tmp, OIDCProvider(
            provider_clients(), access_token_audience=AUDIENCE) as provider:
        secret = Path(tmp, "secret")
        secret.write_text(SECRET + "\n")
        secret.chmod(0o600)  # a secret file must be private
        info = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                "spec": {"interactive": False}}
        env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp,
               "XDG_CACHE_HOME": f"{tmp}/cache", "XDG_CONFIG_HOME": f"{tmp}/config",
               "KUBERNETES_EXEC_INFO": json.dumps(info)}
        common = [f"--oidc-issuer-url={provider.issuer}", f"--oidc-client-id={CLIENT}",
                  "--oidc-use-access-token"]
        tools = {"cred-helper": ([CRED_HELPER, "--issuer=oidc", *common,
                                  f"--oidc-client-secret-file={secret}",
                                  "--oidc-grant=client-credentials", "--oidc-scope=openid"],
                                 Path(tmp, "cache"))}
        if kubelogin:
            # The secret as a flag: kubelogin reads it from nowhere else.
            tools["kubelogin"] = ([str(kubelogin), "get-token", *common,
                                   f"--oidc-client-secret={SECRET}",
                                   "--grant-type=client-credentials",
                                   f"--token-cache-dir={tmp}/kubelogin"],
                                  Path(tmp, "kubelogin"))

        def run(name: str) -> tuple[float, str]:
            seconds, stdout = timed(tools[name][0], env)
            return seconds, token_of(name, stdout, provider.issuer)

        # Cold logins, caches cleared each time: one token request each, a new token each.
        cold: dict[str, list[float]] = {name: [] for name in tools}
        requests: dict[str, list[str]] = {}
        for _ in range(args.cold_runs):
            for name, (_, cache) in tools.items():
                shutil.rmtree(cache, ignore_errors=True)
                before, grants = len(provider.requests), len(provider.grants)
                seconds, token = run(name)
                if len(provider.grants) != grants + 1:
                    raise SystemExit(f"{name}'s cold login made no token request")
                cold[name].append(seconds)
                requests[name] = provider.requests[before:]

        # Cache hits: fill each cache once, then every run must serve that same token.
        baseline = [PYTHON, "-I", "-c", "pass"]
        cached = {name: run(name)[1] for name in tools}
        for _ in range(5):  # warm the page cache for all three
            for name in tools:
                run(name)
            timed(baseline, env)
        grants = len(provider.grants)
        hits: dict[str, list[float]] = {name: [] for name in tools}
        bases = []
        for _ in range(args.runs):
            for name in tools:
                seconds, token = run(name)
                if token != cached[name]:
                    raise SystemExit(f"{name} did not serve its cached token")
                hits[name].append(seconds)
            bases.append(timed(baseline, env)[0])
        if len(provider.grants) != grants:
            raise SystemExit("a timed cache hit asked the provider for a token")
        issuer = provider.issuer

    print(f"provider           oidc-provider at {issuer}, client `{CLIENT}` (HTTP basic auth)")
    print("compared           the access token, a JWT for one audience, as the ExecCredential "
          "token (client credentials issue no ID token; --oidc-use-access-token on both)")
    print(f"cred-helper        {CRED_HELPER}")
    if kubelogin:
        print(f"kubelogin          {build.KUBELOGIN.version} ({kubelogin})")
    else:
        print(f"kubelogin          skipped: {build.KUBELOGIN.version} cannot be built here "
              f"({skipped})")
    print(f"runs               {args.runs} cache hits of each, interleaved; "
          f"{args.cold_runs} cold logins of each")
    print(f"python -I -c pass  median {median_ms(bases):6.1f} ms")
    print("cache hit")
    for name in tools:
        print(f"  {name:16} median {median_ms(hits[name]):6.1f} ms")
    if kubelogin:
        ratio = median_ms(hits["cred-helper"]) / median_ms(hits["kubelogin"])
        print(f"  ratio            {ratio:6.2f}  (cred-helper / kubelogin)")
    print("cold login (client credentials, caches cleared)")
    for name in tools:
        print(f"  {name:16} median {median_ms(cold[name]):6.1f} ms  "
              f"({', '.join(requests.get(name, []))})")
    if kubelogin:
        ratio = median_ms(cold["cred-helper"]) / median_ms(cold["kubelogin"])
        print(f"  ratio            {ratio:6.2f}  (cred-helper / kubelogin)")


if __name__ == "__main__":
    main()
