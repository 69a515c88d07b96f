"""The flags every command that reads a profile or the cache takes alike: a person who keeps
their profiles or cache elsewhere (`--config`, `--cache-dir`) or names a kubeconfig context
can say so to each of them, not only to the commands of the branch that added the flag."""

from __future__ import annotations

import pytest

from cred_helper.cli import cli

# command -> the flags it must take
SHARED = {
    "get": ("--cluster", "--config", "--cache-dir"),
    "login": ("--cluster", "--config", "--cache-dir", "--kubeconfig", "--context"),
    "status": ("--cluster", "--config", "--cache-dir"),
    "logout": ("--cluster", "--config", "--cache-dir"),
    "ssh-config": ("--cluster", "--config", "--cache-dir", "--kubeconfig", "--context"),
    "ssh": ("--cluster", "--config", "--cache-dir", "--kubeconfig", "--context"),
    "approve": ("--cluster", "--config", "--cache-dir", "--kubeconfig", "--context"),
    "deny": ("--cluster", "--config", "--cache-dir", "--kubeconfig", "--context"),
    "doctor": ("--cluster", "--config", "--cache-dir", "--kubeconfig"),
}


@pytest.mark.parametrize("command", sorted(SHARED))
def test_each_command_takes_the_shared_flags(command):
    flags = {opt for param in cli.commands[command].params for opt in param.opts}
    assert set(SHARED[command]) <= flags, sorted(set(SHARED[command]) - flags)
