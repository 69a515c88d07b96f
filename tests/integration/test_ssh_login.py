"""The certificate and Host block of an access request, used by OpenSSH's own `ssh` (9.2) to log in
to an SSH server that trusts the SSH user CA (asyncssh, standing in for the gateway): a fresh
key from a file; a P-256 key on a token through ssh-agent (`ssh-add -s`, the way OpenSSH pairs a
certificate with a token key); a CA key on a token. And what ssh refuses: an expired
certificate, another CA's, another principal's, a gateway whose host key is not the pinned one
(no trust on first use: known_hosts is left as it was)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from cred_helper import accessrequest as ar
from cred_helper.broker.sshsign import SshCa, open_ca, sign
from cred_helper.keys import pkcs11 as tokens
from cred_helper.keys.manage import generate
from cred_helper.sshaccess.hostblock import host_block, known_hosts
from cred_helper.sshaccess.settings import Gateway
from cred_helper.sshaccess.sshkey import SshKey, fresh, on_token
from cred_helper.sshaccess.store import SshStore
from tests.support.needs import missing, needs
from tests.support.softhsm import MODULE, USER_PIN, SoftHSM, available
from tests.support.sshpeer import SshPeer, agent_with_token_keys

pytestmark = needs(shutil.which("ssh") is not None and shutil.which("ssh-agent") is not None,
                   "openssh-client is missing")

NAME, USER = "alice-20261207-100000-abc123", "alice@example.com"
GRANT = ar.Grant("payments", (), ("pods",), (), True, ())
CA = SshCa(ed25519.Ed25519PrivateKey.generate(), "test")


def write_block(tmp_path: Path, peer: SshPeer, cert: str, key: SshKey, user: str = NAME,
                host_keys: tuple[str, ...] | None = None) -> Path:
    """The files `cred-helper ssh-config` writes, for this certificate and key."""
    private = key.private_openssh or None
    store = SshStore(str(tmp_path / "cache"), print)
    paths = store.paths("prod-payments")
    gateway = Gateway("127.0.0.1", peer.port)
    block = host_block("prod-payments", gateway, user, paths.key if private else paths.public,
                       paths.certificate, paths.known_hosts, agent=private is None)
    files = {paths.certificate: cert.encode() + b"\n", paths.conf: block.encode(),
             paths.public: key.public_line.encode() + b"\n",
             paths.known_hosts: known_hosts(gateway, host_keys or (peer.host_key_line,),
                                            "").encode()}
    if private:
        files[paths.key] = private
    store.put_files(paths, files)
    return Path(paths.conf)


def ssh(conf: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh", "-F", str(conf), "-o", "BatchMode=yes", "prod-payments"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env={"PATH": os.environ["PATH"], "HOME": str(conf.parent),
                               **(env or {})})


def cert_for(public_line: str, ca: SshCa = CA, name: str = NAME, now: float | None = None,
             seconds: int = 600) -> str:
    import time

    return sign(ca, load_ssh_public_key(public_line.encode()), name, USER, GRANT,
                time.time() if now is None else now, seconds).line


@pytest.fixture
def peer():
    with SshPeer(CA.public_line) as server:
        yield server


def test_ssh_logs_in_with_the_request_as_its_login_name(tmp_path, peer):
    key = fresh()
    done = ssh(write_block(tmp_path, peer, cert_for(key.public_line), key))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"logged in as {NAME}" and peer.logins == [NAME]


@pytest.mark.parametrize("why", ["expired", "other-ca", "other-principal"])
def test_ssh_is_refused_a_certificate_that_is_not_this_requests(tmp_path, peer, why):
    import time

    key = fresh()
    cert = {"expired": lambda: cert_for(key.public_line, now=time.time() - 3600),
            "other-ca": lambda: cert_for(key.public_line,
                                         SshCa(ed25519.Ed25519PrivateKey.generate())),
            "other-principal": lambda: cert_for(key.public_line, name="bob-1")}[why]()
    done = ssh(write_block(tmp_path, peer, cert, key))
    assert done.returncode == 255 and "Permission denied" in done.stderr
    assert peer.logins == []


def test_a_gateway_with_another_host_key_is_never_trusted(tmp_path, peer):
    key = fresh()
    impostor = fresh().public_line
    conf = write_block(tmp_path, peer, cert_for(key.public_line), key,
                       host_keys=(impostor,))
    known = (conf.parent / "prod-payments" / "known_hosts").read_text()
    done = ssh(conf)
    assert done.returncode == 255 and "Host key verification failed" in done.stderr
    assert (conf.parent / "prod-payments" / "known_hosts").read_text() == known
    assert peer.logins == []


# ---- keys on a token --------------------------------------------------------------------------

@pytest.fixture
def hsm(tmp_path):
    if not available():
        missing("softhsm2 is missing (scripts/setup installs it)")
    box = SoftHSM(tmp_path / "hsm")
    box.new_token("ssh")
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(box.conf)  # read when the module (re)initialises
    tokens.load(MODULE).reinitialize()
    yield box
    if old is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = old


def _generate(label: str, kind: str) -> str:
    with tokens.open_session("pkcs11:token=ssh", MODULE, "env:PIN", True, False,
                             {"PIN": USER_PIN}, input, print, rw=True) as (_, info, _, s):
        uri, _ = generate(s, info, label, None, kind)
    return uri


def _public(uri: str):
    return on_token(uri, MODULE, "env:PIN", {"PIN": USER_PIN}, input, print)


def test_a_p256_token_key_logs_in_through_the_agent(tmp_path, hsm):
    uri = _generate("ssh-key", "p256")
    key = _public(uri)
    assert key.on_token and key.public_line.startswith("ecdsa-sha2-nistp256 ")
    with agent_with_token_keys(MODULE, USER_PIN, hsm.env, tmp_path) as agent, \
            SshPeer(CA.public_line) as server:
        done = ssh(write_block(tmp_path, server, cert_for(key.public_line), key), env=agent)
        assert done.returncode == 0, done.stderr
        assert server.logins == [NAME]


def test_an_ed25519_token_key_is_refused_with_what_works(hsm):
    uri = _generate("ed-key", "ed25519")
    from cred_helper.errors import UsageError

    with pytest.raises(UsageError, match="not ECDSA P-256") as caught:
        _public(uri)
    assert "p256" in caught.value.hint


@pytest.mark.parametrize("kind", ["ed25519", "p256"])
def test_a_ca_key_on_a_token_signs_certificates_ssh_accepts(tmp_path, hsm, kind):
    uri = _generate(f"ca-{kind}", kind)
    with open_ca(uri, MODULE, "env:PIN", {"PIN": USER_PIN}, print) as ca:
        key = fresh()
        cert = cert_for(key.public_line, ca=ca)
        with SshPeer(ca.public_line) as server:
            done = ssh(write_block(tmp_path, server, cert, key))
            assert done.returncode == 0, done.stderr
    shown = subprocess.run(["ssh-keygen", "-L", "-f", "/dev/stdin"], input=cert + "\n",
                           capture_output=True, text=True).stdout
    assert f"Signing CA: {'ED25519' if kind == 'ed25519' else 'ECDSA'} {ca.fingerprint}" in shown
