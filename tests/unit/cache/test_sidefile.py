"""A damaged side file is refused, cleared where safe, said once, and never followed."""

from __future__ import annotations

import os

import pytest

from cred_helper.cache.sidefile import SideFiles, damage
from tests.support.damage import KINDS, SAID, plant


@pytest.fixture
def place(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    target = tmp_path / "precious"
    target.write_text("the user's own\n")
    target.chmod(0o600)
    return cache / "k.served", target


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "directory with a file"])
def test_read_refuses_clears_and_says_it_once(place, kind):
    path, target = place
    plant(path, kind, target)
    warned: list[str] = []
    side = SideFiles(warned.append)
    assert side.read(str(path)) is None
    assert not os.path.lexists(path)
    assert side.read(str(path)) is None  # gone now: nothing more to say
    side.refuse(str(path), "again")
    assert len(warned) == 1 and warned[0].startswith(f"ignoring {path}: it ")
    assert SAID[kind] in warned[0] and "removed it" in warned[0]
    assert target.read_text() == "the user's own\n"
    assert not (path.parent / "nothing-here").exists(), "a dangling link is never followed"


def test_a_directory_holding_files_is_left_with_one_warning(place):
    path, target = place
    plant(path, "directory with a file", target)
    warned: list[str] = []
    side = SideFiles(warned.append)
    assert side.read(str(path)) is None
    assert side.clear_damage(str(path)) is False
    assert (path / "kept").read_text() == "not ours to remove"
    assert warned == [f"ignoring {path}: it is a directory and cannot be removed (a directory "
                      "that is not empty); remove it yourself"]


def test_clear_damage_leaves_a_good_file_alone(place):
    path, _ = place
    path.write_text("ours")
    path.chmod(0o600)
    warned: list[str] = []
    assert SideFiles(warned.append).clear_damage(str(path)) is True
    assert path.read_text() == "ours" and warned == [] and damage(str(path)) is None
    assert SideFiles(warned.append).clear_damage(str(path.parent / "absent")) is True


def test_retry_only_after_damage(place):
    path, target = place
    side = SideFiles(print)
    assert side.retry(str(path), OSError(28, "No space left on device")) is False
    plant(path, "symlink", target)
    assert side.retry(str(path), OSError(40, "Too many levels of symbolic links")) is True
    assert not os.path.lexists(path)
