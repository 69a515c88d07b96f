"""setup never loses, breaks or leaks a person's kubeconfig or profile (issue 21, 2-7 and the
smaller items): kubectl's lock against `kubectl config set-context` and another setup, kills at
random points of the write, a full disk, owner and group, files that are not files, --print."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
import tomllib
import yaml

from cred_helper import atomicfile, goyaml
from tests.integration.test_kubeconfig_fidelity import run_kubectl, view
from tests.integration.test_setup import base, setup
from tests.support.harness import CRED_HELPER, as_kubectl_would, assert_no_secrets, one_error
from tests.support.needs import missing, needs

pytestmark = pytest.mark.kubectl

SECRET = "safety-secret-token-0123456789abcdef"
TRIALS = 20


def foreign_kubeconfig(path: Path, users: int = 1) -> bytes:
    """A kubeconfig of someone's, with secrets in it, 0600."""
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "other",
           "clusters": [{"name": "other", "cluster": {"server": "https://other.example:6443"}}],
           "users": [{"name": f"u{i}", "user": {"token": f"{SECRET}-{i}",
                                                "client-key-data": "S0VZLURBVEE="}}
                     for i in range(users)],
           "contexts": [{"name": "other", "context": {"cluster": "other", "user": "u0"}}]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path.read_bytes()


def start_setup(sandbox, *args: str, umask: int = 0o022) -> subprocess.Popen:
    env = dict(sandbox.env)
    return subprocess.Popen(as_kubectl_would(CRED_HELPER, "setup", *args), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: os.umask(umask), start_new_session=True)


def contexts(kubectl: str, config: Path, home: Path) -> set[str]:
    return {c["name"] for c in view(kubectl, config, home)["contexts"] or []}


def _set_contexts(kubectl: str, config: Path, home: Path, prefix: str, stop: threading.Event,
                  written: list[str]) -> None:
    """`kubectl config set-context` in a loop until stopped (three at least); the names of
    those kubectl reported as written go to `written`."""
    n = 0
    while not stop.is_set() or n < 3:
        name = f"{prefix}-{n}"
        done = run_kubectl(kubectl, config, "config", "set-context", name, f"--namespace=ns{n}",
                           home=home)
        if done.returncode == 0:
            written.append(name)
        else:
            assert "lock" in done.stderr, done.stderr  # setup's lock: not written, and said
        n += 1


def test_setup_racing_kubectl_set_context_loses_nothing(sandbox, kubectl):
    """20 trials: kubectl writes contexts in a loop while setup runs. Every context kubectl
    reported as written is there afterwards, and so are setup's entries (a kubectl that read
    the file before setup's write removes them: setup writes them again, the next test shows
    it exactly). kubectl sometimes finds setup's lock and says so (exit 1): that write was not
    made, and nothing is lost."""
    home = sandbox.root
    config = home / ".kube" / "config"
    for trial in range(TRIALS):
        foreign_kubeconfig(config, users=200 if trial % 4 == 0 else 1)
        written: list[str] = []
        stop = threading.Event()
        thread = threading.Thread(target=_set_contexts,
                                  args=(kubectl, config, home, f"k{trial}", stop, written))
        thread.start()
        time.sleep(random.uniform(0, 0.3))
        done = setup(sandbox, *base(sandbox, name=f"c{trial}"), "--no-verify")
        stop.set()
        thread.join()
        assert done.returncode == 0, done.stderr
        have = contexts(kubectl, config, home)
        assert set(written) <= have, set(written) - have
        assert f"c{trial}" in have and "other" in have
        for old in config.parent.glob("config.bak-*"):
            old.unlink()
    assert not list(config.parent.glob("*.lock"))


def test_setup_writes_again_what_a_stale_kubectl_removed(sandbox, kubectl):
    """kubectl's own lost update, played exactly: a `kubectl config set-context` reads the file
    before setup writes it and takes the lock after setup lets go, then writes its copy (which
    lacks setup's entries, so client-go deletes them). Setup looks again once kubectl is done,
    writes its entries again and says so; kubectl's context stays too. (The stand-in must take
    the lock within setup's 0.3 s: a machine that stalls this test longer gets another try.)"""
    home = sandbox.root
    config = home / ".kube" / "config"
    lock = Path(str(config) + ".lock")
    for _ in range(3):
        stale = foreign_kubeconfig(config)
        doc = yaml.safe_load(stale)
        doc["contexts"].append({"name": "kubectl-made", "context": {"cluster": "other"}})
        stale_with_kubectls = yaml.safe_dump(doc).encode()
        run = start_setup(sandbox, *base(sandbox, name="raced"), "--no-verify")
        deadline = time.monotonic() + 60
        while True:  # setup's write is in and its lock is gone: take the lock as kubectl does
            assert time.monotonic() < deadline and run.poll() is None, run.communicate()
            if b"raced" in config.read_bytes():
                try:
                    fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
                    break
                except FileExistsError:
                    pass
            time.sleep(0.001)
        config.write_bytes(stale_with_kubectls)
        os.close(fd)
        lock.unlink()
        _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        if "removed setup's entries" in err:
            break
    assert "removed setup's entries" in err and "wrote them again" in err, err
    assert {"raced", "kubectl-made", "other"} <= contexts(kubectl, config, home)
    assert not lock.exists()


def test_two_setups_at_once_lose_nothing(sandbox, kubectl):
    """20 trials: two setups for two clusters start together on one kubeconfig and one
    profile file. Both succeed, both profiles and all six entries are there, and each made
    its own backup (in the same second, under different names)."""
    home = sandbox.root
    config = home / ".kube" / "config"
    profile = home / "config" / "cred-helper" / "config.toml"
    for trial in range(TRIALS):
        foreign_kubeconfig(config)
        profile.parent.mkdir(parents=True, exist_ok=True)
        profile.write_text("# mine\n")
        runs = [start_setup(sandbox, *base(sandbox, name=f"{side}{trial}"), "--no-verify")
                for side in ("a", "b")]
        for run in runs:
            _, err = run.communicate(timeout=120)
            assert run.returncode == 0, err
        doc = goyaml.load(config.read_text())
        names = {s: {i["name"] for i in doc[s]} for s in ("clusters", "users", "contexts")}
        assert {f"a{trial}", f"b{trial}", "other"} <= names["clusters"]
        assert {f"cred-helper-a{trial}", f"cred-helper-b{trial}"} <= names["users"]
        assert {f"a{trial}", f"b{trial}"} <= names["contexts"]
        assert profile.read_text().startswith("# mine\n")
        assert set(tomllib.loads(profile.read_text())["clusters"]) == {f"a{trial}", f"b{trial}"}
        kube_backups = list(config.parent.glob("config.bak-*"))
        assert len(kube_backups) == 2, kube_backups
        for old in [*kube_backups, *profile.parent.glob("config.toml.bak-*")]:
            old.unlink()
    assert contexts(kubectl, config, home) >= {f"a{TRIALS - 1}", f"b{TRIALS - 1}", "other"}


def _exposed(directory: Path) -> list[str]:
    """Files in `directory` that group or others may read and that hold the secret."""
    found = []
    for entry in os.scandir(directory):
        try:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o044:
                with open(entry.path, "rb") as fh:
                    if SECRET.encode() in fh.read():
                        found.append(f"{entry.name} {stat.S_IMODE(st.st_mode):o}")
        except OSError:
            pass  # renamed or removed meanwhile
    return found


def _poll(directory: Path, stop: threading.Event, exposed: list[str]) -> None:
    while not stop.is_set():
        exposed.extend(_exposed(directory))


def test_a_kill_at_any_point_of_the_write_leaves_the_file_whole_and_nothing_open(sandbox):
    """Trials killed (SIGKILL) at random moments: before the write, or a random time after
    the first temporary file appears. A poller watches the directory all along (the setup
    runs with umask 022, so a file made with the umask would be 0644): no copy of the secret
    is ever readable by others. After each kill the kubeconfig is the old bytes or the whole
    new file, every backup is a whole copy, and an immediate rerun succeeds (taking over the
    lock the killed run held) and leaves no temporary file."""
    config = sandbox.root / ".kube" / "config"
    directory = config.parent
    kills = {"before the write": 0, "during the write": 0, "after it": 0}
    for trial in range(TRIALS):
        original = foreign_kubeconfig(config, users=600)  # ~90 KB: the write takes a while
        exposed: list[str] = []
        stop = threading.Event()
        poller = threading.Thread(target=_poll, args=(directory, stop, exposed))
        poller.start()
        try:
            run = start_setup(sandbox, *base(sandbox, name=f"k{trial}"), "--no-verify")
            temp = atomicfile.temp_prefix(str(config))
            if trial % 5 == 0:
                time.sleep(random.uniform(0.05, 1.0))  # somewhere before (or in) the write
            else:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and run.poll() is None and not any(
                        n.startswith(temp) for n in os.listdir(directory)):
                    time.sleep(0.0005)
                time.sleep(random.uniform(0, 0.02))
            try:
                os.killpg(run.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it had finished
            run.communicate()
        finally:
            stop.set()
            poller.join()
        assert not exposed, exposed
        now = config.read_bytes()
        if now == original:
            leftovers = [n for n in os.listdir(directory) if n.startswith(temp)]
            kills["during the write" if leftovers else "before the write"] += 1
        else:
            kills["after it"] += 1
            assert f"cred-helper-k{trial}" in now.decode()
            assert goyaml.load(now.decode())["users"][0]["user"]["token"] == f"{SECRET}-0"
        for backup in directory.glob("config.bak-*"):
            assert backup.read_bytes() == original  # whole, never partial
            assert stat.S_IMODE(backup.stat().st_mode) == 0o600
            backup.unlink()
        rerun = setup(sandbox, *base(sandbox, name=f"k{trial}"), "--no-verify")
        assert rerun.returncode == 0, rerun.stderr
        assert not [n for n in os.listdir(directory) if n.startswith(temp) or
                    n.endswith(".lock")]
        assert _exposed(directory) == []
    print("kills:", kills)
    assert kills["during the write"] + kills["after it"] > 0, kills


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        missing("mounting a tmpfs needs root")
    where = tmp_path / "small"
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)],
                      capture_output=True).returncode != 0:
        missing("this root cannot mount a tmpfs")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_writes_neither_the_kubeconfig_nor_the_profile(sandbox, small_disk):
    """The kubeconfig fits its small disk once, not a second time (the new copy, the backup):
    setup fails with one error, the profile (on another disk) is not written either, and no
    partial backup or temporary copy of the secret is left."""
    config = small_disk / "config"
    original = foreign_kubeconfig(config, users=900)  # ~140 KB of 256 KB
    profile = sandbox.root / "config" / "cred-helper" / "config.toml"
    done = setup(sandbox, *base(sandbox), "--no-verify", env={"KUBECONFIG": str(config)})
    assert done.returncode == 2, done.stderr
    assert "No space left on device" in one_error(done.stderr)
    assert "nothing was written" in done.stderr
    assert config.read_bytes() == original
    assert sorted(os.listdir(small_disk)) == ["config"]
    assert not profile.exists()


def test_the_kubeconfig_cannot_be_edited_so_the_profile_is_not_written(sandbox):
    """Both or neither: the kubeconfig's users list is an alias setup will not edit."""
    config = sandbox.root / ".kube" / "config"
    config.parent.mkdir()
    config.write_text("shared: &u []\nusers: *u\n")
    done = setup(sandbox, *base(sandbox), "--no-verify")
    assert done.returncode == 2
    assert "cannot add setup's entries" in one_error(done.stderr)
    assert not (sandbox.root / "config" / "cred-helper" / "config.toml").exists()
    assert config.read_text() == "shared: &u []\nusers: *u\n"


@needs(os.geteuid() == 0, "chown to another user needs root")
def test_a_users_file_keeps_its_owner_and_group_when_root_runs_setup(sandbox, kubectl):
    """`sudo -E cred-helper setup` on alice's 0640 file in group 23456: still hers after."""
    config = sandbox.root / ".kube" / "config"
    foreign_kubeconfig(config)
    os.chown(config, 12345, 23456)
    config.chmod(0o640)
    done = setup(sandbox, *base(sandbox), "--no-verify")
    assert done.returncode == 0, done.stderr
    st = config.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (12345, 23456, 0o640)
    [backup] = config.parent.glob("config.bak-*")
    st = backup.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (12345, 23456, 0o600)
    assert "local" in contexts(kubectl, config, sandbox.root)


@pytest.mark.parametrize("kind", ["/dev/null", "fifo", "directory"])
def test_a_kubeconfig_that_is_not_a_file_is_refused(sandbox, kind):
    if kind == "/dev/null":
        path = "/dev/null"
    else:
        path = str(sandbox.root / "kc")
        if kind == "fifo":
            os.mkfifo(path)
        else:
            os.mkdir(path)
    done = setup(sandbox, *base(sandbox), "--no-verify", env={"KUBECONFIG": path})
    assert done.returncode == 2
    assert "is not a regular file" in one_error(done.stderr)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert not (sandbox.root / "config" / "cred-helper" / "config.toml").exists()


def test_a_profile_file_that_is_not_a_file_is_refused(sandbox):
    profile = sandbox.root / "config" / "cred-helper" / "config.toml"
    profile.parent.mkdir(parents=True)
    os.mkfifo(profile)
    done = setup(sandbox, *base(sandbox), "--no-verify")
    assert done.returncode == 2
    assert "is not a regular file" in one_error(done.stderr)
    assert not (sandbox.root / ".kube" / "config").exists()


def test_print_shows_what_setup_would_change_and_no_secret_it_did_not_write(sandbox):
    config = sandbox.root / ".kube" / "config"
    foreign_kubeconfig(config)
    before = config.read_bytes()
    done = setup(sandbox, *base(sandbox), "--print")
    assert done.returncode == 0, done.stderr
    assert_no_secrets(done.stdout + done.stderr, SECRET, "S0VZLURBVEE=")
    assert "cred-helper-local" in done.stdout and "[clusters.local]" in done.stdout
    assert "other.example" not in done.stdout  # nothing of the rest of the file
    assert config.read_bytes() == before and not (sandbox.root / "config").exists()
    assert not list(config.parent.glob("*.lock"))


def test_a_hand_written_profile_is_not_replaced_without_overwrite(sandbox):
    profile = sandbox.root / "config" / "cred-helper" / "config.toml"
    profile.parent.mkdir(parents=True)
    text = '[clusters.local]\n# my notes\nissuer = "csr"\nttl = "1h"\nkey = "p256"\n'
    profile.write_text(text)
    done = setup(sandbox, *base(sandbox), "--no-verify")
    assert done.returncode == 2
    assert "already has a profile [clusters.local]" in one_error(done.stderr)
    assert profile.read_text() == text and not (sandbox.root / ".kube" / "config").exists()


def test_setup_waits_for_kubectls_lock(sandbox):
    """kubectl's lock (an empty FILE.lock) held for a second: setup waits, then writes."""
    config = sandbox.root / ".kube" / "config"
    foreign_kubeconfig(config)
    lock = config.parent / "config.lock"
    fd = os.open(lock, os.O_CREAT | os.O_EXCL, 0)
    os.close(fd)
    run = start_setup(sandbox, *base(sandbox), "--no-verify")
    time.sleep(1.0)
    assert run.poll() is None and b"cred-helper-local" not in config.read_bytes()
    lock.unlink()
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert b"cred-helper-local" in config.read_bytes()
