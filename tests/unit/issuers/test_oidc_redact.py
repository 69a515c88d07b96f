"""What the plugin sent never comes back out of a provider's error text."""

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from cred_helper.issuers.oidc import REDACTED, redact

SECRET = "Zk9-s3cret/with+odd=chars_0123456789"


@pytest.mark.parametrize("echo", [
    SECRET,  # as sent
    quote_plus(SECRET, safe=""),  # as it went in the form
    json.dumps(SECRET)[1:-1],  # as a JSON string
    SECRET[:20],  # cut short by the provider
    SECRET[7:30],  # any long piece of it
    quote(SECRET, safe=""),  # percent-encoded, a space as %20
    SECRET.replace("/", "\\/"),  # as PHP's json_encode writes it
    # Before, each of these came out whole:
    base64.b64encode(SECRET.encode()).decode(),  # Base64, as in a header or a dump
    base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="),
    SECRET.upper(),  # a provider that normalises case
    " ".join(SECRET[i:i + 5] for i in range(0, len(SECRET), 5)),  # cut in short groups
    "\n".join(SECRET[i:i + 6] for i in range(0, len(SECRET), 6)),  # wrapped
    "-".join(SECRET[i:i + 7] for i in range(0, len(SECRET), 7)),
])
def test_an_echoed_secret_is_hidden(echo):
    text = f"invalid_client: the secret {echo} is wrong for client kubectl"
    shown = redact(text, [SECRET])
    assert REDACTED in shown and "client kubectl" in shown
    assert_hidden(shown, SECRET)


def assert_hidden(shown: str, secret: str) -> None:
    """No piece of `secret` of 8 letters and digits is left, whatever lies between them or
    their case."""
    letters = "".join(c for c in shown.lower() if c.isalnum())
    wanted = "".join(c for c in secret.lower() if c.isalnum())
    for i in range(len(wanted) - 7):
        assert wanted[i:i + 8] not in letters, (wanted[i:i + 8], shown)


def test_the_basic_authorization_header_echoed_hides_the_secret():
    """A provider (or a gateway before it) that shows the Authorization header it refused:
    Base64 of `client_id:client_secret`, each form-encoded first (RFC 6749 §2.3.1)."""
    pair = f"{quote_plus('kubectl', safe='')}:{quote_plus(SECRET, safe='')}"
    credentials = base64.b64encode(pair.encode()).decode()
    shown = redact(f"invalid_client: credentials in 'Basic {credentials}' were refused for "
                   "client kubectl", [SECRET, credentials])  # as OIDCProvider._post sends
    assert shown == f"invalid_client: credentials in 'Basic {REDACTED}' were refused for " \
                    "client kubectl"


def test_short_values_and_innocent_words_are_kept():
    text = "invalid_grant: grant request is invalid"
    assert redact(text, ["ab", "Zk9-s3cret/with+odd=chars"]) == text


def test_several_secrets_and_a_huge_text():
    other = "refresh-" + "x" * 40
    shown = redact(f"{SECRET} and {other} " + "a" * 100_000, [other, SECRET])
    assert SECRET not in shown and other not in shown and len(shown) <= 2000
