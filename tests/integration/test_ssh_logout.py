"""`logout` and access requests' entries: the files ssh reads for a Host block (the request's
private key, its certificate, known_hosts, the block) go with their entry, also when the entry
was damaged and discarded, since plain ssh through the block would still log in with them
until the certificate ends; `--all` leaves nothing. (The warm files: test_ssh_warm.py; status
and logout against the real broker: tests/realcluster/test_access_requests.py.)"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from cred_helper import accessrequest as ar
from cred_helper.broker.sshsign import SshCa
from cred_helper.sshaccess.sshkey import fresh
from tests.support.sshsession import Holder

GRANT = ar.Grant("payments", (), ("pods", "exec"), (("echo", "**"),), False, ())


@pytest.fixture
def alice(tmp_path) -> Holder:
    """Alice after `ssh-config`: her signed request cached, the Host block's files written."""
    person = Holder(tmp_path, 2222, fresh().public_line,
                    SshCa(ed25519.Ed25519PrivateKey.generate(), "test"))
    person.entry = person.hold(GRANT)  # type: ignore[attr-defined]
    done = person.cred_helper("ssh-config", "--cluster", "prod", "--reason", "INC-42")
    assert done.returncode == 0, done.stderr
    assert (person.ssh_dir / "prod-payments" / "id").exists()
    return person


def damage(person: Holder) -> None:
    (person.cache_dir / f"{person.entry.key}.ssh").write_bytes(b"not an entry")  # type: ignore[attr-defined]


def left(person: Holder) -> list[str]:
    return sorted(str(p.relative_to(person.cache_dir)) for p in person.cache_dir.rglob("*"))


def test_logout_all_leaves_nothing_even_of_a_damaged_entry(alice):
    damage(alice)
    done = alice.cred_helper("logout", "--all")
    assert done.returncode == 0, done.stderr
    assert left(alice) == []


def test_logout_of_the_profile_removes_a_damaged_entrys_key_certificate_and_block(alice):
    damage(alice)
    done = alice.cred_helper("logout", "--cluster", "prod")
    assert done.returncode == 0, done.stderr
    assert "removed 0 credentials, 0 refresh tokens, 5 other files" in done.stderr
    assert [p for p in left(alice) if not p.endswith(".lock")] == ["ssh"]


def test_another_profiles_logout_keeps_a_block_whose_entry_is_there(alice):
    config = alice.home / "config" / "cred-helper" / "config.toml"
    config.write_text(config.read_text() + '\n[clusters.dev]\nissuer = "csr"\n')
    before = left(alice)
    done = alice.cred_helper("logout", "--cluster", "dev")
    assert done.returncode == 0, done.stderr
    assert left(alice) == before
