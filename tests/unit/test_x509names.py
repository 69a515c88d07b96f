"""Names of any length, as Kubernetes takes them, built and read back without a warning."""

from __future__ import annotations

import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from cred_helper.keys import software
from cred_helper.x509names import subject, subject_of, text_problem

# An OIDC user name with its issuer prefix: longer than X.509's 64-byte common name.
OIDC_NAME = "oidc:https://login.example.com/tenant-0123456789#4f6b2c0e-9d8a-4b1e-8f3c-2a7d5e6f1b09"


@pytest.mark.parametrize("length", [1, 64, 65, 100, 1000])
def test_a_common_name_of_any_length_is_built_and_read_back_silently(length):
    name = ("é" * length)[:length]  # two UTF-8 bytes each: the bound counts bytes
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        built = subject(name, ["oncall", "g" * 300])
        key = software.generate("ed25519")
        pem = x509.CertificateSigningRequestBuilder().subject_name(built).sign(key, None) \
            .public_bytes(Encoding.PEM)
        read = subject_of(x509.load_pem_x509_csr(pem))
    assert read.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
    assert [a.value for a in read.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == \
        ["oncall", "g" * 300]


def test_an_oidc_name_is_longer_than_the_x509_bound():
    assert len(OIDC_NAME.encode()) > 64
    with pytest.raises(ValueError):  # what cryptography does unasked: why this module exists
        x509.NameAttribute(NameOID.COMMON_NAME, OIDC_NAME)
    assert subject(OIDC_NAME, []).rfc4514_string() == f"CN={OIDC_NAME}"


def test_other_warnings_still_show():
    with pytest.warns(DeprecationWarning):
        from cred_helper.x509names import unbounded

        with unbounded():
            warnings.warn("something else", DeprecationWarning, stacklevel=1)


@pytest.mark.parametrize("value, problem", [
    ("alice", None), ("", None), ("日本語 💥", None), ("a\0b", None),
    ("a\udcffb", "not valid Unicode text"), ("\ud800", "not valid Unicode text"),
])
def test_text_a_certificate_can_carry(value, problem):
    found = text_problem(value)
    assert (found is None) if problem is None else (problem in found)
