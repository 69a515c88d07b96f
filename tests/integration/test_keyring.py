"""`--cache keyring` against gnome-keyring's real Secret Service in a private D-Bus session."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.support.harness import one_error
from tests.support.keyring_session import secret_service
from tests.support.needs import needs

pytestmark = needs(bool(shutil.which("gnome-keyring-daemon")),
                   "gnome-keyring is installed by scripts/setup")


@pytest.fixture
def keyring_env(sandbox):
    with secret_service(str(sandbox.root)) as env:
        sandbox.env.update(env)
        yield env


def test_keyring_cache_round_trip(sandbox, keyring_env):
    args = sandbox.base_args("--cache=keyring", "--cluster=prod")
    info = sandbox.exec_info()
    first = sandbox.run(*args, exec_info=info)
    assert first.returncode == 0, first.stderr
    second = sandbox.run(*args, exec_info=info)
    assert second.returncode == 0, second.stderr
    assert json.loads(first.stdout) == json.loads(second.stdout)
    assert sandbox.server.csr_creations == 1
    assert not list(sandbox.cache_dir.glob("*.json")), "the credential lives in the keyring"

    status = sandbox.run("status", "-o", "json")
    (row,) = json.loads(status.stdout)
    assert row["cache"] == "keyring" and row["profile"] == "prod"

    assert sandbox.run("logout", "--cluster=prod").returncode == 0
    assert json.loads(sandbox.run("status", "-o", "json").stdout) == []
    assert sandbox.run(*args, exec_info=info).returncode == 0
    assert sandbox.server.csr_creations == 2


def test_no_keyring_is_a_clear_error(sandbox):
    sandbox.env["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=/nonexistent"
    result = sandbox.run(*sandbox.base_args("--cache=keyring"), exec_info=sandbox.exec_info())
    assert result.returncode == 1
    assert "keyring" in one_error(result.stderr)
