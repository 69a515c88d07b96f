"""What `cred-helper ssh` refuses or fails on before ssh starts, with the request's certificate
already in the cache (the warm path): a word the gateway would refuse, a word before `--`, a bad
`-L`, no ssh on PATH, an expired certificate whose renewal fails, a token key the agent does not
hold; and what the warm path leaves unloaded.

None of these reaches a gateway, so none needs one: the profile names a plain TCP listener that
counts connections, and each test shows it saw none. What a session does at the gateway is in
tests/realcluster/test_ssh_client_session.py (the real gateway) and test_ssh_client.py (with the
real broker too)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from cred_helper import accessrequest as ar
from cred_helper.broker.sshsign import SshCa
from cred_helper.sshaccess.sshkey import fresh
from tests.support.harness import one_error
from tests.support.needs import needs
from tests.support.sshsession import Holder
from tests.support.tcp import serve

pytestmark = needs(shutil.which("ssh") is not None, "openssh-client is missing")

POD = "payment-api-7d4f"


class Listener:
    """Where the profile's gateway is: a TCP port that only counts who connected."""

    def __init__(self) -> None:
        self.connections = 0
        self.server = serve(self._count)
        self.port = self.server.server_address[1]

    def _count(self, conn) -> None:
        self.connections += 1


@pytest.fixture(scope="module")
def gateway():
    listener = Listener()
    yield listener
    listener.server.shutdown()


@pytest.fixture(scope="module")
def ca():
    return SshCa(ed25519.Ed25519PrivateKey.generate(), "test")


def grant() -> ar.Grant:
    return ar.Grant("payments", (POD,), ("pods", "logs", "exec"), (("echo", "**"), ("true",)),
                    True, ())


def holder(tmp_path, gateway, ca) -> Holder:
    return Holder(tmp_path, gateway.port, fresh().public_line, ca)


@pytest.fixture
def alice(tmp_path, gateway, ca):
    person = holder(tmp_path, gateway, ca)
    person.hold(grant())
    return person


def exec_words(*argv: str) -> list[str]:
    return ["--", "exec", POD, "--", *argv]


@pytest.mark.parametrize("word", ["a\nb", "\x1b[31m", "a\rb", "\x7f"])
def test_control_characters_are_refused_before_ssh_starts(alice, gateway, word):
    before = gateway.connections
    done = alice.ssh(*exec_words("echo", word))
    assert done.returncode == 2
    assert "control character" in one_error(done.stderr)
    assert gateway.connections == before


def test_words_before_the_separator_are_refused(alice, gateway):
    before = gateway.connections
    done = alice.ssh("exec", POD)
    assert done.returncode == 2
    error = one_error(done.stderr)
    assert error.startswith("cred-helper: error: the word 'exec' is not an option of "
                            "cred-helper ssh: the gateway command comes after `--`"), error
    assert "unexpected" not in error  # "unexpected" is for bugs, never for input
    assert gateway.connections == before


@pytest.mark.parametrize("spec", ["0:pod:80", "80:pod:65536", "80:Pod:80", "/tmp/s:pod:80",
                                  "a:b:c:d:e", "80:pod", "[nothost]:80:pod:80", "80::80",
                                  "80:pod:-1", "bad_bind:80:pod:80"])
def test_a_bad_forward_is_one_error_before_ssh(alice, gateway, spec):
    before = gateway.connections
    done = alice.ssh("-L", spec, "--", "exec", POD, "--", "true")
    assert done.returncode == 2, done.stderr
    assert one_error(done.stderr).startswith("cred-helper: error: -L ")
    assert gateway.connections == before


def test_no_ssh_on_path_is_one_error(alice, gateway, tmp_path):
    before = gateway.connections
    done = alice.ssh(*exec_words("true"), env={"PATH": str(tmp_path / "nothing")})
    assert done.returncode == 1
    assert one_error(done.stderr) == "cred-helper: error: no ssh on PATH"
    assert "openssh-client" in done.stderr
    assert gateway.connections == before


def test_an_expired_certificate_is_asked_again_and_a_failure_is_one_error(tmp_path, gateway,
                                                                         ca):
    person = holder(tmp_path, gateway, ca)
    person.hold(grant(), now=time.time() - 1800 - 30, seconds=1800)
    before = gateway.connections
    done = person.ssh(*exec_words("echo", "hi"))
    assert done.returncode == 1
    assert "127.0.0.1:9" in one_error(done.stderr)  # the profile's API server: nobody there
    assert gateway.connections == before


TOKEN_KEY = "pkcs11:token=ssh;object=ssh-key"


def test_a_token_key_without_an_agent_is_one_error_before_ssh(tmp_path, gateway, ca):
    from cryptography.hazmat.primitives.asymmetric import ec

    from cred_helper.sshaccess.sshkey import SshKey, public_line
    from tests.support.sshpeer import private_agent

    person = holder(tmp_path, gateway, ca)
    key = SshKey(public_line(ec.generate_private_key(ec.SECP256R1()).public_key()))
    person.hold(grant(), key=key, ssh_key=TOKEN_KEY)
    before = gateway.connections
    done = person.ssh("--ssh-key", TOKEN_KEY, *exec_words("true"))
    assert done.returncode == 1
    assert "no agent is running" in one_error(done.stderr) and "ssh-add -s" in done.stderr
    with private_agent() as agent:
        done = person.ssh("--ssh-key", TOKEN_KEY, *exec_words("true"), env=agent)
    assert done.returncode == 1
    assert "does not hold the request's token key" in one_error(done.stderr)
    done = person.ssh("--ssh-key", TOKEN_KEY, *exec_words("true"),
                      env={"SSH_AUTH_SOCK": str(tmp_path / "no-agent")})
    assert done.returncode == 1 and "cannot reach the ssh-agent" in one_error(done.stderr)
    assert gateway.connections == before


def test_a_cached_certificate_loads_no_http_or_certificate_checking_code(alice):
    """The warm path's start is on every command (bench/gateway.py): no urllib3, no API
    client, no certificate check, no x509, until a request must be made."""
    probe = ("import json, sys\n"
             "from cred_helper.sshaccess import launch\n"
             "def instead(argv):\n"
             "    print(json.dumps(sorted(sys.modules)))\n"
             "    raise SystemExit(0)\n"
             "launch.replace_with = instead\n"
             "from cred_helper.__main__ import main\n"
             f"main({alice.argv(*exec_words('true'))[1:]!r})\n")
    done = subprocess.run([sys.executable, "-c", probe], env=alice.env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert "cred_helper.sshaccess.sshargv" in loaded
    for heavy in ("urllib3", "cred_helper.net", "cred_helper.kube", "cryptography.x509",
                  "cred_helper.sshaccess.certcheck", "cred_helper.issuers.csr", "yaml"):
        assert heavy not in loaded, heavy
