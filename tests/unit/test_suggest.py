"""The one "did you mean" rule for commands and profiles."""

from __future__ import annotations

import pytest

from cred_helper.config import unknown_profile
from cred_helper.suggest import close_words, unknown_command

COMMANDS = ["get", "setup", "login", "status", "logout", "doctor", "keys", "completion",
            "approver", "janitor", "help", "version"]


@pytest.mark.parametrize(("word", "expected"), [
    ("stauts", ["status"]), ("statsu", ["status"]), ("stat", ["status"]),
    ("doctro", ["doctor"]), ("lo", ["login", "logout"]), ("ke", ["keys"]),
    ("xyz", []), ("", []),
])
def test_close_words(word, expected):
    assert close_words(word, COMMANDS) == expected


def test_unknown_command_messages():
    error = unknown_command("stauts", COMMANDS)
    assert (error.message, error.hint, error.exit_code) == (
        "no command 'stauts'; did you mean status?", "`cred-helper --help` lists the commands",
        2)
    assert unknown_command("xyz", COMMANDS).hint.startswith("the commands are get, setup, ")
    sub = unknown_command("lst", ["generate", "list", "public"], "cred-helper keys")
    assert sub.message == "no command 'lst' in `cred-helper keys`; did you mean list?"
    profile = unknown_command("prod", COMMANDS, profiles=["prod"])
    assert profile.message == "no command 'prod'; did you mean --cluster prod?"
    # a profile named like a command is not pointed at --cluster from a subgroup
    assert "--cluster" not in unknown_command("prod", ["list"], "cred-helper keys",
                                              ["prod"]).message


def test_a_pasted_token_is_not_quoted_whole():
    """A token pasted where a command or profile name goes (`cred-helper eyJhbGci...`,
    `--cluster=$TOKEN`) is quoted by its start and length: the error line lands in terminals,
    CI logs and tickets."""
    token = "eyJhbGciOiJSUzI1NiJ9." + "s3cr3t" * 20
    for error in (unknown_command(token, COMMANDS),
                  unknown_command(token, ["list"], "cred-helper keys"),
                  unknown_profile(token, ["prod"], "/p/config.toml", True)):
        text = f"{error.message}\n{error.hint}"
        assert "s3cr3t" not in text and f"({len(token)} characters)" in error.message
    assert "'a-forty-character-profile-name-is-shown'" in unknown_profile(
        "a-forty-character-profile-name-is-shown", [], "/p", False).message
