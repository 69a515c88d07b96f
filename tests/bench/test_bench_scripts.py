"""The benchmarks still run and print their figures (their numbers are read by people, not
asserted: shared machines are too noisy for time limits), each as docs/performance.md shows it,
with fewer runs."""

from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.support import doccommands

ROOT = Path(__file__).resolve().parents[2]
# A figure: a number standing alone or after an "x" (x1.22), not part of a word such as p99;
# and nan or inf, which must fail the checks below, not go unseen.
NUMBER = re.compile(r"(?<![A-Za-wyz0-9_.])-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?"
                    r"|\b(?:nan|NaN|inf|Infinity)\b")


def figures(out: str, label: str) -> list[float]:
    """The numbers on the first line of `out` that starts with `label` (after it)."""
    for line in out.splitlines():
        if line.strip().lower().startswith(label.lower()):
            return [float(n) for n in NUMBER.findall(line.strip()[len(label):])]
    raise AssertionError(f"no line {label!r} in:\n{out}")


def times(out: str, label: str, most: float = 60_000.0) -> list[float]:
    """The line's figures, each a time in ms that a run here can take: finite, above zero,
    below `most` (a unit slip, a zero or a NaN printed as a figure fails)."""
    found = figures(out, label)
    assert found, (label, out)
    for value in found:
        assert math.isfinite(value) and 0 < value < most, (label, value, out)
    return found


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


def _bench(script: str, *args: str, timeout: float = 300) -> str:
    done = subprocess.run(page_command(script, *args),
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_cache_hit_bench_prints_sane_figures():
    out = _bench("cache_hit.py", "--runs", "3")
    (base,), (hit,) = times(out, "python -I -c pass  median"), times(out, "cache hit")
    ratio = figures(out, "ratio")[0]  # then the target
    assert ratio == pytest.approx(hit / base, rel=0.05), out  # the ratio of those two
    assert times(out, "first run (miss: key, CSR, approval, signing)")[0] > hit, out


def test_token_sign_bench_prints_sane_figures():
    out = _bench("token_sign.py", "--runs", "3")
    times(out, "module load + token lookup + login:", most=10_000)
    for key in ("p256", "ed25519", "rsa2048"):
        median, p90, _software = times(out, key, most=1_000)
        assert p90 >= median, out


def test_issuance_bench_prints_sane_figures(control_plane_bin):
    """The page runs it with --real: the real control plane too, built up front."""
    out = _bench("issuance.py", "--runs", "3", timeout=600)
    median, low, requests = times(out, "local API server (approves at once)  median")
    assert low <= median and requests == 3.0, out


def test_renewal_bench_prints_sane_figures():
    out = _bench("renewal.py", "--runs", "3")
    (hit,) = times(out, "cache hit (fresh)")
    (first,) = times(out, "first run inside the margin (new CSR)")
    times(out, "later runs inside the margin")
    assert hit < first and figures(out, "renewal CSRs made") == [1.0], out


def test_attestation_bench_prints_both_chains():
    out = _bench("attestation.py", "--runs", "3")
    for chain in ("genuine chain: median", "forged chain: median"):
        median, p90, _runs = times(out, chain, most=1_000)
        assert median <= p90, out


def test_channels_bench_prints_every_channel_against_the_interpreter():
    out = _bench("channels.py", "--runs", "3", timeout=600)
    (base, *_) = times(out, f"{'python -I -c pass':<18} median")
    for channel in ("venv script", "pipx", "single file", "setup default", "python -I -c pass"):
        assert f"\n{channel:<18} median" in out, out
        ms, of_base, of_venv = times(out, f"{channel:<18} median")
        assert of_base == pytest.approx(ms / base, abs=0.01 + 0.05 * ms / base), out
        assert of_venv > 0, out
    # what a newcomer gets: setup wrote the fast launcher (a file of its own, not pipx's)
    assert "/data/cred-helper/bin/cred-helper" in out.split("setup default", 1)[1]


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
    for section in out.split("\ncache hit\n", 1)[1].split("\ncold login"):
        ours, theirs = times(section, "cred-helper      median"), \
            times(section, "kubelogin        median")
        ratio = figures(section, "ratio")[0]
        assert ratio == pytest.approx(ours[0] / theirs[0], rel=0.05), out


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
    p50, p99, most = times(out, "p50")
    assert p50 <= p99 <= most, out


def test_gateway_bench_prints_warm_medians_their_ratio_and_the_cold_path(control_plane_bin,
                                                                        kubelet_standin_bin):
    """One run on the real control plane with the real broker and gateway (built up front):
    every figure a time that can be, the ratio and cred-helper's part those of the medians
    printed, the cold median no slower than its slowest run."""
    out = _bench("gateway.py", "--runs", "3", "--cold-runs", "2", timeout=600)
    (ours,) = times(out, "cred-helper ssh (certificate cached)")
    (plain,) = times(out, "plain ssh through its Host block")
    (kubectl,) = times(out, "kubectl exec (her own credential)")
    ratio, aim = figures(out, "ratio (cred-helper ssh / kubectl exec)")
    assert ratio == pytest.approx(ours / kubectl, abs=0.01) and aim == 1.5, out
    (own,) = figures(out, "cred-helper's own part")
    assert own == pytest.approx(ours - plain, abs=0.2), out
    median, slowest, _aim = times(out, "median")
    assert median <= slowest, out
    assert "cold (request, auto-approval by the broker, certificate, command), 2 runs" in out


def test_janitor_bench_prints_time_and_memory_per_size():
    done = subprocess.run(page_command("janitor.py", "--pods", "50,100"),
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    assert [row[0] for row in rows] == ["50", "100"], done.stdout
    assert [row[2] for row in rows] == ["5", "10"], done.stdout  # one line per debug pod
    for row in rows:  # JSON MiB, pass s, ms per pod, allocation and RSS peaks in MiB
        mib, seconds, per_pod, peak, rss = (float(row[i]) for i in (1, 3, 4, 5, 6))
        assert all(math.isfinite(v) and v > 0 for v in (mib, seconds, per_pod, peak, rss))
        # "pass s" is printed to 0.01 s: for a small pass that rounding alone is 10 % or more
        rounding = 0.005 * 1000 / int(row[0])
        assert per_pod == pytest.approx(seconds * 1000 / int(row[0]), rel=0.01,
                                        abs=rounding + 0.001)
        assert peak < rss < 4096, done.stdout


def test_access_bench_prints_finite_and_sane_figures(control_plane_bin):
    """Against the real control plane, built up front (never inside this timeout). The
    figures are milliseconds: finite, positive, p50 <= p99 <= max, under the script's own
    30 s limit per request."""
    import math
    import re

    done = subprocess.run(page_command("access.py", "--runs", "5"),
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    found = re.search(r"p50 (\S+) ms\s+p99 (\S+) ms\s+max (\S+) ms", done.stdout)
    assert found, done.stdout
    p50, p99, most = (float(x) for x in found.groups())
    assert all(math.isfinite(x) and x > 0 for x in (p50, p99, most)), done.stdout
    assert p50 <= p99 <= most < 30_000, done.stdout
    assert "over 5 requests" in done.stdout
