"""Replacing a person's files whole or not at all: owner, group and mode kept, backups made
exclusively and privately, several files together or none, what a killed run left swept."""

from __future__ import annotations

import errno
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from cred_helper import atomicfile
from cred_helper.atomicfile import Change, Existing, Refused, read_regular, write_all
from tests.support.needs import needs

NOW = 1_800_000_000.0
OTHER_UID, OTHER_GID, THIRD_GID = 12345, 23456, 34567
root_only = needs(os.geteuid() == 0, "chown to another user needs root")


def existing(path) -> Existing:
    old = read_regular(str(path))
    assert old is not None
    return old


def names(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_a_file_is_replaced_with_its_mode_and_a_private_backup(tmp_path):
    target = tmp_path / "config"
    target.write_text("old: secret")
    target.chmod(0o640)
    backups = write_all([Change(str(target), b"new", 0o600, existing(target))], NOW)
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    [backup] = backups
    assert os.path.basename(backup).startswith("config.bak-20270115T080000Z-")
    assert Path(backup).read_text() == "old: secret"
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600  # never wider than its owner
    assert names(tmp_path) == sorted(["config", os.path.basename(backup)])


def test_a_new_file_is_private_and_has_no_backup(tmp_path):
    target = tmp_path / "dir" / "config"
    assert write_all([Change(str(target), b"x", 0o600)], NOW) == []
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700


@root_only
def test_owner_and_group_are_kept_as_root(tmp_path):
    """`sudo -E cred-helper setup` on a user's file: it stays theirs (and the backup too)."""
    target = tmp_path / "config"
    target.write_text("old")
    os.chown(target, OTHER_UID, OTHER_GID)
    target.chmod(0o640)
    [backup] = write_all([Change(str(target), b"new", 0o600, existing(target))], NOW)
    st = target.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (OTHER_UID, OTHER_GID, 0o640)
    st = os.stat(backup)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (OTHER_UID, OTHER_GID, 0o600)


@pytest.mark.parametrize(("uid", "gid", "euid", "groups", "why"), [
    (0, 0, 0, set(), None),
    (1000, 100, 0, set(), None),  # root can give any owner
    (1000, 100, 1000, {100}, None),
    (1000, 12345, 1000, {100, 12345}, None),
    (1000, 12345, 1000, {100}, "gid 12345"),
    (2000, 100, 1000, {100}, "uid 2000"),
])
def test_ownership_problem(uid, gid, euid, groups, why):
    old = Existing("p", "p", b"", 0o600, uid, gid)
    problem = atomicfile.ownership_problem(old, euid, groups)
    assert (problem is None) if why is None else (why in problem)


@root_only
def test_a_file_whose_group_cannot_be_kept_is_refused_untouched(tmp_path):
    """As a user outside the file's group (a forked child with that effective uid): setup
    would have to hand the new file another group, so it refuses and writes nothing."""
    directory = tmp_path / "home"
    directory.mkdir()
    target = directory / "config"
    target.write_text("old")
    os.chown(directory, OTHER_UID, OTHER_GID)
    os.chown(target, OTHER_UID, THIRD_GID)
    target.chmod(0o660)
    old = existing(target)
    import tempfile  # noqa: F401  (loaded before the child drops root: it cannot read it then)

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 3
        try:
            os.setgroups([])
            os.setegid(OTHER_GID)
            os.seteuid(OTHER_UID)
            try:
                write_all([Change(str(target), b"new", 0o600, old)], NOW)
                code = 0
            except Refused as exc:
                os.write(write, str(exc).encode())
                code = 1
        finally:
            os._exit(code)
    os.close(write)
    message = os.read(read, 4096).decode()
    os.close(read)
    assert os.waitpid(pid, 0)[1] >> 8 == 1, message
    assert "keeping its owner and group" in message and f"gid {THIRD_GID}" in message
    assert target.read_text() == "old" and names(directory) == ["config"]


@pytest.mark.parametrize("kind", ["char-device", "fifo", "directory", "socket"])
def test_anything_but_a_regular_file_is_refused(tmp_path, kind):
    import socket

    path = tmp_path / "config"
    if kind == "char-device":
        os.symlink("/dev/null", path)  # KUBECONFIG=/dev/null, through a symlink too
    elif kind == "fifo":
        os.mkfifo(path)  # opening it must not wait for a writer
    elif kind == "directory":
        path.mkdir()
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
    with pytest.raises((Refused, OSError)) as raised:
        read_regular(str(path))
    if raised.type is Refused:
        assert "is not a regular file" in str(raised.value)
    assert os.path.exists("/dev/null") and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_missing_file_and_a_dangling_symlink_are_new(tmp_path):
    assert read_regular(str(tmp_path / "absent")) is None
    os.symlink(tmp_path / "target", tmp_path / "link")
    assert read_regular(str(tmp_path / "link")) is None


def test_the_temporary_file_is_private_before_its_first_byte(tmp_path, monkeypatch):
    """A poller must never find the new copy readable by others while it holds data."""
    target = tmp_path / "config"
    target.write_text("old")
    target.chmod(0o600)
    umask = os.umask(0o022)  # a file made with the umask would be 0644
    seen = []
    real_write = os.write

    def watching(fd, data):
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", watching)
    try:
        write_all([Change(str(target), b"token: secret", 0o600, existing(target))], NOW)
    finally:
        os.umask(umask)
    assert seen and all(mode & 0o077 == 0 for mode in seen)


def test_a_backup_never_follows_or_reuses_a_name_someone_made(tmp_path, monkeypatch):
    """Planted at the name a backup would take: a symlink to a victim, and a 0666 file of
    another user. Neither receives the secret; the backup takes another name."""
    target = tmp_path / "config"
    target.write_text("token: secret")
    target.chmod(0o600)
    victim = tmp_path / "victim"
    victim.write_text("victim's")
    tokens = iter(["aaaaaaaa", "bbbbbbbb", "cccccccc"])
    monkeypatch.setattr(atomicfile.secrets, "token_hex", lambda n: next(tokens))
    stamp = "20270115T080000Z"
    os.symlink(victim, tmp_path / f"config.bak-{stamp}-aaaaaaaa")
    planted = tmp_path / f"config.bak-{stamp}-bbbbbbbb"
    planted.write_text("")
    planted.chmod(0o666)
    if os.geteuid() == 0:
        os.chown(planted, OTHER_UID, OTHER_GID)
    [backup] = write_all([Change(str(target), b"new", 0o600, existing(target))], NOW)
    assert backup.endswith("-cccccccc")
    assert victim.read_text() == "victim's" and planted.read_text() == ""
    assert Path(backup).read_text() == "token: secret"


def test_without_hard_links_the_backup_is_created_exclusively(tmp_path, monkeypatch):
    target = tmp_path / "config"
    target.write_text("token: secret")
    target.chmod(0o640)

    def no_links(src, dst):
        raise OSError(errno.EPERM, "no hard links here")

    monkeypatch.setattr(os, "link", no_links)
    [backup] = write_all([Change(str(target), b"new", 0o600, existing(target))], NOW)
    assert Path(backup).read_text() == "token: secret"
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600


def test_several_files_are_written_together_or_not_at_all(tmp_path, monkeypatch):
    """The second file cannot be staged (a full disk): the first is not replaced, and no
    temporary file or backup is left."""
    first, second = tmp_path / "config.toml", tmp_path / "kubeconfig"
    first.write_text("profile")
    second.write_text("kubeconfig")
    real_fill = atomicfile._fill

    def fill(target, data, mode, owner):
        if target == str(second):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fill(target, data, mode, owner)

    monkeypatch.setattr(atomicfile, "_fill", fill)
    with pytest.raises(OSError):
        write_all([Change(str(first), b"new profile", 0o600, existing(first)),
                   Change(str(second), b"new kubeconfig", 0o600, existing(second))], NOW)
    assert first.read_text() == "profile" and second.read_text() == "kubeconfig"
    assert names(tmp_path) == ["config.toml", "kubeconfig"]


def test_a_failed_rename_puts_back_what_was_already_replaced(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("a-old")
    second.write_text("b-old")
    real_replace = os.replace

    def replace(src, dst):
        if dst == str(second):
            raise OSError(errno.EIO, "I/O error")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        write_all([Change(str(first), b"a-new", 0o600, existing(first)),
                   Change(str(second), b"b-new", 0o600, existing(second))], NOW)
    assert first.read_text() == "a-old" and second.read_text() == "b-old"
    assert names(tmp_path) == ["a", "b"]


def test_what_a_killed_write_left_is_swept_at_once_and_nothing_else(tmp_path):
    """Under the target's lock no write of it is in progress: its temporary files go at once,
    whatever their age. Another target's, another user's and unrelated files stay."""
    target = tmp_path / "config"
    target.write_text("old")
    prefix = atomicfile.temp_prefix(str(target))
    left = tmp_path / f"{prefix}abcd_123.tmp"
    left.write_text("token: secret")  # fresh: killed a moment ago
    other_target = tmp_path / f"{atomicfile.temp_prefix(str(tmp_path / 'other'))}abcd_123.tmp"
    other_target.write_text("another file's write in progress")
    unrelated = tmp_path / f"{prefix}notours"
    unrelated.write_text("kept")
    legacy_old, legacy_new = tmp_path / ".cred-helper-ab12_xyz", tmp_path / ".cred-helper-cd34efgh"
    legacy_old.write_text("x")
    legacy_new.write_text("y")
    old_time = time.time() - atomicfile.STALE - 60
    os.utime(legacy_old, (old_time, old_time))
    kept = sorted([other_target.name, unrelated.name, legacy_new.name])
    if os.geteuid() == 0:
        foreign = tmp_path / f"{prefix}zzzz_999.tmp"
        foreign.write_text("someone else's")
        os.chown(foreign, OTHER_UID, OTHER_GID)
        kept = sorted([*kept, foreign.name])
    write_all([Change(str(target), b"new", 0o600, existing(target), backup=False)], NOW)
    assert names(tmp_path) == sorted(["config", *kept])


def test_commit_removes_its_temporary_file_on_failure(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.write_text("partial")

    def fail():
        raise OSError(errno.ENOSPC, "full")

    with pytest.raises(OSError):
        atomicfile.commit(str(tmp), str(tmp_path / "final"), fail)
    assert names(tmp_path) == []


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("POSIX file semantics as on Linux")
