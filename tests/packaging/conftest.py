from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> Path:
    """The wheel and sdist, built once from this checkout with `python -m build`."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def wheel(dist) -> Path:
    (found,) = dist.glob("cred_helper-*.whl")
    return found


@pytest.fixture(scope="session")
def single_file(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("singlefile") / "cred-helper"
    done = subprocess.run([sys.executable, str(ROOT / "packaging" / "singlefile" / "build.py"),
                           "--wheel", str(wheel), "--output", str(target)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return target


@pytest.fixture(scope="session")
def krew() -> Path:
    """krew itself, built from its Go module once per machine, up front by the test command
    (tests/controlplane/prebuild.py). Without Go it is skipped with the reason; under CI=true
    that is a failure, as for the real control plane: CI must install the manifest for real."""
    from tests.controlplane import prebuild

    return prebuild.prebuilt(prebuild.KREW)
