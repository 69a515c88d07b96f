"""The benchmarks still run and print their figures (their numbers are read by people, not
asserted: shared machines are too noisy for time limits)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("script", "figure"), [("cache_hit.py", "ratio"),
                                                ("token_sign.py", "p256"),
                                                ("issuance.py", "requests per issuance 3.0")])
def test_bench_script_prints_its_figures(script, figure):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--runs", "3"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert figure in done.stdout.lower(), done.stdout
