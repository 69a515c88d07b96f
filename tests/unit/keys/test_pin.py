import os
import sys

import pytest

from cred_helper.errors import CredHelperError, UsageError
from cred_helper.keys.pin import check_source, read_pin


def _never(prompt):
    raise AssertionError("not asked")


def test_sources_are_checked():
    for good in ("prompt", "env:PIN", "file:/run/pin", "cmd:pass show pin"):
        assert check_source(good) == good
    for bad in ("stdin", "env:", "file", "pin:1234"):
        with pytest.raises(UsageError, match="is not prompt, env:VAR"):
            check_source(bad)


def test_an_unknown_source_is_never_run_as_a_command():
    with pytest.raises(UsageError, match="is not prompt"):
        read_pin("stdin", False, "t", {}, _never)


def test_prompt_only_with_a_person():
    assert read_pin("prompt", True, "t", {}, lambda p: "4321\n") == "4321"
    with pytest.raises(CredHelperError, match="no terminal to ask on"):
        read_pin("prompt", False, "t", {}, _never)


def test_env():
    assert read_pin("env:YK_PIN", False, "t", {"YK_PIN": "1234"}, _never) == "1234"
    with pytest.raises(CredHelperError, match="env:YK_PIN: the variable is not set"):
        read_pin("env:YK_PIN", False, "t", {}, _never)


def test_file_must_be_private(tmp_path):
    path = tmp_path / "pin"
    path.write_text("1234\nignored\n")
    path.chmod(0o600)
    assert read_pin(f"file:{path}", False, "t", {}, _never) == "1234"
    path.chmod(0o644)
    with pytest.raises(CredHelperError, match="open to group or others"):
        read_pin(f"file:{path}", False, "t", {}, _never)
    with pytest.raises(CredHelperError, match="No such file"):
        read_pin(f"file:{tmp_path / 'nope'}", False, "t", {}, _never)


def test_command_first_line_and_failures():
    py = sys.executable
    assert read_pin(f"cmd:{py} -c \"print('1234'); print('x')\"", False, "t", {}, _never) == \
        "1234"
    with pytest.raises(CredHelperError, match=r"failed \(exit 3\)"):
        read_pin(f"cmd:{py} -c 'raise SystemExit(3)'", False, "t", {}, _never)
    with pytest.raises(CredHelperError, match="empty PIN"):
        read_pin(f"cmd:{py} -c pass", False, "t", {}, _never)
    with pytest.raises(CredHelperError, match="cannot run"):
        read_pin("cmd:/nonexistent/pin-helper", False, "t", {}, _never)
    assert os.environ  # (the command runs without a shell: no expansion happened above)
