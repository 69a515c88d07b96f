"""The benchmarks still run and print their figures (their numbers are read by people, not
asserted: shared machines are too noisy for time limits), each as docs/performance.md shows it,
with fewer runs."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.support import doccommands

ROOT = Path(__file__).resolve().parents[2]


def page_command(script: str, *shorter: str) -> list[str]:
    """The command docs/performance.md shows for `script`, as typed from the checkout's root,
    with the arguments that shorten its run here."""
    for command in doccommands.block("docs/performance.md", "Performance").runnable:
        argv = shlex.split(command, comments=True)
        if argv[1] == f"bench/{script}":
            return [*argv, *shorter]
    raise AssertionError(f"docs/performance.md shows no command for bench/{script}")


def test_the_page_shows_every_benchmark():
    shown = {shlex.split(c, comments=True)[1]
             for c in doccommands.block("docs/performance.md", "Performance").runnable}
    assert shown == {f"bench/{p.name}" for p in (ROOT / "bench").glob("*.py")}


@pytest.mark.parametrize(("script", "figure"), [("cache_hit.py", "ratio"),
                                                ("token_sign.py", "p256"),
                                                ("renewal.py", "later runs inside the margin"),
                                                ("attestation.py", "forged chain")])
def test_bench_script_prints_its_figures(script, figure):
    done = subprocess.run(page_command(script, "--runs", "3"),
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert figure in done.stdout.lower(), done.stdout


def test_issuance_bench_prints_both_servers(control_plane_bin):
    """The local server and (--real) the real control plane, built up front."""
    done = subprocess.run(page_command("issuance.py", "--runs", "3"),
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.lower().count("requests per issuance 3.0") == 2, done.stdout


def test_channels_bench_prints_every_channel_against_the_interpreter():
    done = subprocess.run(page_command("channels.py", "--runs", "3"),
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    for channel in ("venv script", "pipx", "single file", "setup default", "python -I -c pass"):
        assert f"\n{channel:<18} median" in done.stdout, done.stdout
    # what a newcomer gets: setup wrote the fast launcher (a file of its own, not pipx's)
    assert "/data/cred-helper/bin/cred-helper" in done.stdout.split("setup default", 1)[1]


def _kubelogin_bench(env: dict[str, str] | None = None) -> str:
    done = subprocess.run(page_command("kubelogin.py", "--runs", "3", "--cold-runs", "2"),
                          capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    assert "python -i -c pass" in done.stdout.lower(), done.stdout
    for figures in ("cache hit", "cold login"):
        section = done.stdout.split(figures, 1)[1]
        assert "cred-helper      median" in section, done.stdout
    return done.stdout


def test_kubelogin_bench_prints_both_tools_and_their_ratios(kubelogin_bin):
    """kubelogin is built up front (the fixture skips where it cannot be, and fails under
    CI=true), so the bench must compare with it: a skipped column is a failure."""
    out = _kubelogin_bench()
    assert "kubelogin          skipped" not in out, out
    assert out.count("(cred-helper / kubelogin)") == 2, out
    assert "kubelogin        median" in out.split("cold login", 1)[1], out


def test_kubelogin_bench_without_go_prints_cred_helper_alone(tmp_path):
    """No Go on PATH and no built kubelogin in the cache: cred-helper's figures, one line
    saying why kubelogin's are missing, exit 0."""
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep)
                           if not Path(d, "go").exists())
    out = _kubelogin_bench({**os.environ, "PATH": path, "XDG_CACHE_HOME": str(tmp_path)})
    assert "kubelogin          skipped: v1.36.3 cannot be built here (Go is not installed)" in out
    assert "(cred-helper / kubelogin)" not in out and "kubelogin        median" not in out, out


def test_approval_bench_prints_p50_and_p99(control_plane_bin):
    """Against the real control plane, built up front (never inside this timeout)."""
    done = subprocess.run(page_command("approval.py", "--runs", "5"),
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    out = done.stdout.lower()
    assert "p50" in out and "p99" in out, done.stdout


def test_janitor_bench_prints_time_and_memory_per_size():
    done = subprocess.run(page_command("janitor.py", "--pods", "50,100"),
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    assert [row[0] for row in rows] == ["50", "100"], done.stdout
    assert [row[2] for row in rows] == ["5", "10"], done.stdout  # one line per debug pod


def test_access_bench_prints_finite_and_sane_figures():
    """Against the real control plane where Go can build it; else the script says it skipped.
    The figures are milliseconds: finite, positive, p50 <= p99 <= max, under the script's own
    30 s limit per request."""
    import math
    import re

    done = subprocess.run(page_command("access.py", "--runs", "5"),
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    if "skipped" in done.stdout:
        return
    found = re.search(r"p50 (\S+) ms\s+p99 (\S+) ms\s+max (\S+) ms", done.stdout)
    assert found, done.stdout
    p50, p99, most = (float(x) for x in found.groups())
    assert all(math.isfinite(x) and x > 0 for x in (p50, p99, most)), done.stdout
    assert p50 <= p99 <= most < 30_000, done.stdout
    assert "over 5 requests" in done.stdout
