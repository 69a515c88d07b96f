"""Each check an issued certificate must pass, on certificates built with the test CA."""

import datetime
import warnings

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from cred_helper.errors import BadCertificate
from cred_helper.issuers.certcheck import SKEW, Trust, Wanted, check_certificate, kept_until
from cred_helper.keys import software
from cred_helper.x509names import subject
from tests.support.pki import CA, pem

NOW = datetime.datetime.now(datetime.timezone.utc)
T = NOW.timestamp()
MIN = datetime.timedelta(minutes=1)
WANTED = Wanted("alice", ("oncall", "sre"))


def _name(cn="alice", groups=("oncall", "sre"), extra=()):
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    return x509.Name(attrs + list(extra))


def _cert(ca, key, start=NOW - 5 * MIN, end=NOW + 30 * MIN, client=True, name=None):
    return pem(ca.issue(name or _name(), key.public_key(), start, end, client=client)).decode()


@pytest.fixture
def ca():
    return CA()


@pytest.fixture
def key():
    return software.generate("ed25519")


def _trust(ca, signer_ca=False):
    return Trust(ca.cert_pem, "the cluster CA" if not signer_ca else "--signer-ca f", signer_ca)


def test_a_good_certificate_passes(ca, key):
    cert = check_certificate(_cert(ca, key), key, WANTED, _trust(ca), T)
    assert cert.subject == _name()
    p256 = software.generate("p256")
    assert check_certificate(_cert(ca, p256), p256, WANTED, _trust(ca), T)


def test_another_key_is_refused(ca, key):
    with pytest.raises(BadCertificate, match="another key"):
        check_certificate(_cert(ca, key), software.generate("ed25519"), WANTED, _trust(ca), T)


def test_no_client_auth_is_refused(ca, key):
    with pytest.raises(BadCertificate, match="client authentication"):
        check_certificate(_cert(ca, key, client=False), key, WANTED, _trust(ca), T)


def test_validity_with_five_minutes_skew(ca, key):
    soon = _cert(ca, key, start=NOW + datetime.timedelta(seconds=SKEW - 10))
    assert check_certificate(soon, key, WANTED, _trust(ca), T)
    later = _cert(ca, key, start=NOW + datetime.timedelta(seconds=SKEW + 60))
    with pytest.raises(BadCertificate, match="not valid yet"):
        check_certificate(later, key, WANTED, _trust(ca), T)
    expired = _cert(ca, key, start=NOW - 120 * MIN, end=NOW - 60 * MIN)
    with pytest.raises(BadCertificate, match="expired"):
        check_certificate(expired, key, WANTED, _trust(ca), T)


def test_another_ca_is_refused_with_a_signer_ca_hint(ca, key):
    impostor = CA()  # the same name, another key: only the signature tells them apart
    forged = _cert(impostor, key)
    with pytest.raises(BadCertificate, match="does not chain to the cluster CA") as err:
        check_certificate(forged, key, WANTED, _trust(ca), T)
    assert "pass --signer-ca" in err.value.hint
    with pytest.raises(BadCertificate, match="does not chain to --signer-ca") as err:
        check_certificate(forged, key, WANTED, _trust(ca, signer_ca=True), T)
    assert "pass --signer-ca" not in err.value.hint


def test_a_signer_ca_apart_from_the_serving_ca(ca, key):
    signer = CA("client-signer")
    bundle = Trust(ca.cert_pem + signer.cert_pem, "--signer-ca f", True)
    assert check_certificate(_cert(signer, key), key, WANTED, bundle, T)


def test_system_trust_skips_only_the_chain(ca, key):
    unchecked = Trust(b"", "the cluster CA", False)
    assert check_certificate(_cert(CA(), key), key, WANTED, unchecked, T)
    with pytest.raises(BadCertificate, match="another key"):
        check_certificate(_cert(CA(), key), software.generate("ed25519"), WANTED, unchecked, T)


@pytest.mark.parametrize("name, message", [
    (_name(groups=("oncall", "sre", "system:masters")), "adds groups.*system:masters"),
    (_name(groups=("oncall",)), "lacks requested groups: sre"),
    (_name(cn="mallory"), "names mallory, not the requested alice"),
    (_name(extra=[x509.NameAttribute(NameOID.COMMON_NAME, "root")]), "names alice, root"),
    (_name(extra=[x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "x")]),
     "attributes that were not requested"),
])
def test_the_subject_must_be_exactly_the_requested_one(ca, key, name, message):
    with pytest.raises(BadCertificate, match=message):
        check_certificate(_cert(ca, key, name=name), key, WANTED, _trust(ca), T)


LONG = "oidc:https://login.example.com/tenant#" + "0123456789abcdef" * 4


def test_a_name_past_the_x509_bound_passes_when_it_is_the_one_requested(ca, key):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing on stderr but what cred-helper says
        cert = _cert(ca, key, name=subject(LONG, ["oncall"]))
        assert check_certificate(cert, key, Wanted(LONG, ("oncall",)), _trust(ca), T)
        # The same first 64 bytes are not the same name: a signer that cut it is refused.
        with pytest.raises(BadCertificate, match="not the requested"):
            check_certificate(cert, key, Wanted(LONG + "x", ("oncall",)), _trust(ca), T)
        cut = _cert(ca, key, name=subject(LONG[:64], ["oncall"]))
        with pytest.raises(BadCertificate, match="not the requested"):
            check_certificate(cut, key, Wanted(LONG, ("oncall",)), _trust(ca), T)


def test_group_order_does_not_matter(ca, key):
    cert = _cert(ca, key, name=_name(groups=("sre", "oncall")))
    assert check_certificate(cert, key, WANTED, _trust(ca), T)


def test_garbage_is_refused(ca, key):
    with pytest.raises(BadCertificate, match="not a PEM"):
        check_certificate("garbage", key, WANTED, _trust(ca), T)


def test_kept_no_longer_than_the_ttl(ca, key):
    day = x509.load_pem_x509_certificate(_cert(ca, key, end=NOW + 24 * 60 * MIN).encode())
    assert kept_until(day, T, 1800) == T + 1800
    short = x509.load_pem_x509_certificate(_cert(ca, key, end=NOW + 20 * MIN).encode())
    assert kept_until(short, T, 1800) == short.not_valid_after_utc.timestamp()
