"""Each install channel, built from this checkout, installed as a user would, then run by real
kubectl through a kubeconfig exec entry against the local API server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

import cred_helper
from tests.support.harness import one_error

pytestmark = pytest.mark.kubectl
ROOT = Path(__file__).resolve().parents[2]


def _kubeconfig_with(sandbox, command: str) -> Path:
    path = sandbox.kubeconfig(sandbox.base_args())
    doc = yaml.safe_load(path.read_text())
    doc["users"][0]["user"]["exec"]["command"] = command
    path.write_text(yaml.safe_dump(doc))
    return path


def _kubectl(kubectl: str, kubeconfig: Path, home: Path, path: str, *args: str):
    env = {"PATH": path, "HOME": str(home), "KUBECONFIG": str(kubeconfig)}
    return subprocess.run([kubectl, *args], env=env, capture_output=True, text=True,
                          timeout=180, stdin=subprocess.DEVNULL)


def _twice_through_kubectl(sandbox, kubectl, command: str, path: str | None = None) -> None:
    """A miss that issues, then a hit served from the cache: both through kubectl."""
    kubeconfig = _kubeconfig_with(sandbox, command)
    path = path if path is not None else os.environ.get("PATH", "")
    for verb in (("get", "--raw", "/version"), ("auth", "whoami", "-o", "json")):
        done = _kubectl(kubectl, kubeconfig, sandbox.root, path, *verb)
        assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"]["userInfo"]["username"] == "alice@example.com"
    assert sandbox.server.csr_creations == 1, "the second kubectl must be a cache hit"


def test_wheel_and_sdist_carry_complete_metadata(dist, wheel):
    with zipfile.ZipFile(wheel) as whl:
        meta = whl.read(f"cred_helper-{cred_helper.__version__}.dist-info/METADATA").decode()
        names = whl.namelist()
    assert f"Version: {cred_helper.__version__}\n" in meta  # the one version, from __init__
    for field in ("Author: ", "License-Expression: Apache-2.0", "License-File: LICENSE",
                  "Project-URL: Homepage, https://", "Keywords: kubernetes",
                  "Classifier: Topic :: Security", "Requires-Python: >=3.10",
                  "Requires-Dist: cryptography"):
        assert field in meta, field
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert any(n.endswith(".data/scripts/cred-helper") for n in names)
    (sdist,) = dist.glob("cred_helper-*.tar.gz")
    with tarfile.open(sdist) as tar:
        members = {Path(m).relative_to(f"cred_helper-{cred_helper.__version__}").as_posix()
                   for m in tar.getnames() if "/" in m}
    assert {"LICENSE", "pyproject.toml", "bin/cred-helper", "cred_helper/fastpath.py",
            "cred_helper/broker/__init__.py"} <= members


def test_wheel_in_a_clean_venv_works_through_kubectl(wheel, sandbox, kubectl, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                           "--disable-pip-version-check", str(wheel)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    _twice_through_kubectl(sandbox, kubectl, str(venv / "bin" / "cred-helper"))


def test_pipx_install_works_through_kubectl_once_its_bin_dir_is_on_path(
        wheel, sandbox, kubectl, tmp_path):
    """The README's channel: `pipx install`, and the command found on PATH. Before the bin
    dir is on PATH kubectl says what the README's PATH advice answers."""
    env = dict(os.environ, PIPX_HOME=str(tmp_path / "pipx"), PIPX_BIN_DIR=str(tmp_path / "bin"),
               PIPX_MAN_DIR=str(tmp_path / "man"))
    done = subprocess.run([sys.executable, "-m", "pipx", "install", "--python", sys.executable,
                           str(wheel)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "bin" / "cred-helper").exists()
    bare_path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                                if d and not Path(d, "cred-helper").exists())
    missing = _kubectl(kubectl, _kubeconfig_with(sandbox, "cred-helper"), sandbox.root,
                       bare_path, "get", "--raw", "/version")
    assert missing.returncode != 0
    assert "executable cred-helper not found" in missing.stderr, missing.stderr
    _twice_through_kubectl(sandbox, kubectl, "cred-helper",
                           path=f"{tmp_path / 'bin'}{os.pathsep}{bare_path}")


def test_single_file_works_through_kubectl(single_file, sandbox, kubectl):
    """Its first run unpacks into $HOME/.cache/pex (the sandbox's HOME); the hit after it
    takes the sh header's direct exec of the unpacked venv's script."""
    _twice_through_kubectl(sandbox, kubectl, str(single_file))
    venvs = list((sandbox.root / ".cache" / "pex" / "venvs").glob("*/*/*/bin/cred-helper"))
    assert venvs, "the single file must unpack under ~/.cache/pex, where its header looks"
    header = single_file.read_bytes()[:4096]
    assert b'exec "${INSTALLED_PEX}/bin/python" -IS "${INSTALLED_PEX}/bin/cred-helper"' in header


def test_single_file_script_finds_its_packages_without_site(single_file, sandbox):
    """The header's `-IS` command line works on its own: the unpacked script puts the venv's
    site-packages on sys.path itself, and a miss (here `--version`) then runs site processing
    for it before the full CLI. The kubectl test above covers the hit through the header."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(sandbox.root)}
    first = subprocess.run([str(single_file), "--version"], env=env, capture_output=True,
                           text=True, timeout=300)  # the first run unpacks
    assert first.returncode == 0, first.stderr
    (script,) = (sandbox.root / ".cache" / "pex" / "venvs").glob("*/*/*/bin/cred-helper")
    done = subprocess.run([str(script.parent / "python"), "-IS", str(script), "--version"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == first.stdout == f"cred-helper, version {cred_helper.__version__}\n"


def test_krew_installs_the_manifest_and_kubectl_cred_helper_setup_works(
        single_file, krew, sandbox, kubectl, tmp_path):
    """krew (built from sigs.k8s.io/krew) installs the archive the generator writes, checking
    its sha256 against the manifest; kubectl then finds `kubectl cred-helper`, and setup run
    that way writes an exec entry naming `kubectl-cred_helper`, the one name krew put on PATH,
    which kubectl then runs directly."""
    out = tmp_path / "krew-manifest.yaml"
    done = subprocess.run([sys.executable, str(ROOT / "packaging" / "krew" / "generate.py"),
                           "--single-file", str(single_file), "--archive-dir", str(tmp_path),
                           "--output", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    root = tmp_path / "krew-root"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(sandbox.root),
           "KREW_ROOT": str(root)}
    done = subprocess.run([str(krew), "install", f"--manifest={out}",
                           f"--archive={tmp_path / 'cred-helper-linux-amd64.tar.gz'}"],
                          env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert (root / "bin" / "kubectl-cred_helper").is_symlink()
    path = f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    kubeconfig = sandbox.root / "krew-kubeconfig"
    setup_env = {**sandbox.env, "PATH": path, "HOME": str(sandbox.root),
                 "KUBECONFIG": str(kubeconfig)}
    done = subprocess.run([kubectl, "cred-helper", "setup", "--cluster=local",
                           f"--server={sandbox.server.url}",
                           f"--certificate-authority={sandbox.ca_file}", "--issuer=csr",
                           f"--bootstrap-token-file={sandbox.token_file}"],
                          env=setup_env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    entry = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["exec"]
    assert entry["command"] == "kubectl-cred_helper"
    whoami = subprocess.run([kubectl, "--context=local", "auth", "whoami", "-o",
                             "jsonpath={.status.userInfo.username}"], env=setup_env,
                            capture_output=True, text=True, timeout=300,
                            stdin=subprocess.DEVNULL)
    assert whoami.returncode == 0, whoami.stderr
    assert whoami.stdout == "alice@example.com"
    # `kubectl cred-helper approve` decides with the context's own credential (its user runs
    # kubectl-cred_helper for the profile); the local server has no access requests.
    approve = subprocess.run([kubectl, "cred-helper", "approve", "alice-1", "--context=local"],
                             env=setup_env, capture_output=True, text=True, timeout=300,
                             stdin=subprocess.DEVNULL)
    assert approve.returncode == 1
    assert one_error(approve.stderr).endswith("there is no access request alice-1"), \
        approve.stderr
