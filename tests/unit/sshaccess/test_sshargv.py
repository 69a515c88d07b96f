"""The ssh command line of `cred-helper ssh`: read back by OpenSSH itself (`ssh -G`), the
gateway command given back word for word by the gateway's splitting rule (`shlex.split`, as
gateway/commands.py splits), and the -L forms."""

from __future__ import annotations

import random
import shlex
import shutil
import subprocess

import pytest

from cred_helper.errors import UsageError
from cred_helper.sshaccess import hostblock
from cred_helper.sshaccess.settings import Gateway
from cred_helper.sshaccess.sshargv import (
    Forward,
    parse_forward,
    remote_command,
    ssh_argv,
    wants_terminal,
)
from tests.support.needs import needs

GATEWAY = Gateway("gw.example.com", 2222)
USER = "alice-20261207-100000-abc123"


def options(tmp_path, agent: bool = False) -> list[tuple[str, str]]:
    d = tmp_path / "dir with space%"
    return hostblock.options(GATEWAY, USER, str(d / ("id.pub" if agent else "id")),
                             str(d / "id-cert.pub"), str(d / "known_hosts"), agent=agent)


def as_ssh_reads_it(argv: list[str]) -> dict[str, list[str]]:
    """`ssh -G` with these options: the configuration ssh would connect with."""
    at = argv.index("--")
    done = subprocess.run([argv[0], "-G", *argv[1:at + 2]], capture_output=True, text=True,
                          check=True, stdin=subprocess.DEVNULL)
    found: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        found.setdefault(key, []).append(value)
    return found


needs_ssh = needs(shutil.which("ssh") is not None, "openssh-client is missing")


@needs_ssh
def test_ssh_reads_the_options_of_the_host_block(tmp_path):
    argv = ssh_argv("ssh", "prod-payments", options(tmp_path), ["pods"], [], terminal=False,
                    batch=True)
    got = as_ssh_reads_it(argv)
    d = tmp_path / "dir with space%"
    assert (got["hostname"], got["port"], got["user"]) == (["gw.example.com"], ["2222"],
                                                           [USER])
    assert got["identityfile"] == [str(d / "id").replace("%", "%%")]  # ssh expands it later
    assert got["certificatefile"] == [str(d / "id-cert.pub").replace("%", "%%")]
    assert got["userknownhostsfile"] == [str(d / "known_hosts")]
    assert got["globalknownhostsfile"] == ["/dev/null"]
    assert got["stricthostkeychecking"] == ["true"] and got["updatehostkeys"] == ["false"]
    assert got["identitiesonly"] == ["yes"] and got["identityagent"] == ["none"]
    assert got["forwardagent"] == ["no"] and got["forwardx11"] == ["no"]
    assert got["passwordauthentication"] == ["no"]
    assert got["kbdinteractiveauthentication"] == ["no"]
    assert got["batchmode"] == ["yes"] and got["requesttty"] == ["false"]
    assert "localforward" not in got and got["sessiontype"] == ["default"]


@needs_ssh
def test_a_token_key_comes_from_the_agent(tmp_path):
    got = as_ssh_reads_it(ssh_argv("ssh", "a", options(tmp_path, agent=True), [], [],
                                   terminal=False, batch=False))
    assert got.get("identityagent") != ["none"] and got["identitiesonly"] == ["yes"]
    assert got["batchmode"] == ["no"]


@needs_ssh
def test_forwards_terminal_and_forwarding_alone(tmp_path):
    forwards = [parse_forward("8080:api-1:80"), parse_forward("[::1]:9090:api-1:90"),
                parse_forward("api-1:7000")]
    got = as_ssh_reads_it(ssh_argv("ssh", "a", options(tmp_path), [], forwards,
                                   terminal=False, batch=True))
    assert got["localforward"] == ["8080 [api-1]:80", "[::1]:9090 [api-1]:90",
                                   "7000 [api-1]:7000"]
    assert got["exitonforwardfailure"] == ["yes"] and got["sessiontype"] == ["none"]
    got = as_ssh_reads_it(ssh_argv("ssh", "a", options(tmp_path), ["shell", "p"], forwards,
                                   terminal=True, batch=False))
    assert got["requesttty"] == ["true"] and got["sessiontype"] == ["default"]


def test_no_config_file_and_the_command_after_the_destination(tmp_path):
    argv = ssh_argv("/usr/bin/ssh", "prod-payments", options(tmp_path),
                    ["-oProxyCommand=x", "a b"], [], terminal=False, batch=False)
    assert argv[:3] == ["/usr/bin/ssh", "-F", "none"]
    assert argv[-3:] == ["--", "prod-payments", "-oProxyCommand=x 'a b'"]
    assert argv.count("--") == 1


# ---- the command line, as the gateway splits it ----------------------------------------------

WORDS = ["exec", "api-1", "--", "sh", "-c", "echo 'a b' \"$HOME\" `id` \\; ~ * #x", "", " ",
         "\t", "ü", "日本", "\U0001f600", "'", '"', "\\", "--", "-x", "%h", "${X}", "\u00a0",
         "\u2028", "\ufeff", "a\tb", "!", "&&", "|"]


def test_the_gateway_splits_the_line_back_into_the_words():
    assert shlex.split(remote_command(WORDS), posix=True) == WORDS


def test_seeded_words_come_back_unchanged():
    rng = random.Random(2027)
    printable = [chr(c) for c in range(0x20, 0x7F)] + ["\t"]
    for _ in range(2000):
        words = ["".join(rng.choice(printable if rng.random() < 0.9 else
                                    [chr(rng.randrange(0xA0, 0x2FFFF))])
                         for _ in range(rng.randrange(0, 8)))
                 for _ in range(rng.randrange(1, 8))]
        words = [w for w in words if not any(0xD800 <= ord(c) <= 0xDFFF for c in w)]
        assert shlex.split(remote_command(words), posix=True) == words


@pytest.mark.parametrize("word", ["a\nb", "\x00", "\x1b[2J", "\r", "\x7f", "\x85",
                                  "\udcff"])
def test_what_the_gateway_refuses_is_refused_first(word):
    with pytest.raises(UsageError) as caught:
        remote_command(["exec", "p", "--", word])
    assert "gateway" in caught.value.hint


# ---- terminals ------------------------------------------------------------------------------

@pytest.mark.parametrize("words, asked, tty, expected", [
    (["shell", "p"], False, True, True),
    (["shell", "p"], False, False, False),
    (["exec", "p", "--", "top"], False, True, False),
    (["exec", "p", "--", "top"], True, True, True),
    ([], False, True, False),
    (["logs", "shell"], False, True, False),
])
def test_a_terminal_for_shell_on_one_or_when_asked(words, asked, tty, expected):
    assert wants_terminal(words, asked, tty) is expected


# ---- -L ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("8080:api-1:80", Forward("", 8080, "api-1", 80)),
    ("127.0.0.1:8080:api-1:80", Forward("127.0.0.1", 8080, "api-1", 80)),
    ("localhost:8080:api-1:80", Forward("localhost", 8080, "api-1", 80)),
    ("*:8080:api-1:80", Forward("*", 8080, "api-1", 80)),
    ("[::1]:8080:api-1:80", Forward("::1", 8080, "api-1", 80)),
    ("api-1:8080", Forward("", 8080, "api-1", 8080)),
    ("1:a.b-c:65535", Forward("", 1, "a.b-c", 65535)),
])
def test_forward_forms(text, expected):
    assert parse_forward(text) == expected


def test_forward_specs_as_ssh_reads_them():
    assert parse_forward("[::1]:8080:api-1:80").spec == "[::1]:8080:api-1:80"
    assert parse_forward("api-1:8080").spec == "8080:api-1:8080"
    assert parse_forward("*:1:p:2").local == "*:1"
    assert parse_forward("1:p:2").local == "localhost:1"


@pytest.mark.parametrize("text", [
    "", "8080", "0:api-1:80", "8080:api-1:0", "65536:api-1:80", "8080:api-1:65536",
    "8080:Api:80", "8080:api_1:80", "8080::80", ":8080:api-1:80", "a:b:c:d:e",
    "/tmp/sock:api-1:80", "8080:api-1:/tmp/sock", "[::1:8080:api-1:80", "[x]:8080:api-1:80",
    "[::1]:8080:api-1", "bad_bind:8080:api-1:80", "8080:api-1:８０", "+80:api-1:80",
    "8080:api-1:80 ", "-L:8080:api-1:80", "8080:" + "a" * 254 + ":80"])
def test_forwards_that_are_not_one_of_the_forms(text):
    with pytest.raises(UsageError) as caught:
        parse_forward(text)
    assert caught.value.message.startswith("-L ")
