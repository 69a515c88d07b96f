"""The decisions around the one login that SoftHSM2 cannot show (a PIN pad, a token without
login, a final try spent at the prompt), with stand-in token objects. Wrong, locked and
final-try PINs on a real token are in tests/integration/test_pkcs11.py."""

import pytest

from cred_helper.keys import pkcs11 as tokens


class _Token:
    def __init__(self):
        self.logins: list = []

    def open(self, user_pin=None, rw=False):
        self.logins.append(user_pin)
        return _Session()


class _Session:
    def close(self):
        pass


def _info(flags):
    return tokens.TokenInfo(1, "yk", "Yubico", "YubiKey", "123", flags)


def _login(token, flags, source="env:PIN", interactive=False, said=None):
    with tokens.logged_in(token, _info(flags), source, interactive, {"PIN": "123456"},
                          lambda p: "654321", (said if said is not None else []).append,
                          lambda: flags | tokens.CKF_USER_PIN_COUNT_LOW):
        pass


LOGIN = tokens.CKF_LOGIN_REQUIRED


def test_final_try_only_from_a_person():
    token = _Token()
    with pytest.raises(tokens.TokenError, match="one PIN try left"):
        _login(token, LOGIN | tokens.CKF_USER_PIN_FINAL_TRY, "file:/x")
    assert token.logins == []
    _login(token, LOGIN | tokens.CKF_USER_PIN_FINAL_TRY, "prompt", interactive=True)
    assert token.logins == ["654321"]


def test_pin_pad():
    import pkcs11

    token, said = _Token(), []
    _login(token, LOGIN | tokens.CKF_PROTECTED_AUTHENTICATION_PATH, interactive=True, said=said)
    assert token.logins == [pkcs11.PROTECTED_AUTH] and "PIN pad" in said[0]
    with pytest.raises(tokens.TokenError, match="PIN pad, and there is no terminal"):
        _login(_Token(), LOGIN | tokens.CKF_PROTECTED_AUTHENTICATION_PATH)


def test_no_login_required_means_no_pin():
    token = _Token()
    _login(token, 0, "prompt", interactive=False)
    assert token.logins == [None]


@pytest.mark.parametrize(("flags", "text"), [
    (0, "does not say"), (tokens.CKF_USER_PIN_COUNT_LOW, "few tries are left"),
    (tokens.CKF_USER_PIN_FINAL_TRY, "one try is left"),
    (tokens.CKF_USER_PIN_LOCKED, "locked")])
def test_pin_state(flags, text):
    assert text in tokens.pin_state(flags)


def test_module_choice():
    exists = {"/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"}.__contains__
    assert tokens.choose_module("/uri.so", "/flag.so", "linux", exists) == "/uri.so"
    assert tokens.choose_module(None, "/flag.so", "linux", exists) == "/flag.so"
    assert tokens.choose_module(None, "", "linux", exists) == \
        "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
    with pytest.raises(Exception, match="no PKCS#11 module found"):
        tokens.choose_module(None, "", "darwin", exists)


def test_ec_points_wrapped_or_bare():
    point = b"\x04" + bytes(64)
    assert tokens.decode_ec_point(b"\x04\x41" + point) == point
    assert tokens.decode_ec_point(point) == point
    assert tokens.decode_ec_point(b"\x04\x20" + bytes(32)) == bytes(32)
    assert tokens.decode_ec_point(bytes(32)) == bytes(32)
