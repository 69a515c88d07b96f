"""The fast launcher (setup's default; `--no-fast-launcher`: not): a script that starts this
venv's Python with `-IS` and finds cred-helper's site-packages itself. kubectl runs it for the
miss (the full CLI, which then does its site processing) and for the hit (standard library
only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from cred_helper import launcher
from tests.integration.test_setup import base, kubectl_run, setup


def test_setup_writes_the_launcher_unasked_and_kubectl_runs_through_it(sandbox, kubectl):
    data = sandbox.root / "data"
    args = [a for a in base(sandbox) if not a.startswith("--command=")]
    done = setup(sandbox, *args, env={"XDG_DATA_HOME": str(data)})
    assert done.returncode == 0, done.stderr
    path = data / "cred-helper" / "bin" / "cred-helper"
    first = path.read_text().splitlines()[0]
    assert first == f"#!{sys.executable} -IS"
    assert os.access(path, os.X_OK)
    config = sandbox.root / ".kube" / "config"
    exec_entry = yaml.safe_load(config.read_text())["users"][0]["user"]["exec"]
    assert exec_entry["command"] == str(path)

    for _ in range(2):  # a miss (CSR, the full CLI under -S), then a cache hit
        out = kubectl_run(kubectl, sandbox, str(config), "--context=local", "get", "--raw",
                          "/version")
        assert out.returncode == 0, out.stderr
    assert len(sandbox.server.csrs) == 1

    again = setup(sandbox, *args, env={"XDG_DATA_HOME": str(data)})
    assert again.returncode == 0, again.stderr
    assert "wrote the fast launcher" not in again.stderr  # idempotent
    assert "nothing to change" in again.stderr


def test_no_fast_launcher_writes_the_installed_command(sandbox):
    data = sandbox.root / "data"
    args = [a for a in base(sandbox) if not a.startswith("--command=")]
    done = setup(sandbox, *args, "--no-fast-launcher", "--no-verify",
                 env={"XDG_DATA_HOME": str(data)})
    assert done.returncode == 0, done.stderr
    config = sandbox.root / ".kube" / "config"
    assert yaml.safe_load(config.read_text())["users"][0]["user"]["exec"]["command"] == \
        "cred-helper"
    assert not data.exists()
    both = setup(sandbox, *args, "--fast-launcher", "--command=/x/cred-helper")
    assert both.returncode == 2 and "drop --command" in both.stderr


def test_the_launcher_really_skips_site_processing(sandbox, tmp_path):
    """Run the launcher's text with a probe in place of cred-helper's main: -I and -S hold."""
    path = tmp_path / "probe"
    text = launcher.launcher_text(sys.executable, launcher.site_dir()).replace(
        "from cred_helper.__main__ import main\nsys.exit(main())\n",
        "import json\nprint(json.dumps([sys.flags.isolated, sys.flags.no_site, "
        "'site' in sys.modules]))\n")
    path.write_text(text)
    path.chmod(0o755)
    done = subprocess.run([str(path)], capture_output=True, text=True, timeout=30)
    assert json.loads(done.stdout) == [1, 1, False]


def test_a_shebang_too_long_is_refused_before_anything_is_written():
    import pytest

    from cred_helper.errors import UsageError

    with pytest.raises(UsageError, match="cannot go in a shebang"):
        launcher.launcher_text("/" + "x" * 200 + "/python", "/site")
    with pytest.raises(UsageError, match="cannot go in a shebang"):
        launcher.launcher_text("/opt/my python/bin/python", "/site")
