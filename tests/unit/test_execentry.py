"""Finding an exec entry's command as kubectl does, and the profile kubectl's current context
runs. Pure: the file system is a table of paths."""

from __future__ import annotations

import pytest

from cred_helper.errors import UsageError
from cred_helper.execentry import ExecEntry, current_profile, kubectls_entry, look_up, profile_in

RUNNABLE = {"/home/a/.local/bin/cred-helper", "/opt/ch/bin/cred-helper",
            "/home/a/.kube/bin/cred-helper", "rel/cred-helper", "./cred-helper"}
NOT_EXECUTABLE = {"/usr/local/bin/cred-helper"}


def unusable(path: str) -> str:
    if path in RUNNABLE:
        return ""
    return "is not executable" if path in NOT_EXECUTABLE else "cannot be used (No such file)"


@pytest.mark.parametrize(("command", "path_env", "found", "problem"), [
    ("cred-helper", "/usr/bin:/home/a/.local/bin", "/home/a/.local/bin/cred-helper", ""),
    # a file that is not executable is passed over, as Go's LookPath does
    ("cred-helper", "/usr/local/bin:/opt/ch/bin", "/opt/ch/bin/cred-helper", ""),
    ("cred-helper", "/usr/bin", "", "it is not on PATH"),
    ("cred-helper", "", "", "it is not on PATH"),
    # the first match decides, and one through a relative directory is refused (ErrDot)
    ("cred-helper", "rel:/opt/ch/bin", "",
     "it is found only as rel/cred-helper, through a relative PATH entry, which kubectl "
     "refuses to run"),
    ("cred-helper", ":/opt/ch/bin", "", "it is found only as ./cred-helper, through a relative "
     "PATH entry, which kubectl refuses to run"),
    # a path is taken as it is; a relative one from the kubeconfig's directory
    ("/opt/ch/bin/cred-helper", "", "/opt/ch/bin/cred-helper", ""),
    ("/opt/ch/bin/../bin/cred-helper", "", "/opt/ch/bin/cred-helper", ""),
    ("bin/cred-helper", "/opt/ch/bin", "/home/a/.kube/bin/cred-helper", ""),
    ("./bin/cred-helper", "", "/home/a/.kube/bin/cred-helper", ""),
    ("../.local/bin/cred-helper", "", "/home/a/.local/bin/cred-helper", ""),
    ("/usr/local/bin/cred-helper", "/opt/ch/bin", "", "/usr/local/bin/cred-helper is not "
     "executable"),
    ("", "/opt/ch/bin", "", "the exec entry has no command"),
])
def test_look_up(command, path_env, found, problem):
    got = look_up(command, "/home/a/.kube/config", path_env, unusable)
    assert (got.path, got.problem) == (found, problem)


@pytest.mark.parametrize(("args", "profile"), [
    (["--cluster=prod"], "prod"), (["--cluster", "prod", "--ttl=1h"], "prod"),
    (["get", "--cluster=a", "--cluster=b"], "b"), (["--ttl=1h"], ""), (["--cluster"], ""),
    ("--cluster=prod", ""), ([1, "--cluster=x"], ""), (None, ""),
])
def test_profile_in(args, profile):
    assert profile_in(args) == profile


def _kubeconfig(current, command="cred-helper", args=("--cluster=prod",)):
    return {"current-context": current,
            "contexts": [{"name": "prod", "context": {"cluster": "c", "user": "oncall"}},
                         {"name": "other", "context": {"cluster": "c", "user": "admin"}}],
            "users": [{"name": "oncall", "user": {"exec": {"command": command,
                                                           "args": list(args)}}},
                      {"name": "admin", "user": {"token": "x"}}]}


def test_current_profile():
    assert current_profile([("a", _kubeconfig("prod"))]) == ("prod", "prod")
    assert current_profile([("a", _kubeconfig("other"))]) == ("", "")
    assert current_profile([("a", _kubeconfig("prod", command="kubelogin"))]) == ("", "")
    assert current_profile([("a", _kubeconfig("prod", args=("--ttl=1h",)))]) == ("", "")
    assert current_profile([("a", _kubeconfig(""))]) == ("", "")
    # the first file that sets current-context wins; its users may live in another file
    first = {"current-context": "prod"}
    assert current_profile([("a", first), ("b", _kubeconfig("other"))]) == ("prod", "prod")
    assert current_profile([("a", {"current-context": 7}), ("b", _kubeconfig("prod"))]) == \
        ("prod", "prod")
    assert current_profile([("a", {"contexts": "x", "users": None})]) == ("", "")


def _entry(context: str, server: str) -> ExecEntry:
    return ExecEntry("/k", context, "oncall", {"command": "cred-helper"}, {"server": server})


def test_kubectls_entry_is_the_current_contexts():
    east, west = _entry("east", "https://e"), _entry("west", "https://w")
    assert kubectls_entry([east, west], "west", "prod") is west
    # one cluster under every context: any context means it
    assert kubectls_entry([east, _entry("east2", "https://e")], "other", "prod") is east
    assert kubectls_entry([_entry("", "")], "west", "prod") is None  # no context runs it
    assert kubectls_entry([], "west", "prod") is None


@pytest.mark.parametrize("current", ["admin", ""])
def test_kubectls_entry_never_guesses_between_clusters(current):
    east, west = _entry("east", "https://e"), _entry("west", "https://w")
    with pytest.raises(UsageError, match="for different clusters") as found:
        kubectls_entry([east, west, _entry("", "")], current, "prod")
    assert "kubectl config use-context east" in (found.value.hint or "")
