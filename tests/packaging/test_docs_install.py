"""The install step the README's quick start and docs/install.md show, typed in a checkout:
`pipx install .` (into a private PIPX_HOME), then `cred-helper --version` finds the command
pipx put on PATH."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cred_helper
from tests.support import doccommands

ROOT = Path(__file__).resolve().parents[2]
PIPX = Path(sys.executable).with_name("pipx")


def test_pipx_install_from_the_checkout(tmp_path):
    readme = doccommands.block("README.md", "Quick start")
    install = doccommands.block("docs/install.md", "Install")
    without_comments = [c.split("  #")[0].rstrip() for c in install.runnable]
    assert readme.runnable == without_comments == ["pipx install .", "cred-helper --version"]
    bin_dir, tools = tmp_path / "bin", tmp_path / "tools"
    tools.mkdir()
    (tools / "pipx").symlink_to(PIPX)  # pipx alone: no other cred-helper on this PATH
    env = {"HOME": str(tmp_path), "PIPX_HOME": str(tmp_path / "pipx"),
           "PIPX_BIN_DIR": str(bin_dir), "PIPX_MAN_DIR": str(tmp_path / "man"),
           "PATH": f"{bin_dir}{os.pathsep}{tools}{os.pathsep}/usr/bin:/bin",
           "PIPX_DEFAULT_PYTHON": sys.executable}
    installed, version = (doccommands.run(c, cwd=ROOT, env=env, timeout=600)
                          for c in install.runnable)
    assert installed.returncode == 0, installed.stderr
    assert version.returncode == 0, version.stderr
    assert version.stdout == f"cred-helper, version {cred_helper.__version__}\n"
    assert (bin_dir / "cred-helper").exists()
