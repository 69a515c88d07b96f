"""The OIDC issuer's pure parts: the stored refresh record, and where a login page is."""

from cred_helper.issuers.oidcissuer import (
    StoredRefresh,
    decode_refresh,
    encode_refresh,
    other_origin,
)


def test_the_refresh_record_keeps_the_person_it_belongs_to():
    stored = StoredRefresh("rt-1", "alice")
    assert decode_refresh(encode_refresh(stored)) == stored
    assert "rt-1" not in repr(stored)


def test_a_bare_token_from_an_older_version_has_no_person():
    for text in ("rt-legacy", "12345", '"quoted"', "[1]", '{"sub": "x"}',
                 '{"refresh_token": ""}', "[" * 5000):
        assert decode_refresh(text) == StoredRefresh(text, ""), text


def test_a_record_with_a_sub_of_the_wrong_kind_has_no_person():
    assert decode_refresh('{"refresh_token": "rt", "sub": 7}') == StoredRefresh("rt", "")


def test_a_login_page_elsewhere_is_named_by_its_origin():
    issuer = "https://idp.example.com/realms/x"
    assert other_origin("https://idp.example.com/realms/x/device?c=1", issuer) == ""
    assert other_origin("https://idp.example.com:443/device", issuer) == ""
    assert other_origin("https://www.google.com/device", issuer) == "https://www.google.com"
    assert other_origin("https://idp.example.com:8443/device", issuer) == \
        "https://idp.example.com:8443"
    assert other_origin("http://idp.example.com/device", issuer) == "http://idp.example.com"
    assert other_origin("not a url", issuer) == ""
