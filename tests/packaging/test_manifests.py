"""The Homebrew formula and krew manifest, checked where brew and krew cannot run."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import cred_helper
from tests.support.needs import needs

ROOT = Path(__file__).resolve().parents[2]
FORMULA = ROOT / "packaging" / "homebrew" / "cred-helper.rb"
KREW = ROOT / "packaging" / "krew" / "cred-helper.yaml"
LOCK = json.loads((ROOT / "packaging" / "lock.json").read_text())
SHA256 = re.compile(r"[0-9a-f]{64}")


def _runtime_closure() -> set[str]:
    """Every distribution cred-helper needs at run time here, following extras and markers."""
    seen: set[str] = set()
    todo = [(Requirement("cred-helper"), "")]
    while todo:
        req, extra = todo.pop()
        name = canonicalize_name(req.name)
        if req.marker and not req.marker.evaluate({"extra": extra}):
            continue
        key = name + "[" + ",".join(sorted(req.extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        for raw in md.requires(req.name) or []:
            sub = Requirement(raw)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e})
                                         for e in ("", *req.extras)):
                todo.append((sub, ""))
    return {k.split("[")[0] for k in seen} - {"cred-helper"}


def test_lock_covers_every_runtime_dependency_with_an_sdist_and_hash():
    locked = {canonicalize_name(p["name"]): p for p in LOCK["packages"]}
    missing = _runtime_closure() - set(locked)
    assert not missing, f"packaging/lock.py must be rerun: {sorted(missing)} are not locked"
    for package in locked.values():
        assert package["url"].startswith("https://files.pythonhosted.org/")
        assert package["url"].endswith((".tar.gz", ".zip")), package["url"]
        assert SHA256.fullmatch(package["sha256"]), package


def test_formula_has_a_resource_for_every_locked_package():
    text = FORMULA.read_text()
    resources = {name: url for name, url, _ in re.findall(
        r'resource "([^"]+)" do\n    url "([^"]+)"\n    sha256 "([0-9a-f]{64})"\n  end', text)}
    for package in LOCK["packages"]:
        assert resources.get(package["name"]) == package["url"], package["name"]
        assert f'sha256 "{package["sha256"]}"' in text
    for closure_name in _runtime_closure():
        assert closure_name in {canonicalize_name(n) for n in resources}, closure_name
    for needed in ("include Language::Python::Virtualenv", "virtualenv_install_with_resources",
                   "test do", 'license "Apache-2.0"',
                   f"cred_helper-{cred_helper.__version__}.tar.gz"):
        assert needed in text, needed


def test_formula_is_what_the_generator_writes_from_the_lock():
    sys.path.insert(0, str(ROOT / "packaging" / "homebrew"))
    try:
        import generate
    finally:
        sys.path.pop(0)
    text = FORMULA.read_text()
    digest = re.search(r'^  sha256 "([0-9a-f]{64})"$', text, re.M).group(1)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert generate.render(project, LOCK, digest) == text


@needs(shutil.which("ruby") is not None, "ruby is not installed")
def test_formula_is_valid_ruby():
    done = subprocess.run(["ruby", "-c", str(FORMULA)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Syntax OK" in done.stdout


def test_krew_manifest_shape():
    doc = yaml.safe_load(KREW.read_text())
    assert doc["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert doc["kind"] == "Plugin"
    assert doc["metadata"]["name"] == "cred-helper"  # krew links kubectl-cred_helper
    spec = doc["spec"]
    assert spec["version"] == f"v{cred_helper.__version__}"
    assert spec["shortDescription"] and spec["homepage"].startswith("https://")
    assert spec["platforms"]
    for platform in spec["platforms"]:
        assert set(platform["selector"]["matchLabels"]) == {"os", "arch"}
        assert platform["uri"].startswith("https://") and platform["uri"].endswith(".tar.gz")
        assert SHA256.fullmatch(platform["sha256"])
        assert platform["bin"] == "cred-helper"
        assert {"from": "cred-helper", "to": "."} in platform["files"]


def test_krew_generator_records_the_archive_it_writes(single_file, tmp_path):
    out = tmp_path / "manifest.yaml"
    done = subprocess.run([sys.executable, str(ROOT / "packaging" / "krew" / "generate.py"),
                           "--single-file", str(single_file), "--archive-dir", str(tmp_path),
                           "--output", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (platform,) = yaml.safe_load(out.read_text())["spec"]["platforms"]
    archive = tmp_path / "cred-helper-linux-amd64.tar.gz"
    assert platform["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    with tarfile.open(archive) as tar:
        member = tar.getmember("cred-helper")
        assert member.mode & 0o111
        assert tar.extractfile(member).read() == single_file.read_bytes()
