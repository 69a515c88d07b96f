"""The SSH user CA's certificates, read back by OpenSSH's own `ssh-keygen -L`: key id,
principal, validity and exactly the extensions the grant allows; CA key files refused as ssh
refuses them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from cred_helper import accessrequest as ar
from cred_helper.broker.sshsign import SshCa, load_key_file, sign
from cred_helper.errors import UsageError
from cred_helper.secretfile import UnsafeSecretFile, read_secret
from tests.support.needs import needs

from .accessbuild import key

pytestmark = needs(shutil.which("ssh-keygen") is not None, "openssh-client is missing")

NOW = 1_900_000_000.0
CA = SshCa(ed25519.Ed25519PrivateKey.generate(), "test")


def grant(shell=False, ports=()) -> ar.Grant:
    return ar.Grant("payments", ("api-*",), ("pods", "exec"), (("ps", "aux"),), shell, ports)


def keygen_l(tmp_path, line: str) -> str:
    path = tmp_path / "id-cert.pub"
    path.write_text(line + "\n")
    done = subprocess.run(["ssh-keygen", "-L", "-f", str(path)], capture_output=True,
                          text=True, env={"TZ": "UTC", "PATH": os.environ["PATH"]})
    assert done.returncode == 0, done.stderr
    return done.stdout


def section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip().startswith(title))
    first = lines[start].split(":", 1)[1].strip()
    found = [] if first in ("", "(none)") else [first]
    for ln in lines[start + 1:]:
        if not ln.startswith(" " * 16):
            break
        found.append(ln.strip())
    return found


@pytest.mark.parametrize("shell, ports, extensions", [
    (False, (), []),
    (True, (), ["permit-pty"]),
    (False, (8080,), ["permit-port-forwarding"]),
    (True, (8080, 9090), ["permit-port-forwarding", "permit-pty"]),
])
def test_ssh_keygen_shows_what_the_design_asks(tmp_path, shell, ports, extensions):
    issued = sign(CA, key().public_key(), "alice-20261207-100000-abc123", "alice@example.com",
                  grant(shell, ports), NOW, 1800, serial=42)
    shown = keygen_l(tmp_path, issued.line)
    assert "user certificate" in shown
    assert 'Key ID: "alice-20261207-100000-abc123:alice@example.com"' in shown
    assert section(shown, "Principals:") == ["alice-20261207-100000-abc123"]
    assert section(shown, "Critical Options:") == []
    assert section(shown, "Extensions:") == extensions
    for never in ("permit-agent-forwarding", "permit-X11-forwarding", "permit-user-rc"):
        assert never not in shown
    valid = re.search(r"Valid: from (\S+) to (\S+)", shown).groups()
    assert valid == (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NOW - 60)),
                     time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NOW + 1800)))
    assert (issued.valid_after, issued.valid_before) == (NOW - 60, NOW + 1800)
    assert sorted(issued.extensions) == extensions


@pytest.mark.parametrize("seconds", [599, 86401, 0, -5])
def test_a_lifetime_out_of_range_is_never_signed(seconds):
    with pytest.raises(ValueError):
        sign(CA, key().public_key(), "n", "u", grant(), NOW, seconds)


@pytest.mark.parametrize("ca_key", [ec.generate_private_key(ec.SECP256R1()),
                                    rsa.generate_private_key(65537, 3072)],
                         ids=["p256", "rsa3072"])
def test_other_ca_kinds_sign_for_p256_keys(tmp_path, ca_key):
    issued = sign(SshCa(ca_key, "t"), key("p256").public_key(), "n-1", "u", grant(), NOW, 600)
    assert "ecdsa-sha2-nistp256-cert-v01@openssh.com user certificate" in \
        keygen_l(tmp_path, issued.line)


def _write(tmp_path, data: bytes, mode=0o600):
    path = tmp_path / "ca"
    path.write_bytes(data)
    path.chmod(mode)
    return str(path)


def test_ca_key_files(tmp_path):
    ca = ed25519.Ed25519PrivateKey.generate()
    openssh = ca.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    pkcs8 = ca.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    for data in (openssh, pkcs8):
        loaded = load_key_file(_write(tmp_path, data), read_secret)
        assert loaded.public_line == SshCa(ca).public_line
        assert loaded.fingerprint.startswith("SHA256:")
    with pytest.raises(UnsafeSecretFile, match="open to group or others"):
        load_key_file(_write(tmp_path, openssh, 0o644), read_secret)
    encrypted = ca.private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                 BestAvailableEncryption(b"pw"))
    with pytest.raises(UsageError, match="encrypted"):
        load_key_file(_write(tmp_path, encrypted), read_secret)
    with pytest.raises(UsageError, match="not an OpenSSH or PEM private key"):
        load_key_file(_write(tmp_path, b"hello"), read_secret)
    small = rsa.generate_private_key(65537, 2048).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    with pytest.raises(UsageError, match="at least 3072"):
        load_key_file(_write(tmp_path, small), read_secret)


def test_the_fingerprint_is_ssh_keygens(tmp_path):
    path = tmp_path / "ca.pub"
    path.write_text(CA.public_line + "\n")
    shown = subprocess.run(["ssh-keygen", "-l", "-f", str(path)], capture_output=True,
                           text=True).stdout
    assert CA.fingerprint in shown


def _stat(uid, gid, mode):
    import stat as st

    return os.stat_result((st.S_IFREG | mode, 0, 0, 1, uid, gid, 0, 0, 0, 0))


@pytest.mark.parametrize("uid, gid, mode, readable", [
    (0, 65532, 0o440, True),      # Secret volume, defaultMode 0400, fsGroup 65532
    (0, 65532, 0o400, True),
    (0, 65532, 0o444, False),     # others may read
    (0, 65532, 0o460, False),     # the group may write
    (0, 1000, 0o440, False),      # another group
    (1000, 65532, 0o440, False),  # not root's: then it is a user's file, under the usual rule
])
def test_a_secret_volumes_file_for_this_pod(uid, gid, mode, readable):
    from cred_helper.broker.sshsign import secret_volume_file

    assert secret_volume_file(_stat(uid, gid, mode), {65532}) is readable
