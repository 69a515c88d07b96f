"""Cache-hit wall time of every install channel against `python -I -c pass`, from one run.

    .venv/bin/python bench/channels.py [--runs N] [--single-file PATH] [--extra NAME=PATH ...]

Channels: the venv's `cred-helper` script (the interpreter running this), a pipx install of
the wheel built from this checkout (into a temporary PIPX_HOME), the single-file build
(packaging/singlefile/build.py, unless --single-file names one already built), and "setup
default": the command `cred-helper setup` writes into the kubeconfig when asked nothing about
it, run through the pipx install as a newcomer would (the fast launcher: pipx's Python with
`-IS`). `--extra` adds any other executable, e.g. candidate single-file builds to compare.

Method as in bench/cache_hit.py: the local API server issues one certificate, every channel
then runs once to warm up (all share one cache, so these are hits), and the timed runs go
round the channels interleaved, each command started by its own freshly forked parent as
kubectl's are. Medians, and each channel's ratio to the bare interpreter's start.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cache_hit import timed  # noqa: E402  (bench/ is not a package)

from tests.support.apiserver import LocalAPIServer  # noqa: E402

PYTHON = sys.executable
VENV_SCRIPT = str(Path(PYTHON).parent / "cred-helper")


def build_wheel(out: Path) -> Path:
    subprocess.run([PYTHON, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
                   check=True, stdout=subprocess.DEVNULL)
    (wheel,) = out.glob("cred_helper-*.whl")
    return wheel


def pipx_install(wheel: Path, home: Path) -> str | None:
    """The pipx-installed command, or None (with the reason printed) where pipx is missing."""
    env = dict(os.environ, PIPX_HOME=str(home / "pipx"), PIPX_BIN_DIR=str(home / "bin"),
               PIPX_MAN_DIR=str(home / "man"))
    done = subprocess.run([PYTHON, "-m", "pipx", "install", "--python", PYTHON, str(wheel)],
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"pipx               skipped: {reason}")
        return None
    return str(home / "bin" / "cred-helper")


def build_single_file(wheel: Path, out: Path) -> str:
    target = out / "cred-helper"
    subprocess.run([PYTHON, str(ROOT / "packaging" / "singlefile" / "build.py"),
                    "--wheel", str(wheel), "--output", str(target)],
                   check=True, stdout=subprocess.DEVNULL)
    return str(target)


def setup_default(command: str, server: LocalAPIServer, work: Path, token_file: Path) -> str:
    """The exec entry's command that `setup`, run through `command` with no choice of its
    own, writes (setup also writes whatever file that command is)."""
    import yaml

    home = work / "setup-home"
    ca = work / "ca.crt"
    ca.write_bytes(server.ca.cert_pem)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home),
           "XDG_CONFIG_HOME": f"{home}/config", "XDG_DATA_HOME": f"{home}/data"}
    subprocess.run([command, "setup", "--cluster=bench", f"--server={server.url}",
                    f"--certificate-authority={ca}", "--issuer=csr",
                    f"--bootstrap-token-file={token_file}", "--no-verify"],
                   env=env, check=True, capture_output=True)
    doc = yaml.safe_load((home / ".kube" / "config").read_text())
    return doc["users"][0]["user"]["exec"]["command"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--single-file", help="an already built single file (else built here)")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=PATH")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalAPIServer(
            tokens={"bench-token": ("alice@example.com", ["oncall"])},
            auto_approve=lambda csr: True) as server:
        work = Path(tmp)
        wheel = build_wheel(work / "dist")
        channels = {"venv script": VENV_SCRIPT}
        piped = pipx_install(wheel, work / "pipx")
        if piped:
            channels["pipx"] = piped
        channels["single file"] = args.single_file or build_single_file(wheel, work / "sf")
        for extra in args.extra:
            name, _, path = extra.partition("=")
            channels[name] = path
        token_file = work / "token"
        token_file.write_text("bench-token\n")
        token_file.chmod(0o600)  # a secret file must be private, as ssh wants of keys
        default = setup_default(piped or VENV_SCRIPT, server, work, token_file)
        print(f"setup default      {default}")
        channels["setup default"] = default
        info = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                "spec": {"interactive": False, "cluster": server.cluster_entry()}}
        home = work / "home"
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home),
               "XDG_CACHE_HOME": f"{home}/cache", "XDG_CONFIG_HOME": f"{home}/config",
               "KUBERNETES_EXEC_INFO": json.dumps(info)}
        flags = ["--issuer=csr", "--ttl=30m", f"--bootstrap-token-file={token_file}"]
        commands = {name: [path, *flags] for name, path in channels.items()}
        commands["python -I -c pass"] = [PYTHON, "-I", "-c", "pass"]
        commands["python -IS -c pass"] = [PYTHON, "-IS", "-c", "pass"]  # the floor with -S
        for command in commands.values():  # the first is the miss; then warm every page cache
            for _ in range(3):
                timed(command, env)
        assert server.csr_creations == 1, "every channel must share the one cached credential"
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                times[name].append(timed(command, env))
        assert server.csr_creations == 1, "every timed run must have been a cache hit"
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    base = medians["python -I -c pass"]
    venv = medians["venv script"]
    print(f"interpreter        {PYTHON}")
    print(f"runs               {args.runs} of each, interleaved")
    for name, ms in medians.items():
        print(f"{name:<18} median {ms:6.1f} ms   x{ms / base:4.2f} of python -I -c pass"
              f"   x{ms / venv:4.2f} of the venv script")
    print("target             single file <= 1.3 x the venv script")


if __name__ == "__main__":
    main()
