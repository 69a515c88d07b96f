"""`cred-helper ssh`'s warm path (sshaccess/warm.py): after a run of the whole command, the next
run with the same options becomes the same ssh without the CLI, and whatever could make the
whole command do otherwise (another profile file or kubeconfig, files ssh reads changed, the
certificate near its end, the request replaced, a logout, -L, a token key) sends it back there.

Each run here is `main()` in a child process with the last step replaced: instead of becoming
ssh, it prints which path got there, ssh's command line and the modules loaded. Sessions
through the warm path with the real ssh and the real gateway: tests/realcluster/
test_ssh_client*.py, whose second and later runs of a person take it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from cred_helper import accessrequest as ar
from cred_helper.broker.sshsign import SshCa
from cred_helper.sshaccess.sshkey import fresh
from tests.support.sshsession import NAME, Holder

GRANT = ar.Grant("payments", (), ("pods", "logs", "exec"), (("echo", "**"),), True, ())

PROBE = """
import json, sys
from cred_helper.sshaccess import launch, warm

def took(path):
    def instead(argv):
        print(json.dumps({"path": path, "argv": list(argv), "modules": sorted(sys.modules)}))
        raise SystemExit(0)
    return instead

warm.become = took("warm")
launch.replace_with = took("whole")
from cred_helper.__main__ import main
sys.exit(main(json.loads(sys.argv[1])))
"""


@pytest.fixture(scope="module")
def ca():
    return SshCa(ed25519.Ed25519PrivateKey.generate(), "test")


@pytest.fixture
def alice(tmp_path, ca) -> Holder:
    person = Holder(tmp_path, 2222, fresh().public_line, ca)
    person.hold(GRANT)
    return person


def run(person: Holder, *args: str, env: dict[str, str] | None = None) -> dict:
    """`cred-helper ssh --cluster prod --reason INC-42 ARGS...` up to the step that would
    become ssh: {"path": "warm" or "whole", "argv", "modules"}, or {"code", "stderr"}."""
    argv = person.argv(*args)[1:]
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)],
                          env={**person.env, **(env or {})}, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    if done.stdout:
        return {**json.loads(done.stdout), "stderr": done.stderr}
    return {"code": done.returncode, "stderr": done.stderr}


def warm_files(person: Holder) -> list[str]:
    return sorted(p.name for p in person.cache_dir.glob("*.sshwarm"))


WORDS = [["--", "exec", "api-1", "--", "echo", "it's", "$HOME", ""], ["--", "whoami"], [],
         ["--", "shell", "api-1"], ["-t", "--", "exec", "api-1", "--", "echo", "hi"]]


@pytest.mark.parametrize("words", WORDS)
def test_the_next_run_becomes_the_same_ssh_without_the_cli(alice, words):
    whole = run(alice, *words)
    assert whole["path"] == "whole", whole
    warm = run(alice, *words)
    assert warm["path"] == "warm", warm
    assert warm["argv"][1:] == whole["argv"][1:]  # [0]: the path found, or ssh on PATH
    assert warm["stderr"] == whole["stderr"] == ""
    for heavy in ("click", "cryptography", "cred_helper.cli", "cred_helper.config", "yaml",
                  "urllib3", "dataclasses", "cred_helper.sshaccess.flow"):
        assert heavy not in warm["modules"], heavy


def test_another_gateway_command_takes_the_same_warm_file(alice):
    assert run(alice, "--", "pods")["path"] == "whole"
    first = warm_files(alice)
    warm = run(alice, "--", "exec", "api-1", "--", "echo", "other")
    assert warm["path"] == "warm" and warm["argv"][-1] == "exec api-1 -- echo other"
    assert warm_files(alice) == first


def edit_profile(person: Holder) -> None:
    text = person.config.read_text()
    person.config.write_text(text + "# a comment changes nothing, but the file changed\n")


def touch_kubeconfig(person: Holder) -> dict[str, str]:
    path = person.home / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\n")
    return {"KUBECONFIG": str(path)}


@pytest.mark.parametrize("change", ["profile", "kubeconfig", "certificate file", "known_hosts",
                                    "host block", "key file", "options"])
def test_a_change_the_whole_command_must_see_sends_the_run_there(alice, change):
    env: dict[str, str] = {}
    if change == "kubeconfig":
        env = touch_kubeconfig(alice)
    assert run(alice, "--", "pods", env=env)["path"] == "whole"
    assert run(alice, "--", "pods", env=env)["path"] == "warm"
    files = alice.ssh_dir / "prod-payments"
    args: tuple[str, ...] = ("--", "pods")
    if change == "profile":
        edit_profile(alice)
    elif change == "kubeconfig":
        (alice.home / "kubeconfig").write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    elif change == "certificate file":
        (files / "id-cert.pub").write_text("ssh-ed25519-cert-v01@openssh.com AAAA\n")
    elif change == "known_hosts":
        (files / "known_hosts").write_text(f"[127.0.0.1]:2222 {fresh().public_line}\n")
    elif change == "host block":
        conf = alice.ssh_dir / "prod-payments.conf"
        conf.write_text(conf.read_text() + "  ProxyCommand nc %h %p\n")
    elif change == "key file":
        (files / "id").write_bytes(fresh().private_openssh)
    else:
        args = ("--namespace", "payments", "--", "pods")
    again = run(alice, *args, env=env)
    assert again["path"] == "whole", again
    # ...which puts everything right, so the run after is warm again.
    assert run(alice, *args, env=env)["path"] == "warm"


def test_near_its_end_the_whole_command_says_when_the_session_ends(tmp_path, ca):
    person = Holder(tmp_path, 2222, fresh().public_line, ca)
    person.hold(GRANT, now=time.time() - 1800 + 250, seconds=1800)
    for _ in range(2):
        done = run(person, "--", "pods")
        assert done["path"] == "whole"
        assert f"access request {NAME} ends in" in done["stderr"]


def test_a_new_request_behind_the_same_entry_is_not_served_from_the_old_warm_file(alice):
    assert run(alice, "--", "pods")["path"] == "whole"
    alice.hold(GRANT, name="alice-example-com-20261207-110000-def456")
    done = run(alice, "--", "pods")
    assert done["path"] == "whole"
    assert "User=alice-example-com-20261207-110000-def456" in done["argv"]


def test_logout_removes_the_warm_file_and_the_next_run_is_the_whole_command(alice):
    assert run(alice, "--", "pods")["path"] == "whole"
    assert warm_files(alice)
    done = alice.cred_helper("logout", "--cluster", "prod")
    assert done.returncode == 0, done.stderr
    assert warm_files(alice) == []
    again = run(alice, "--", "pods")
    assert again.get("path") != "warm"


def test_forwards_leave_no_warm_file(alice):
    assert run(alice, "-L", "8080:api-1:8080")["path"] == "whole"
    assert warm_files(alice) == []


def test_a_token_key_leaves_no_warm_file(tmp_path, ca):
    from cryptography.hazmat.primitives.asymmetric import ec

    from cred_helper.sshaccess.sshkey import SshKey, public_line

    person = Holder(tmp_path, 2222, fresh().public_line, ca)
    token = "pkcs11:token=ssh;object=ssh-key"
    key = SshKey(public_line(ec.generate_private_key(ec.SECP256R1()).public_key()))
    person.hold(GRANT, key=key, ssh_key=token)
    run(person, "--ssh-key", token, "--", "pods")  # fails at the agent check: no agent
    assert warm_files(person) == []


def test_a_word_the_gateway_refuses_is_refused_by_the_whole_command(alice):
    assert run(alice, "--", "pods")["path"] == "whole"
    done = run(alice, "--", "exec", "api-1", "--", "echo", "a\nb")
    assert done["code"] == 2 and "control character" in done["stderr"]


def test_a_warm_file_in_a_cache_others_can_read_is_not_taken(alice):
    assert run(alice, "--", "pods")["path"] == "whole"
    os.chmod(alice.cache_dir, 0o755)
    done = run(alice, "--", "pods")
    assert done.get("path") != "warm"
    assert done["code"] == 1 and "cred-helper: error:" in done["stderr"]


def test_an_option_given_twice_is_the_whole_commands_to_read(alice, tmp_path):
    """click takes the last value; the warm key takes them all (joined, never opened)."""
    twice = ("--kubeconfig", str(tmp_path / "a"), "--kubeconfig", str(tmp_path / "b"))
    assert run(alice, *twice, "--", "pods")["path"] == "whole"
    assert run(alice, *twice, "--", "pods")["path"] == "warm"
