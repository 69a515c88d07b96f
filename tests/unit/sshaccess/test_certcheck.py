"""The client keeps a certificate only if it is the one it asked for: from the configured CA,
for its key, naming its request, valid now and no longer than asked."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import ssh as sshcert

from cred_helper import accessrequest as ar
from cred_helper.broker.sshsign import SshCa, sign
from cred_helper.errors import BadCertificate
from cred_helper.sshaccess.certcheck import check
from cred_helper.sshaccess.sshkey import fresh, public_line

NOW = 1_900_000_000.0
CA = SshCa(ed25519.Ed25519PrivateKey.generate())
OTHER_CA = SshCa(ed25519.Ed25519PrivateKey.generate())
KEY = fresh()
NAME, USER = "alice-20261207-100000-abc123", "alice@example.com"
GRANT = ar.Grant("payments", (), ("pods",), (), False, ())


def signed(ca=CA, key_line=None, name=NAME, user=USER, now=NOW, seconds=1800) -> str:
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    public = load_ssh_public_key((key_line or KEY.public_line).encode())
    return sign(ca, public, name, user, GRANT, now, seconds).line


def kept(line: str, now: float = NOW + 5, seconds: int = 1800):
    return check(line, name=NAME, username=USER, public_line=KEY.public_line,
                 user_ca=CA.public_line, seconds=seconds, now=now)


def test_the_certificate_asked_for_is_kept():
    got = kept(signed())
    assert (got.valid_after, got.valid_before) == (NOW - 60, NOW + 1800)


def _raw(kind=sshcert.SSHCertificateType.USER, principals=(NAME,)) -> str:
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    return (sshcert.SSHCertificateBuilder()
            .public_key(load_ssh_public_key(KEY.public_line.encode()))
            .serial(1).type(kind).key_id(f"{NAME}:{USER}".encode())
            .valid_principals([p.encode() for p in principals]).valid_after(int(NOW) - 60)
            .valid_before(int(NOW) + 1800)).sign(CA.key).public_bytes().decode()


@pytest.mark.parametrize("line, why", [
    (signed(ca=OTHER_CA), "signed by another CA"),
    (signed(key_line=fresh().public_line), "for another key"),
    (signed(name="bob-1"), "other principals"),
    (signed(user="bob@example.com"), "another key id"),
    (signed(now=NOW - 3600), "already expired"),
    (signed(now=NOW + 3600), "not valid yet"),
    (signed(seconds=3600), "lives longer than the 1800 s asked for"),
    (KEY.public_line, "a plain key"),
    ("ssh-ed25519-cert-v01@openssh.com AAAAnotacert", "not an OpenSSH certificate"),
    ("", "not an OpenSSH certificate"),
    (_raw(kind=sshcert.SSHCertificateType.HOST), "not a user certificate"),
    (_raw(principals=(NAME, "root")), "other principals"),
])
def test_what_is_refused(line, why):
    with pytest.raises(BadCertificate, match=why):
        kept(line)


def test_a_tampered_certificate_does_not_verify():
    import base64

    line = signed()
    kind, blob = line.split()[:2]
    raw = bytearray(base64.b64decode(blob))
    raw[-70] ^= 1  # inside the signed body, near the signature
    with pytest.raises(BadCertificate):
        kept(f"{kind} {base64.b64encode(bytes(raw)).decode()}")


def test_a_p256_key_and_ca():
    key = ec.generate_private_key(ec.SECP256R1())
    ca = SshCa(ec.generate_private_key(ec.SECP256R1()))
    line = public_line(key.public_key())
    cert = sign(ca, key.public_key(), NAME, USER, GRANT, NOW, 600).line
    assert check(cert, name=NAME, username=USER, public_line=line, user_ca=ca.public_line,
                 seconds=600, now=NOW).valid_before == NOW + 600
