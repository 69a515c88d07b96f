"""The impersonation headers: exactly the request's identity, as client-go sends it."""

from __future__ import annotations

from cred_helper.accessrequest import Spec
from cred_helper.gateway.impersonate import escape_key, headers


def spec(**kw) -> Spec:
    base = dict(username="alice@example.com", groups=("oncall", "system:authenticated"),
                uid="", extra=(), public_key="k", namespace="ns", pods=(), reason="",
                expiration_seconds=600, attestation="")
    return Spec(**{**base, **kw})


def test_user_and_each_group_in_order():
    assert headers(spec()) == (("Impersonate-User", "alice@example.com"),
                               ("Impersonate-Group", "oncall"),
                               ("Impersonate-Group", "system:authenticated"))


def test_uid_and_extra():
    got = headers(spec(uid="1234", extra=(("acme.com/project", ("a", "b")), ("scopes", ("x",)))))
    assert ("Impersonate-Uid", "1234") in got
    assert [h for h in got if h[0].startswith("Impersonate-Extra-")] == [
        ("Impersonate-Extra-acme.com%2Fproject", "a"),
        ("Impersonate-Extra-acme.com%2Fproject", "b"),
        ("Impersonate-Extra-scopes", "x")]


def test_extra_keys_are_escaped_as_client_go_does():
    assert escape_key("a-b.c_d~e") == "a-b.c_d~e"
    assert escape_key("100%/é") == "100%25%2F%C3%A9"


def test_values_travel_as_their_utf8_bytes():
    (user, *_) = headers(spec(username="josé@example.com"))
    assert user[1].encode("latin-1") == "josé@example.com".encode()


def test_the_requesters_credential_id_is_not_impersonated():
    """Admission copies every extra of the creator into the request, the API server's
    credential-id among them (X509SHA256=... for a client certificate): it names the
    credential the access request came with, not the person, and is not sent on."""
    got = headers(spec(extra=(("authentication.kubernetes.io/credential-id", ("X509SHA256=ab",)),
                              ("acme.com/project", ("a",)))))
    assert [h for h in got if h[0].startswith("Impersonate-Extra-")] == [
        ("Impersonate-Extra-acme.com%2Fproject", "a")]
