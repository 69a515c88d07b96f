"""The sandbox every fuzz case runs in: the local API server, alice's bootstrap token, a
private home."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def fuzz_box(sandbox):
    os.chmod(sandbox.token_file, 0o600)
    os.chmod(sandbox.root, 0o700)
    return sandbox
