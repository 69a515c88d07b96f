"""What the plugin sent never comes back out of a provider's error text."""

import json
from urllib.parse import quote_plus

import pytest

from cred_helper.issuers.oidc import REDACTED, redact

SECRET = "Zk9-s3cret/with+odd=chars_0123456789"


@pytest.mark.parametrize("echo", [
    SECRET,  # as sent
    quote_plus(SECRET, safe=""),  # as it went in the form
    json.dumps(SECRET)[1:-1],  # as a JSON string
    SECRET[:20],  # cut short by the provider
    SECRET[7:30],  # any long piece of it
])
def test_an_echoed_secret_is_hidden(echo):
    text = f"invalid_client: the secret {echo} is wrong for client kubectl"
    shown = redact(text, [SECRET])
    assert REDACTED in shown and "client kubectl" in shown
    for i in range(len(SECRET) - 7):
        assert SECRET[i:i + 8] not in shown


def test_short_values_and_innocent_words_are_kept():
    text = "invalid_grant: grant request is invalid"
    assert redact(text, ["ab", "Zk9-s3cret/with+odd=chars"]) == text


def test_several_secrets_and_a_huge_text():
    other = "refresh-" + "x" * 40
    shown = redact(f"{SECRET} and {other} " + "a" * 100_000, [other, SECRET])
    assert SECRET not in shown and other not in shown and len(shown) <= 2000
