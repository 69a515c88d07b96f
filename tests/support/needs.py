"""What a test needs from the machine: skipped where it is missing on a developer's machine,
a failure under CI=true, where scripts/setup installs it (SoftHSM2, OpenSC's pkcs11-spy,
gnome-keyring, Node.js, ruby, OpenSSH's client) and CI runs as root (mounts, chown). A CI
run whose tests silently skipped would pass having checked less."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def missing(reason: str) -> None:
    """Stop this test because `reason` (a part of the machine) is missing: skip, or under
    CI=true fail."""
    if in_ci():
        pytest.fail(f"{reason}; CI must run this test (scripts/setup installs what it needs)")
    pytest.skip(reason)


def needs(available: bool, reason: str) -> pytest.MarkDecorator:
    """A mark for a test (or `pytestmark` for a module) that needs something: see missing()."""
    return pytest.mark.needs(available, reason)


def apply_needs(item: pytest.Item) -> None:
    """From tests/conftest.py's setup hook: every `needs` mark of the test must hold."""
    for mark in item.iter_markers("needs"):
        available, reason = mark.args
        if not available:
            missing(reason)
