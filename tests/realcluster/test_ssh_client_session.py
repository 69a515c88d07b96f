"""What a session through `cred-helper ssh` does at the real gateway: OpenSSH 9.2's `ssh`, which
cred-helper becomes, against `cred-helper gateway run` on the real kube-apiserver with the kubelet
stand-in (the session's gateway world, tests/realcluster/conftest.py), its request's certificate
already in the person's cache (the warm path). Output, exit codes, stdin and stderr; the words
of a command arriving in the pod unchanged; terminals; `-L`; the pinned gateway; no ssh_config
read; the same request for plain ssh; odd cache paths; a key on a token through the agent.

The broker's part (approving and signing) is played by test support here, as in the gateway's
own tests; tests/realcluster/test_ssh_client.py runs the whole chain with the real broker.
What cred-helper refuses before ssh starts is in tests/integration/test_ssh_client.py."""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cred_helper import accessrequest as ar
from cred_helper.sshaccess.sshkey import SshKey, fresh
from tests.integration import test_ssh_login as tokens
from tests.support import gateway as gw
from tests.support.controlplane import free_port
from tests.support.harness import assert_no_secrets, on_terminal
from tests.support.needs import missing
from tests.support.sshsession import Holder

pytestmark = pytest.mark.realcluster

POD = "api-1"
PY = sys.executable  # the stand-in runs exec commands as local processes
ARGV_JSON = [PY, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))"]


@pytest.fixture(scope="module")
def world(gateway_world):
    return gateway_world


@pytest.fixture(scope="module")
def echo():
    """A TCP service on 127.0.0.1, which the stand-in forwards a pod's port to: answers each
    connection with `echo:` and what it read."""
    def handle(conn) -> None:
        conn.wfile.write(b"echo:" + conn.connection.recv(4096))

    from tests.support.tcp import serve

    server = serve(handle)
    yield server.server_address[1]
    server.shutdown()


def everything(world, ports: tuple[int, ...] = ()) -> dict:
    """What the tests run (the gateway holds to it)."""
    return gw.grant(world.payments, pods=(POD,), exec_patterns=(
        (PY, "**"), ("echo", "**"), ("true",)), shell=True, ports=ports)


def holder(world, home: Path, grant_doc: dict, *, key: gw.Key | None = None,
           lifetime: float = 1800, ssh_key: str | None = None, host_key: str = "",
           cache_dir: Path | None = None, held: float = 1800) -> Holder:
    """Alice with a request approved for `grant_doc` (its certificate valid for `lifetime`)
    in her cache, as `cred-helper ssh` keeps it, ending `held` seconds after she asked."""
    if key is None:
        name, key = world.request(grant_doc, lifetime=lifetime)
    else:  # a key of her own (a token's): its request made and approved here
        name = f"ar-{os.urandom(4).hex()}"
        gw.create_request(world.plane, world.alice, name, key, grant_doc["namespace"])
        gw.approve(world.plane, world.ca, name, key, grant_doc, lifetime=lifetime)
    person = Holder(home, world.gateway.port, host_key or world.gateway.host_public, world.ca,
                    cache_dir=cache_dir)
    private = key.path.read_bytes() if key.path.exists() else b""
    person.hold(ar.parse_grant(grant_doc), key=SshKey(key.public_line, private), name=name,
                certificate=key.cert_path.read_text().strip(), ssh_key=ssh_key,
                now=time.time() - 1800 + held, seconds=1800)
    person.request = name  # type: ignore[attr-defined]
    return person


@pytest.fixture
def alice(world, tmp_path, echo) -> Holder:
    return holder(world, tmp_path, everything(world, ports=(echo,)))


def exec_words(*argv: str) -> list[str]:
    return ["--", "exec", POD, "--", *argv]


def trail_of(world, person: Holder, **match) -> dict:
    """The gateway's newest trail line of the person's request with these fields."""
    return world.gateway.wait_trail(lambda t: t.get("request") == person.request and all(
        t.get(k) == v for k, v in match.items()))


# ---- a command: output, exit code, stdin -------------------------------------------------

def test_a_command_prints_and_exits_0(world, alice):
    done = alice.ssh(*exec_words("echo", "hi"))
    assert (done.returncode, done.stdout, done.stderr) == (0, "hi\n", "")
    assert trail_of(world, alice, verb="exec")["argv"] == ["echo", "hi"]


@pytest.mark.parametrize("code", [3, 1, 126, 255])
def test_the_remote_exit_code_is_the_exit_code(alice, code):
    done = alice.ssh(*exec_words(PY, "-c", f"import sys; sys.exit({code})"))
    assert done.returncode == code, done.stderr


def test_stdin_reaches_the_command_and_stdout_comes_back_byte_for_byte(alice):
    data = random.Random(7).randbytes(3 << 20)
    done = alice.ssh(*exec_words(PY, "-c", "import sys; data = sys.stdin.buffer.read(); "
                                           "sys.stdout.buffer.write(data[::-1])"), input=data)
    assert done.returncode == 0, done.stderr
    assert done.stdout == data[::-1]


def test_stderr_stays_stderr(alice):
    done = alice.ssh(*exec_words(PY, "-c", "import sys; print('out'); "
                                           "print('err', file=sys.stderr)"))
    assert (done.stdout, done.stderr) == ("out\n", "err\n")


# ---- the words reach the pod unchanged -------------------------------------------------------

HOSTILE = ["a b", "", " ", "it's", '"', "'", "\\", "\\'", "$HOME", "${HOME}", "`id`", "$(id)",
           "*", "?", "[a]", "~", "~root", ";", "&&", "|", ">", "<", "#", "# not a comment",
           "--", "-", "-oProxyCommand=touch pwned", "-G", "%h", "%%", "\t", "a\tb", "ü", "日本",
           "\u200b", "\u00a0", "é\u0301", "!", "{a,b}", "=", "a=b", "\U0001f600"]


def test_hostile_words_reach_the_pod_unchanged(world, alice, tmp_path):
    done = alice.ssh(*exec_words(*ARGV_JSON, *HOSTILE))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == HOSTILE
    assert trail_of(world, alice, verb="exec")["argv"] == [*ARGV_JSON, *HOSTILE]
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    assert not (world.pod_dirs[POD] / "pwned").exists()


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
        world, alice, tmp_path, first):
    pwned = tmp_path / "pwned"
    word = first.format(pwned=pwned)
    done = alice.ssh("--", word)
    assert done.returncode == 2, done.stderr  # the gateway's answer to an unknown verb
    assert f"unknown command {word[:20]!r}"[:-1] in done.stderr
    assert trail_of(world, alice, line=shlex.join([word]))["decision"] == "refused"
    assert not pwned.exists()


# ---- terminals ------------------------------------------------------------------------------

def test_a_shell_on_a_terminal_gets_one(world, alice):
    code, seen = on_terminal(alice.argv("--", "shell", POD), {**alice.env, "TERM": "xterm"},
                             script=[(b"", b"stty size; echo $((6*7)); exit 3\n")],
                             size=(33, 101))
    assert code == 3, seen
    assert "33 101" in seen and "42" in seen
    assert trail_of(world, alice, verb="shell")["exit_code"] == 3


def test_a_command_from_a_terminal_gets_none_unless_asked(alice):
    probe = exec_words(PY, "-c", "import os; print(os.isatty(0), os.isatty(1))")
    code, seen = on_terminal(alice.argv(*probe), {**alice.env, "TERM": "xterm"})
    assert code == 0 and "False False" in seen, seen
    code, seen = on_terminal(alice.argv("-t", *probe), {**alice.env, "TERM": "xterm"})
    assert code == 0 and "True True" in seen, seen


def test_a_shell_without_a_terminal_is_the_gateways_refusal(alice):
    done = alice.ssh("--", "shell", POD)
    assert done.returncode == 2 and "shell needs a terminal" in done.stderr


# ---- port forwarding --------------------------------------------------------------------------

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


def test_a_forward_reaches_a_granted_port_and_not_another(world, alice, echo):
    granted, other = free_port(), free_port()
    refused_port = free_port()  # the pod's port that is not in the grant
    proc = subprocess.Popen(alice.argv("-L", f"{granted}:{POD}:{echo}", "-L",
                                       f"127.0.0.1:{other}:{POD}:{refused_port}"),
                            env=alice.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert exchange(connect_when_listening(granted, proc), b"hello") == b"echo:hello"
        assert exchange(connect_when_listening(other, proc), b"hello") == b""
    finally:
        # Not SIGTERM: OpenSSH 9.2's client loop can miss a signal that comes while it is busy
        # (a poll() race; seen about once in 20 here), and then waits minutes.
        proc.kill()
        out, err = proc.communicate(timeout=20)
    assert trail_of(world, alice, verb="forward", port=echo, decision="allowed")
    refused = trail_of(world, alice, verb="forward", port=refused_port)
    assert refused["decision"] == "refused"
    assert f"forwarding localhost:{granted} to pod {POD} port {echo}" in err.decode()
    assert "administratively prohibited" in err.decode()
    assert out == b""


def test_a_local_port_in_use_ends_it_at_once(alice, echo):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        done = alice.ssh("-L", f"127.0.0.1:{port}:{POD}:{echo}", timeout=30)
    assert done.returncode == 255 and "Could not request local forwarding" in done.stderr


# ---- the gateway is pinned; no ssh_config is read --------------------------------------------

def test_a_gateway_with_another_host_key_is_never_trusted(world, tmp_path):
    impostor = fresh().public_line
    person = holder(world, tmp_path, everything(world), host_key=impostor)
    done = person.ssh(*exec_words("echo", "hi"))
    assert done.returncode == 255 and "Host key verification failed" in done.stderr
    known = person.ssh_dir / "prod-payments" / "known_hosts"
    assert known.read_text() == f"[127.0.0.1]:{world.gateway.port} {impostor}\n"
    assert not (tmp_path / ".ssh" / "known_hosts").exists()
    time.sleep(0.5)
    assert not [t for t in world.gateway.trail() if t.get("request") == person.request]


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


def test_no_ssh_config_is_read(world, alice, tmp_path):
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
        missing(f"no mount namespace here: {probe.stderr.strip()[:200]}")
    assert "port 1\n" in probe.stdout  # ssh itself reads them there
    scratch = tmp_path / "overlay2"
    scratch.mkdir()
    done = subprocess.run(with_ssh_configs(alice.argv(*exec_words("echo", "hi")), hostile,
                                           scratch),
                          env=alice.env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout) == (0, "hi\n"), done.stderr
    assert trail_of(world, alice, verb="exec")["argv"] == ["echo", "hi"]
    assert not pwned.exists() and not list(tmp_path.glob("cm-*"))


# ---- the same request and files as ssh-config ----------------------------------------------

def test_ssh_and_ssh_config_and_plain_ssh_share_the_request(world, alice, tmp_path):
    done = alice.ssh(*exec_words("true"))
    assert done.returncode == 0, done.stderr
    conf = alice.ssh_dir / "prod-payments.conf"
    assert f"  User {alice.request}\n" in conf.read_text()
    (tmp_path / "ssh_config").write_text(f"Include {alice.ssh_dir}/*.conf\n")
    plain = subprocess.run(["ssh", "-F", str(tmp_path / "ssh_config"), "-o", "BatchMode=yes",
                            "prod-payments", "exec", POD, "--", "echo", "plain"],
                           capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL, env=alice.env)
    assert (plain.returncode, plain.stdout) == (0, "plain\n"), plain.stderr
    assert trail_of(world, alice, argv=["echo", "plain"])["decision"] == "allowed"
    printed = alice.cred_helper("ssh-config", "--cluster", "prod", "--reason", "INC-42")
    assert printed.returncode == 0, printed.stderr
    assert f"using access request {alice.request} (made for: INC-42)" in printed.stderr
    assert printed.stdout == conf.read_text().split("\n", 1)[1]


def test_paths_ssh_would_misread_are_quoted(world, tmp_path):
    odd = tmp_path / "a b%d'c#e\\f"
    person = holder(world, tmp_path, everything(world), cache_dir=odd)
    done = person.ssh(*exec_words("echo", "hi"))
    assert (done.returncode, done.stdout) == (0, "hi\n"), done.stderr
    plain = subprocess.run(["ssh", "-F", str(person.ssh_dir / "prod-payments.conf"), "-o",
                            "BatchMode=yes", "prod-payments", "exec", POD, "--", "echo",
                            "plain"],
                           capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL, env=person.env)
    assert (plain.returncode, plain.stdout) == (0, "plain\n"), plain.stderr


def test_no_private_key_or_certificate_reaches_the_output(alice):
    done = alice.ssh(*exec_words("echo", "hi"))
    assert done.returncode == 0, done.stderr
    assert_no_secrets(done.stdout + done.stderr, "CERT", "OPENSSH PRIVATE")
    assert os.stat(alice.ssh_dir / "prod-payments" / "id").st_mode & 0o077 == 0


def test_a_certificate_near_its_end_is_announced(world, tmp_path):
    person = holder(world, tmp_path, everything(world), lifetime=200, held=200)
    done = person.ssh(*exec_words("echo", "hi"))
    assert (done.returncode, done.stdout) == (0, "hi\n"), done.stderr
    assert re.fullmatch(rf"cred-helper: access request {person.request} ends in [23]m\d\ds; "
                        r"the gateway ends the session then\n", done.stderr), done.stderr


# ---- a key on a token: ssh reaches it through the agent ------------------------------------

hsm = tokens.hsm  # a fresh SoftHSM2 token "ssh" (the fixture of the Host block's tests)


def test_a_token_key_in_the_agent_logs_in(world, tmp_path, hsm):
    from tests.support.softhsm import MODULE, USER_PIN
    from tests.support.sshpeer import agent_with_token_keys

    uri = tokens._generate("ssh-key", "p256")
    on_token = gw.Key(tmp_path / "token-key", tokens._public(uri).public_line)
    person = holder(world, tmp_path, everything(world), key=on_token, ssh_key=uri)
    with agent_with_token_keys(MODULE, USER_PIN, hsm.env, tmp_path) as agent:
        done = person.ssh("--ssh-key", uri, *exec_words("echo", "from", "the", "token"),
                          env=agent)
    assert (done.returncode, done.stdout) == (0, "from the token\n"), done.stderr
    assert trail_of(world, person, verb="exec")["argv"] == ["echo", "from", "the", "token"]
    assert not (person.ssh_dir / "prod-payments" / "id").exists()
