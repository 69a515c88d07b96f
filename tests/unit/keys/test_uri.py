import pytest

from cred_helper.errors import UsageError
from cred_helper.keys.uri import build, parse


def test_path_and_query_attributes_percent_decoded():
    uri = parse("pkcs11:token=YubiKey%20PIV%20%2312345;object=Private%20key%20for%20PIV%20"
                "Authentication;id=%01;type=private?module-path=/usr/lib/libykcs11.so&"
                "pin-source=file:/run/pin")
    assert uri.token == "YubiKey PIV #12345"
    assert uri.object == "Private key for PIV Authentication"
    assert uri.id == b"\x01" and uri.type == "private"
    assert uri.module_path == "/usr/lib/libykcs11.so" and uri.pin_source == "file:/run/pin"


def test_ids_are_bytes_and_build_round_trips():
    built = build("my token", "ci/key;1", b"\x00\xab")
    assert built == "pkcs11:token=my%20token;object=ci%2Fkey%3B1;id=%00%AB"
    uri = parse(built)
    assert (uri.token, uri.object, uri.id) == ("my token", "ci/key;1", b"\x00\xab")


def test_a_bare_scheme_matches_anything():
    uri = parse("pkcs11:")
    assert uri.token is None and uri.id is None
    assert uri.describe_token() == "any token" and uri.describe_object() == "any key"


@pytest.mark.parametrize(("text", "why"), [
    ("token=x", "does not start with pkcs11:"),
    ("pkcs11:token", "is not NAME=VALUE"),
    ("pkcs11:id=%0", "two hex digits"),
    ("pkcs11:id=%zz", "two hex digits"),
    ("pkcs11:token=a;token=b", "given twice"),
    ("pkcs11:tokn=a", "unknown attribute 'tokn'"),
    ("pkcs11:type=secret", "type must be one of"),
    ("pkcs11:token=my token", "percent-encoded"),
    ("pkcs11:slot-id=x", "slot-id must be a decimal"),
    ("pkcs11:token=%ff", "not UTF-8"),
])
def test_bad_syntax_says_what_is_wrong(text, why):
    with pytest.raises(UsageError, match="not a valid PKCS#11 URI") as info:
        parse(text)
    assert why in info.value.message


def test_pin_value_is_refused():
    with pytest.raises(UsageError, match="pin-value are refused"):
        parse("pkcs11:token=a?pin-value=1234")


def test_vendor_and_library_attributes_are_kept_not_refused():
    uri = parse("pkcs11:library-manufacturer=OpenSC;x-vendor=1")
    assert uri.other == {"library-manufacturer": "OpenSC", "x-vendor": "1"}
