"""The README's two commands, as a newcomer types them in a checkout: `scripts/demo` runs the
demo through (set-up included). `scripts/test` is what CI runs (.ci/run), so it is listed as
not runnable inside the suite; CONTRIBUTING.md shows the same two."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import doccommands

pytestmark = pytest.mark.kubectl
ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    (test,) = [c for c in doccommands.block("README.md", "The two commands").commands
               if c.startswith("scripts/test")]
    assert f"exec {test} " in ci


def test_the_demo_runs_as_the_readme_says():
    readme = doccommands.block("README.md", "The two commands")
    contributing = doccommands.block("CONTRIBUTING.md", "The two commands")
    assert readme.commands == contributing.commands == ["scripts/demo", "scripts/test"]
    (demo,) = readme.runnable
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "KUBECONFIG"))}
    done = doccommands.run(demo, cwd=ROOT, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout + done.stderr
    assert "served from the cache: no new CSR" in out
    assert "Username    alice@example.com" in out
