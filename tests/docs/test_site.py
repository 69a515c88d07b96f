"""The documentation site builds with mkdocs in strict mode, as mkdocs.yml configures it: a
broken link, a link to an anchor no heading makes, and a page left out of the nav each fail
the build (shown here on a copy of the site with one such fault)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MKDOCS = Path(sys.executable).with_name("mkdocs")


def build(root: Path, out: Path) -> subprocess.CompletedProcess:
    # the theme's notice about its successor is not a warning of ours
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    return subprocess.run([str(MKDOCS), "build", "--strict", "--site-dir", str(out)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_site_builds_in_strict_mode(tmp_path):
    done = build(ROOT, tmp_path / "site")
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    for page in ("index.html", "setup/index.html", "admin/policy/index.html",
                 "reference/options/index.html", "compatibility/index.html"):
        assert (tmp_path / "site" / page).exists(), page


@pytest.fixture
def copy(tmp_path) -> Path:
    site = tmp_path / "copy"
    site.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", site / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", site / "docs")
    return site


@pytest.mark.parametrize(("fault", "said"), [
    ("[the setup](no-such-page.md)", "no-such-page.md"),
    ("[the setup](setup.md#no-such-heading)", "no-such-heading"),
    ("[home](/index.md)", "absolute link"),
])
def test_a_broken_link_fails_the_build(copy, tmp_path, fault, said):
    page = copy / "docs" / "usage.md"
    page.write_text(page.read_text() + f"\nSee {fault}.\n")
    done = build(copy, tmp_path / "site")
    assert done.returncode != 0
    assert said in done.stderr, done.stderr


def test_a_page_missing_from_the_nav_fails_the_build(copy, tmp_path):
    (copy / "docs" / "orphan.md").write_text("# An orphan\n")
    done = build(copy, tmp_path / "site")
    assert done.returncode != 0
    assert "orphan.md" in done.stderr, done.stderr
