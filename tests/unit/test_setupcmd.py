"""setup's default exec command: the name the plugin was run by decides it."""

from __future__ import annotations

import pytest

from cred_helper.setupcmd import default_command


@pytest.mark.parametrize(("argv0", "expected"), [
    ("/home/a/.local/bin/cred-helper", "cred-helper"),
    # krew's link on PATH, run by kubectl as `kubectl cred-helper` (for the single file,
    # __main__ puts the name its header exported into argv[0])
    ("/home/a/.krew/bin/kubectl-cred_helper", "kubectl-cred_helper"),
    ("kubectl-cred_helper", "kubectl-cred_helper"),
    ("/home/a/.cache/pex/venvs/1/2/3/bin/cred-helper", "cred-helper"),
    ("/home/a/bin/kubectl-cred_helper.bak", "cred-helper"),
])
def test_default_command(argv0, expected):
    assert default_command(argv0) == expected
