"""setup's default exec command: the name the plugin was run by decides it."""

from __future__ import annotations

import pytest

from cred_helper.setupcmd import default_command


@pytest.mark.parametrize(("argv0", "env", "expected"), [
    ("/home/a/.local/bin/cred-helper", {}, "cred-helper"),
    # krew's link on PATH, run by kubectl as `kubectl cred-helper`
    ("/home/a/.krew/bin/kubectl-cred_helper", {}, "kubectl-cred_helper"),
    # the single file: Python sees the unpacked script; its header passes the name it ran as
    ("/home/a/.cache/pex/venvs/1/2/3/bin/cred-helper",
     {"CRED_HELPER_RUN_AS": "/home/a/.krew/bin/kubectl-cred_helper"}, "kubectl-cred_helper"),
    ("/home/a/.cache/pex/venvs/1/2/3/bin/cred-helper",
     {"CRED_HELPER_RUN_AS": "/home/a/bin/cred-helper"}, "cred-helper"),
    ("cred-helper", {"CRED_HELPER_RUN_AS": ""}, "cred-helper"),
])
def test_default_command(argv0, env, expected):
    assert default_command(argv0, env) == expected
