"""`cred-helper ssh` with the system's `ssh` (OpenSSH 9.2) against an SSH server standing in
for the gateway (tests/support/sshpeer.py: asyncssh trusting the SSH user CA, answering `exec`
and `shell` as the gateway and the kubelet stand-in do), the request's certificate already in
the cache (the warm path: tests/realcluster/test_ssh_client.py makes it with the real broker).

To run these against the real gateway once it is merged, the `gateway` fixture is the one
place to change: it yields what the tests reach (port, host key, the CA it trusts, the ports
it forwards); the commands and what the person sees stay the same.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from cred_helper import accessrequest as ar
from cred_helper.broker.sshsign import SshCa
from cred_helper.sshaccess.sshkey import fresh
from tests.integration import test_ssh_login as tokens
from tests.support.harness import on_terminal, one_error
from tests.support.sshpeer import SshPeer
from tests.support.sshsession import NAME, Holder

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="openssh-client is missing")

POD = "payment-api-7d4f"
PY = sys.executable  # the "pod" runs local processes (as the kubelet stand-in does)
ARGV_JSON = [PY, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))"]


class EchoServer:
    """A TCP service on 127.0.0.1 (what a pod's port reaches through the stand-in): answers
    each connection with `echo:` and what it read."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(4096)
                conn.sendall(b"echo:" + data)


@pytest.fixture(scope="module")
def echo():
    server = EchoServer()
    yield server
    server.sock.close()


@pytest.fixture(scope="module")
def ca():
    return SshCa(ed25519.Ed25519PrivateKey.generate(), "test")


@pytest.fixture(scope="module")
def gateway(ca, echo):
    """THE FIXTURE TO SWAP for the real gateway (`cred-helper gateway run` on the real control
    plane with the kubelet stand-in, pod POD, the grant below)."""
    with SshPeer(ca.public_line, ports=[echo.port]) as peer:
        yield peer


def grant(ports: tuple[int, ...] = (), shell: bool = True) -> ar.Grant:
    """What the tests run (the peer runs anything; the real gateway holds to this)."""
    return ar.Grant("payments", (POD,), ("pods", "logs", "exec"),
                    ((PY, "**"), ("echo", "**"), ("true",)), shell, ports)


@pytest.fixture
def alice(tmp_path, gateway, ca, echo):
    person = Holder(tmp_path, gateway.port, gateway.host_key_line, ca)
    person.hold(grant(ports=(echo.port,)))
    return person


def exec_words(*argv: str) -> list[str]:
    return ["--", "exec", POD, "--", *argv]


# ---- a command: output, exit code, stdin -------------------------------------------------

def test_a_command_prints_and_exits_0(alice, gateway):
    done = alice.ssh(*exec_words("echo", "hi"))
    assert (done.returncode, done.stdout, done.stderr) == (0, "hi\n", "")
    assert gateway.sessions[-1].login == NAME


@pytest.mark.parametrize("code", [3, 1, 126, 255])
def test_the_remote_exit_code_is_the_exit_code(alice, code):
    done = alice.ssh(*exec_words(PY, "-c", f"import sys; sys.exit({code})"))
    assert done.returncode == code, done.stderr


def test_stdin_reaches_the_command_and_stdout_comes_back_byte_for_byte(alice):
    data = random.Random(7).randbytes(3 << 20)
    done = alice.ssh(*exec_words(PY, "-c", "import sys, hashlib; data = sys.stdin.buffer."
                                           "read(); sys.stdout.buffer.write(data[::-1])"),
                     input=data)
    assert done.returncode == 0, done.stderr
    assert done.stdout == data[::-1]


def test_stderr_stays_stderr(alice):
    done = alice.ssh(*exec_words(PY, "-c", "import sys; print('out'); "
                                           "print('err', file=sys.stderr)"))
    assert (done.stdout, done.stderr) == ("out\n", "err\n")


# ---- the words reach the gateway unchanged ------------------------------------------------

HOSTILE = ["a b", "", " ", "it's", '"', "'", "\\", "\\'", "$HOME", "${HOME}", "`id`", "$(id)",
           "*", "?", "[a]", "~", "~root", ";", "&&", "|", ">", "<", "#", "# not a comment",
           "--", "-", "-oProxyCommand=touch pwned", "-G", "%h", "%%", "\t", "a\tb", "ü", "日本",
           "\u200b", "\u00a0", "é\u0301", "!", "{a,b}", "=", "a=b", "\U0001f600"]


def test_hostile_words_reach_the_pod_unchanged(alice, gateway, tmp_path):
    done = alice.ssh(*exec_words(*ARGV_JSON, *HOSTILE))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == HOSTILE
    assert gateway.sessions[-1].words == ["exec", POD, "--", *ARGV_JSON, *HOSTILE]
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_seeded_words_reach_the_pod_unchanged(alice):
    rng = random.Random(27)
    alphabet = [chr(c) for c in range(0x20, 0x7F)] + ["\t", "é", "ß", "\u2028", "\U0001f600",
                                                      "\u00a0", "\ufeff"]
    for _ in range(8):
        words = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
                 for _ in range(rng.randrange(1, 30))]
        done = alice.ssh(*exec_words(*ARGV_JSON, *words))
        assert done.returncode == 0, (words, done.stderr)
        assert json.loads(done.stdout) == words


@pytest.mark.parametrize("first", ["-oProxyCommand=touch {pwned}", "-G", "-V",
                                   "-oLocalCommand=touch {pwned}", "-N"])
def test_a_gateway_command_that_looks_like_an_ssh_option_stays_a_gateway_command(
        alice, gateway, tmp_path, first):
    pwned = tmp_path / "pwned"
    word = first.format(pwned=pwned)
    done = alice.ssh("--", word)
    assert done.returncode == 2, done.stderr  # the gateway's answer to an unknown verb
    assert "unknown command" in done.stderr and gateway.sessions[-1].words == [word]
    assert not pwned.exists()


@pytest.mark.parametrize("word", ["a\nb", "\x1b[31m", "a\rb", "\x7f"])
def test_control_characters_are_refused_before_ssh_starts(alice, gateway, word):
    before = len(gateway.sessions)
    done = alice.ssh(*exec_words("echo", word))
    assert done.returncode == 2
    assert "control character" in one_error(done.stderr)
    assert len(gateway.sessions) == before


def test_words_before_the_separator_are_refused(alice, gateway):
    before = len(gateway.sessions)
    done = alice.ssh("exec", POD)
    assert done.returncode == 2
    assert "the gateway command comes after `--`" in one_error(done.stderr)
    assert len(gateway.sessions) == before


# ---- terminals ------------------------------------------------------------------------------

def test_a_shell_on_a_terminal_gets_one(alice, gateway):
    code, seen = on_terminal(alice.argv("--", "shell", POD), {**alice.env, "TERM": "xterm"},
                             script=[(b"$ ", b"stty size; echo $((6*7)); exit 3\n")],
                             size=(33, 101))
    assert code == 3, seen
    assert "33 101" in seen and "42" in seen
    session = gateway.sessions[-1]
    assert session.term_type == "xterm" and session.words == ["shell", POD]


def test_a_command_from_a_terminal_gets_none_unless_asked(alice, gateway):
    probe = exec_words(PY, "-c", "import os; print(os.isatty(0), os.isatty(1))")
    code, seen = on_terminal(alice.argv(*probe), {**alice.env, "TERM": "xterm"})
    assert code == 0 and "False False" in seen, seen
    assert gateway.sessions[-1].term_type is None
    code, seen = on_terminal(alice.argv("-t", *probe), {**alice.env, "TERM": "xterm"})
    assert code == 0 and "True True" in seen, seen
    assert gateway.sessions[-1].term_type == "xterm"


def test_a_shell_without_a_terminal_is_the_gateways_refusal(alice):
    done = alice.ssh("--", "shell", POD)
    assert done.returncode == 2 and "shell needs a terminal" in done.stderr


# ---- port forwarding --------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect_when_listening(port: int, proc: subprocess.Popen, timeout: float = 20) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the forward never listened"
            time.sleep(0.05)


def exchange(sock: socket.socket, data: bytes) -> bytes:
    """What came back; b"" for a connection closed or reset unanswered."""
    got = b""
    with sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(4096):
                got += chunk
        except ConnectionResetError:
            pass
    return got


def test_a_forward_reaches_a_granted_port_and_not_another(alice, gateway, echo):
    granted, other = free_port(), free_port()
    refused_port = free_port()  # the pod's port that is not in the grant
    proc = subprocess.Popen(alice.argv("-L", f"{granted}:{POD}:{echo.port}", "-L",
                                       f"127.0.0.1:{other}:{POD}:{refused_port}"),
                            env=alice.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert exchange(connect_when_listening(granted, proc), b"hello") == b"echo:hello"
        assert exchange(connect_when_listening(other, proc), b"hello") == b""
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert (POD, echo.port, True) in gateway.forwards
    assert (POD, refused_port, False) in gateway.forwards
    assert f"forwarding localhost:{granted} to pod {POD} port {echo.port}" in err.decode()
    assert "administratively prohibited" in err.decode()
    assert out == b""


def test_a_local_port_in_use_ends_it_at_once(alice, gateway, echo):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        done = alice.ssh("-L", f"127.0.0.1:{port}:{POD}:{echo.port}", timeout=30)
    assert done.returncode == 255 and "Could not request local forwarding" in done.stderr


@pytest.mark.parametrize("spec", ["0:pod:80", "80:pod:65536", "80:Pod:80", "/tmp/s:pod:80",
                                  "a:b:c:d:e", "80:pod", "[nothost]:80:pod:80", "80::80",
                                  "80:pod:-1", "bad_bind:80:pod:80"])
def test_a_bad_forward_is_one_error_before_ssh(alice, gateway, spec):
    before = len(gateway.sessions)
    done = alice.ssh("-L", spec, "--", "exec", POD, "--", "true")
    assert done.returncode == 2, done.stderr
    assert one_error(done.stderr).startswith("cred-helper: error: -L ")
    assert len(gateway.sessions) == before


# ---- the gateway is pinned; no ssh_config is read --------------------------------------------

def test_a_gateway_with_another_host_key_is_never_trusted(tmp_path, gateway, ca):
    impostor = fresh().public_line
    person = Holder(tmp_path, gateway.port, impostor, ca)
    person.hold(grant())
    before = len(gateway.sessions)
    done = person.ssh(*exec_words("echo", "hi"))
    assert done.returncode == 255 and "Host key verification failed" in done.stderr
    known = person.ssh_dir / "prod-payments" / "known_hosts"
    assert known.read_text() == f"[127.0.0.1]:{gateway.port} {impostor}\n"
    assert len(gateway.sessions) == before and not (tmp_path / ".ssh" / "known_hosts").exists()


def with_ssh_configs(argv: list[str], text: str, scratch: Path) -> list[str]:
    """argv run where the person's ~/.ssh/config and the system's /etc/ssh/ssh_config say
    `text`: ssh finds its home by the password database, not $HOME, so both are laid over
    (overlayfs) in a mount namespace of this command's own; nothing outside it changes."""
    import pwd

    home = pwd.getpwuid(os.getuid()).pw_dir
    (scratch / "config").write_text(text)
    mounts = []
    for i, where in enumerate((home, "/etc/ssh")):
        upper, work = scratch / f"upper{i}", scratch / f"work{i}"
        upper.mkdir()
        work.mkdir()
        mounts.append(f"mount -t overlay overlay -o lowerdir={where},upperdir={upper},"
                      f"workdir={work} {where}")
    script = (" && ".join(mounts) + f" && mkdir -p {home}/.ssh && cp {scratch}/config "
              f"{home}/.ssh/config && cp {scratch}/config /etc/ssh/ssh_config && exec \"$@\"")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv]


def test_no_ssh_config_is_read(alice, gateway, tmp_path):
    pwned = tmp_path / "pwned"
    scratch = tmp_path / "overlay"
    scratch.mkdir()
    hostile = (f"Host *\n  ProxyCommand sh -c 'touch {pwned}; exec nc %h %p'\n"
               f"  LocalCommand touch {pwned}\n  PermitLocalCommand yes\n  ForwardAgent yes\n"
               "  RemoteCommand pods\n  User root\n  Port 1\n  ControlMaster auto\n"
               f"  ControlPath {tmp_path}/cm-%C\n  ControlPersist yes\n")
    probe = subprocess.run(with_ssh_configs(["ssh", "-G", "x"], hostile, scratch),
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace here: {probe.stderr.strip()[:200]}")
    assert "port 1\n" in probe.stdout  # ssh itself reads them there
    scratch = tmp_path / "overlay2"
    scratch.mkdir()
    done = subprocess.run(with_ssh_configs(alice.argv(*exec_words("echo", "hi")), hostile,
                                           scratch),
                          env=alice.env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout) == (0, "hi\n"), done.stderr
    assert gateway.sessions[-1].login == NAME and not pwned.exists()
    assert not list(tmp_path.glob("cm-*"))


def test_no_ssh_on_path_is_one_error(alice, tmp_path):
    done = alice.ssh(*exec_words("true"), env={"PATH": str(tmp_path / "nothing")})
    assert done.returncode == 1
    assert one_error(done.stderr) == "cred-helper: error: no ssh on PATH"
    assert "openssh-client" in done.stderr


# ---- the same request and files as ssh-config ----------------------------------------------

def test_ssh_and_ssh_config_and_plain_ssh_share_the_request(alice, gateway, tmp_path):
    done = alice.ssh(*exec_words("true"))
    assert done.returncode == 0, done.stderr
    conf = alice.ssh_dir / "prod-payments.conf"
    assert f"  User {NAME}\n" in conf.read_text()
    (tmp_path / "ssh_config").write_text(f"Include {alice.ssh_dir}/*.conf\n")
    plain = subprocess.run(["ssh", "-F", str(tmp_path / "ssh_config"), "-o", "BatchMode=yes",
                            "prod-payments", "exec", POD, "--", "echo", "plain"],
                           capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL, env=alice.env)
    assert (plain.returncode, plain.stdout) == (0, "plain\n"), plain.stderr
    printed = alice.cred_helper("ssh-config", "--cluster", "prod", "--reason", "INC-42")
    assert printed.returncode == 0, printed.stderr
    assert f"using access request {NAME} (made for: INC-42)" in printed.stderr
    assert printed.stdout == conf.read_text().split("\n", 1)[1]
    assert [s.login for s in gateway.sessions[-2:]] == [NAME, NAME]


def test_paths_ssh_would_misread_are_quoted(tmp_path, gateway, ca):
    odd = tmp_path / "a b%d'c#e\\f"
    person = Holder(tmp_path, gateway.port, gateway.host_key_line, ca, cache_dir=odd)
    person.hold(grant())
    done = person.ssh(*exec_words("echo", "hi"))
    assert (done.returncode, done.stdout) == (0, "hi\n"), done.stderr
    plain = subprocess.run(["ssh", "-F", str(person.ssh_dir / "prod-payments.conf"), "-o",
                            "BatchMode=yes",
                            "prod-payments", "exec", POD, "--", "echo", "plain"],
                           capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL, env=person.env)
    assert (plain.returncode, plain.stdout) == (0, "plain\n"), plain.stderr


def test_an_expired_certificate_is_asked_again_and_a_failure_is_one_error(tmp_path, gateway,
                                                                         ca):
    person = Holder(tmp_path, gateway.port, gateway.host_key_line, ca)
    person.hold(grant(), now=time.time() - 1800 - 30, seconds=1800)
    before = len(gateway.sessions)
    done = person.ssh(*exec_words("echo", "hi"))
    assert done.returncode == 1
    assert "127.0.0.1:9" in one_error(done.stderr)
    assert len(gateway.sessions) == before


def test_no_private_key_or_certificate_reaches_the_output(alice):
    done = alice.ssh(*exec_words("echo", "hi"))
    from tests.support.harness import assert_no_secrets

    assert_no_secrets(done.stdout + done.stderr, "CERT", "OPENSSH PRIVATE")
    assert os.stat(alice.ssh_dir / "prod-payments" / "id").st_mode & 0o077 == 0


# ---- a key on a token: ssh reaches it through the agent ------------------------------------

TOKEN_KEY = "pkcs11:token=ssh;object=ssh-key"
hsm = tokens.hsm  # a fresh SoftHSM2 token "ssh" (the fixture of the Host block's tests)


def test_a_token_key_without_an_agent_is_one_error_before_ssh(tmp_path, gateway, ca):
    from cryptography.hazmat.primitives.asymmetric import ec

    from cred_helper.sshaccess.sshkey import SshKey, public_line
    from tests.support.sshpeer import private_agent

    person = Holder(tmp_path, gateway.port, gateway.host_key_line, ca)
    key = SshKey(public_line(ec.generate_private_key(ec.SECP256R1()).public_key()))
    person.hold(grant(), key=key, ssh_key=TOKEN_KEY)
    before = len(gateway.sessions)
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
    assert len(gateway.sessions) == before


def test_a_token_key_in_the_agent_logs_in(tmp_path, hsm, gateway, ca):
    from tests.support.softhsm import MODULE, USER_PIN
    from tests.support.sshpeer import agent_with_token_keys

    uri = tokens._generate("ssh-key", "p256")
    person = Holder(tmp_path, gateway.port, gateway.host_key_line, ca)
    person.hold(grant(), key=tokens._public(uri), ssh_key=uri)
    with agent_with_token_keys(MODULE, USER_PIN, hsm.env, tmp_path) as agent:
        done = person.ssh("--ssh-key", uri, *exec_words("echo", "from", "the", "token"),
                          env=agent)
    assert (done.returncode, done.stdout) == (0, "from the token\n"), done.stderr
    assert gateway.sessions[-1].login == NAME
    assert not (person.ssh_dir / "prod-payments" / "id").exists()


def test_a_cached_certificate_loads_no_http_or_certificate_checking_code(alice):
    """The warm path's start is on every command (bench/ssh_client.py): no urllib3, no API
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


def test_a_certificate_near_its_end_is_announced(tmp_path, gateway, ca):
    person = Holder(tmp_path, gateway.port, gateway.host_key_line, ca)
    person.hold(grant(), now=time.time() - 1800 + 200, seconds=1800)
    done = person.ssh(*exec_words("echo", "hi"))
    assert (done.returncode, done.stdout) == (0, "hi\n"), done.stderr
    assert re.fullmatch(rf"cred-helper: access request {NAME} ends in [23]m\d\ds; the gateway "
                        r"ends the session then\n", done.stderr), done.stderr
