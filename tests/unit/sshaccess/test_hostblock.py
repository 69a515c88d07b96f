"""The Host block as OpenSSH itself reads it (`ssh -G`): the request's login, its key and
certificate, the pinned known_hosts and nothing forwarded."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from cred_helper.errors import UsageError
from cred_helper.sshaccess.hostblock import host_block, known_hosts, quote
from cred_helper.sshaccess.settings import Gateway
from tests.support.needs import needs

pytestmark = needs(shutil.which("ssh") is not None, "openssh-client is missing")

GATEWAY = Gateway("127.0.0.1", 2222)


def ssh_g(tmp_path, block: str, alias: str = "prod-payments") -> dict[str, list[str]]:
    conf = tmp_path / "conf"
    conf.write_text(block)
    done = subprocess.run(["ssh", "-G", "-F", str(conf), alias], capture_output=True,
                          text=True, check=True)
    found: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        found.setdefault(key, []).append(value)
    return found


def test_ssh_reads_the_block_as_meant(tmp_path):
    d = tmp_path / "with space"
    block = host_block("prod-payments", GATEWAY, "alice-20261207-100000-abc123",
                       str(d / "id"), str(d / "id-cert.pub"), str(d / "known_hosts"),
                       comments=("a comment",))
    got = ssh_g(tmp_path, block)
    assert got["user"] == ["alice-20261207-100000-abc123"]
    assert (got["hostname"], got["port"]) == (["127.0.0.1"], ["2222"])
    assert got["identityfile"] == [str(d / "id")]
    assert got["certificatefile"] == [str(d / "id-cert.pub")]
    assert got["userknownhostsfile"] == [str(d / "known_hosts")]
    assert got["globalknownhostsfile"] == ["/dev/null"]
    assert got["stricthostkeychecking"] == ["true"]
    assert got["identitiesonly"] == ["yes"] and got["identityagent"] == ["none"]
    assert got["forwardagent"] == ["no"] and got["forwardx11"] == ["no"]
    assert got["passwordauthentication"] == ["no"]
    assert got["kbdinteractiveauthentication"] == ["no"]


def test_a_token_key_is_found_in_the_agent_by_its_public_half(tmp_path):
    block = host_block("prod-payments", GATEWAY, "u", str(tmp_path / "id.pub"),
                       str(tmp_path / "c.pub"), str(tmp_path / "kh"), agent=True)
    got = ssh_g(tmp_path, block)
    assert got["identityfile"] == [str(tmp_path / "id.pub")]
    assert got["certificatefile"] == [str(tmp_path / "c.pub")]
    assert got.get("identityagent") != ["none"] and got["identitiesonly"] == ["yes"]


def test_known_hosts_lines():
    text = known_hosts(GATEWAY, ("ssh-ed25519 AAAA1", "ssh-ed25519 AAAA2"), "ssh-ed25519 CA")
    assert text.splitlines() == ["[127.0.0.1]:2222 ssh-ed25519 AAAA1",
                                 "[127.0.0.1]:2222 ssh-ed25519 AAAA2",
                                 "@cert-authority [127.0.0.1]:2222 ssh-ed25519 CA"]
    assert known_hosts(Gateway("gw", 22), ("k",), "") == "gw k\n"


def test_a_path_ssh_config_cannot_name_is_refused():
    with pytest.raises(UsageError, match="cannot name the path"):
        quote('/tmp/a"b')


@pytest.mark.parametrize("odd", ["50%d", "o'brien", "a#b", "back\\slash", "sp ace%h",
                                 "tab\there"])
def test_a_path_ssh_would_misread_is_quoted_so_that_it_reads_it_as_is(tmp_path, odd):
    d = tmp_path / odd
    block = host_block("prod-payments", GATEWAY, "u", str(d / "id"), str(d / "c"),
                       str(d / "known_hosts"))
    got = ssh_g(tmp_path, block)
    # ssh -G expands tokens of UserKnownHostsFile and shows IdentityFile as written; a real
    # login through such paths: tests/realcluster/test_ssh_client_session.py
    assert got["userknownhostsfile"] == [str(d / "known_hosts")]
    assert got["identityfile"] == [str(d / "id").replace("%", "%%")]


def test_a_path_with_an_environment_reference_is_refused():
    with pytest.raises(UsageError, match="cannot name the path"):
        quote("/home/${USER}/cache")
