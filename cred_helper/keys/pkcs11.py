"""PKCS#11 tokens through python-pkcs11: the module, the token, one login, the key.

A PIN the token rejects ends the run: there is exactly one C_Login per run, whatever fails
after it, and no code path tries a PIN again (YubiKey PIV blocks its PIN after 3 wrong tries).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ..errors import CredHelperError, UsageError
from . import uri as uris
from .pin import read_pin
from .tokenkey import TokenECKey, TokenEd25519Key, TokenRSAKey

# Where ykcs11 (Yubico) and OpenSC's module usually are, first found wins.
DEFAULT_MODULES = {
    "linux": ["/usr/lib/x86_64-linux-gnu/libykcs11.so.2", "/usr/lib/x86_64-linux-gnu/libykcs11.so",
              "/usr/lib/aarch64-linux-gnu/libykcs11.so.2", "/usr/lib64/libykcs11.so.2",
              "/usr/local/lib/libykcs11.so", "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
              "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so", "/usr/lib64/opensc-pkcs11.so",
              "/usr/lib/opensc-pkcs11.so"],
    "darwin": ["/usr/local/lib/libykcs11.dylib", "/opt/homebrew/lib/libykcs11.dylib",
               "/Library/OpenSC/lib/opensc-pkcs11.so", "/opt/homebrew/lib/opensc-pkcs11.so",
               "/usr/local/lib/opensc-pkcs11.so"],
}
P256_OID = bytes.fromhex("06082a8648ce3d030107")
P384_OID = bytes.fromhex("06052b81040022")
ED25519_OID = bytes.fromhex("06032b6570")
ED25519_NAME = b"\x13\x0cedwards25519"  # PrintableString, as older modules write it
CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED = 0x10000, 0x20000, 0x40000
CKF_LOGIN_REQUIRED, CKF_PROTECTED_AUTHENTICATION_PATH = 0x4, 0x100
CKF_TOKEN_INITIALIZED = 0x400
PIN_WARNINGS = CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED


class TokenError(CredHelperError):
    pass


def choose_module(uri_module: str | None, configured: str, platform: str = sys.platform,
                  exists: Callable[[str], bool] = os.path.exists) -> str:
    """The URI's module-path, else --pkcs11-module (env, profile), else the first usual one."""
    if uri_module:
        return uri_module
    if configured:
        return configured
    system = "darwin" if platform == "darwin" else "linux"
    for path in DEFAULT_MODULES[system]:
        if exists(path):
            return path
    raise UsageError("no PKCS#11 module found at the usual ykcs11 or OpenSC paths",
                     "install yubico-piv-tool (ykcs11) or OpenSC, or pass --pkcs11-module "
                     "PATH (or CRED_HELPER_PKCS11_MODULE)")


_loaded: dict[str, Any] = {}


def load(path: str) -> Any:
    """The module, loaded once per process (a module is initialised only once)."""
    if path in _loaded:
        return _loaded[path]
    import pkcs11

    if not os.path.exists(path):
        raise TokenError(f"the PKCS#11 module {path} does not exist",
                         "check --pkcs11-module / CRED_HELPER_PKCS11_MODULE or the URI's "
                         "module-path")
    try:
        lib = pkcs11.lib(path)
    except (RuntimeError, OSError, pkcs11.exceptions.PKCS11Error) as exc:
        raise TokenError(f"{path} cannot be loaded as a PKCS#11 module ({exc})") from None
    clear_openssl_errors()
    _loaded[path] = lib
    return lib


def clear_openssl_errors() -> None:
    """Empty this thread's OpenSSL error queue. SoftHSM2 (on OpenSSL 3) leaves "no such
    engine" there when it initialises; Python's ssl then reads it as the failure of the next
    TLS handshake in the thread (tried: a CSR's watch after --attest-with failed so). Best
    effort: the libcrypto searched is the one Python's ssl module uses."""
    import ctypes

    try:
        import _ssl

        ctypes.CDLL(_ssl.__file__).ERR_clear_error()
    except (ImportError, OSError, AttributeError):
        pass


@dataclass(frozen=True)
class TokenInfo:
    slot_id: int
    label: str
    manufacturer: str
    model: str
    serial: str
    flags: int

    def describe(self) -> str:
        return f"{self.label!r} ({self.manufacturer} {self.model}, serial {self.serial})"


def _tokens(lib: Any) -> list[tuple[Any, TokenInfo]]:
    import pkcs11.exceptions

    try:
        slots = lib.get_slots(token_present=True)
    except pkcs11.exceptions.PKCS11Error as exc:
        raise TokenError(f"the PKCS#11 module cannot list its readers ({type(exc).__name__})",
                         "for a YubiKey, check that pcscd is running and the key is "
                         "inserted") from None
    found = []
    for slot in slots:
        token = slot.get_token()
        if not token.flags & CKF_TOKEN_INITIALIZED:
            continue  # e.g. SoftHSM's spare slot, where a new token can be made
        found.append((token, TokenInfo(slot.slot_id, token.label.strip(),
                                       token.manufacturer_id.strip(), token.model.strip(),
                                       token.serial.decode("ascii", "replace").strip()
                                       if isinstance(token.serial, bytes)
                                       else str(token.serial).strip(), int(token.flags))))
    return found


def list_tokens(lib: Any) -> list[TokenInfo]:
    return [info for _, info in _tokens(lib)]


def token_matches(info: TokenInfo, uri: uris.Pkcs11URI) -> bool:
    return ((uri.token is None or uri.token == info.label)
            and (uri.manufacturer is None or uri.manufacturer == info.manufacturer)
            and (uri.model is None or uri.model == info.model)
            and (uri.serial is None or uri.serial == info.serial)
            and (uri.slot_id is None or uri.slot_id == info.slot_id))


def find_token(lib: Any, uri: uris.Pkcs11URI, module: str) -> tuple[Any, TokenInfo]:
    present = _tokens(lib)
    matches = [(t, i) for t, i in present if token_matches(i, uri)]
    if len(matches) == 1:
        return matches[0]
    seen = ", ".join(i.describe() for _, i in present) or "none"
    if not matches:
        raise TokenError(f"no token matching {uri.describe_token()} in {module}; "
                         f"tokens present: {seen}",
                         "insert the token, or fix token= in the URI (see `cred-helper keys "
                         "list`)")
    raise TokenError(f"{len(matches)} tokens match {uri.describe_token()}: {seen}",
                     "add token=, serial= or slot-id= to the URI")


def pin_state(flags: int) -> str:
    """What the token says about its PIN retry counter, for messages."""
    if flags & CKF_USER_PIN_LOCKED:
        return "the PIN is now locked"
    if flags & CKF_USER_PIN_FINAL_TRY:
        return "one try is left before the PIN locks"
    if flags & CKF_USER_PIN_COUNT_LOW:
        return "the token says few tries are left"
    return "the token does not say how many tries are left"


@contextmanager
def logged_in(token: Any, info: TokenInfo, pin_source: str, interactive: bool,
              env: Mapping[str, str], ask: Callable[[str], str],
              say: Callable[[str], None], refresh: Callable[[], int],
              rw: bool = False) -> Iterator[Any]:
    """A session on `token`, logged in as its user with exactly one C_Login.

    `refresh` reads the token's flags again (after a wrong PIN, for the retry counter)."""
    import pkcs11
    import pkcs11.exceptions

    name = info.describe()
    if info.flags & CKF_USER_PIN_LOCKED:
        raise TokenError(f"the PIN of {name} is locked; cred-helper will not try it",
                         "unblock it with the PUK (YubiKey: `ykman piv access unblock-pin`)")
    pin: Any = None
    if not info.flags & CKF_LOGIN_REQUIRED:
        pass
    elif info.flags & CKF_PROTECTED_AUTHENTICATION_PATH:
        if not interactive:
            raise TokenError(f"{name} takes its PIN on the reader's PIN pad, and there is no "
                             "terminal", "run `cred-helper login` in a terminal")
        say(f"enter the PIN for {name} on the reader's PIN pad")
        pin = pkcs11.PROTECTED_AUTH
    else:
        if info.flags & CKF_USER_PIN_FINAL_TRY and pin_source != "prompt":
            raise TokenError(f"{name} has one PIN try left; cred-helper will not spend it on "
                             f"--pin-source {pin_source.split(':')[0]}",
                             "log in once with --pin-source prompt, or reset the retry "
                             "counter")
        pin = read_pin(pin_source, interactive, name, env, ask)
    try:
        session = token.open(user_pin=pin, rw=rw) if pin is not None else token.open(rw=rw)
    except pkcs11.exceptions.PinIncorrect:
        raise TokenError(f"{name} rejected the PIN; {pin_state(refresh())}",
                         "cred-helper never retries a PIN: check it, then run again") from None
    except pkcs11.exceptions.PinLocked:
        raise TokenError(f"the PIN of {name} is locked",
                         "unblock it with the PUK (YubiKey: `ykman piv access unblock-pin`)"
                         ) from None
    except (pkcs11.exceptions.PinLenRange, pkcs11.exceptions.PinInvalid):
        raise TokenError(f"{name} says the PIN has the wrong form (length or characters)",
                         "check --pin-source; the token was not asked to check it"
                         ) from None
    except pkcs11.exceptions.PKCS11Error as exc:
        raise TokenError(f"cannot open a session on {name} ({type(exc).__name__})") from None
    finally:
        del pin
    try:
        yield session
    finally:
        session.close()


def key_kind(key: Any) -> str:
    from pkcs11 import Attribute, KeyType

    kind = key.key_type
    if kind == KeyType.RSA:
        return f"rsa{key.key_length}" if key.key_length else "rsa"
    if kind == KeyType.EC_EDWARDS:
        return "ed25519"
    if kind == KeyType.EC:
        params = bytes(key[Attribute.EC_PARAMS])
        return {P256_OID: "p256", P384_OID: "p384"}.get(params, "ec")
    return str(kind.name).lower()


def find_private_key(session: Any, uri: uris.Pkcs11URI, token_name: str) -> Any:
    from pkcs11 import Attribute, ObjectClass

    if uri.type not in (None, "private"):
        raise UsageError(f"the URI names type={uri.type}; a signing key is type=private")
    template: dict[Any, Any] = {Attribute.CLASS: ObjectClass.PRIVATE_KEY}
    if uri.object is not None:
        template[Attribute.LABEL] = uri.object
    if uri.id is not None:
        template[Attribute.ID] = uri.id
    matches = list(session.get_objects(template))
    if len(matches) == 1:
        return matches[0]
    there = _describe_keys(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
    if not matches:
        raise TokenError(f"no private key matching {uri.describe_object()} on {token_name}; "
                         f"private keys there: {there}",
                         "fix object= or id= in the URI (see `cred-helper keys list --login`)")
    raise TokenError(f"{len(matches)} private keys match {uri.describe_object()} on "
                     f"{token_name}: {_describe_keys(matches)}",
                     "add id= (or object=) to the URI to name one")


def _describe_keys(keys: Any) -> str:
    # Tokens list objects in no fixed order; people (and tests) read them by id.
    ordered = sorted(keys, key=lambda k: (bytes(k.id), k.label))
    return ", ".join(describe_key(k) for k in ordered) or "none"


def describe_key(key: Any) -> str:
    return f"{key.label!r} (id {uris.format_id(bytes(key.id))}, {key_kind(key)})"


def public_key_of(session: Any, key: Any) -> Any:
    """The cryptography public key for a token key: from the key (RSA), else from the public
    key object with the same id (EC and Ed25519 private keys do not carry their point)."""
    from pkcs11 import Attribute, KeyType, ObjectClass

    if key.key_type == KeyType.RSA:
        n = int.from_bytes(bytes(key[Attribute.MODULUS]), "big")
        e = int.from_bytes(bytes(key[Attribute.PUBLIC_EXPONENT]), "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    if key.object_class == ObjectClass.PUBLIC_KEY:
        public = key
    else:
        found = list(session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                                          Attribute.ID: bytes(key.id)}))
        if not found:
            raise TokenError(f"the token has no public key object for {describe_key(key)}",
                             "import or regenerate the key with its public half")
        public = found[0]
    point = decode_ec_point(bytes(public[Attribute.EC_POINT]))
    params = bytes(public[Attribute.EC_PARAMS])
    if key.key_type == KeyType.EC_EDWARDS or params in (ED25519_OID, ED25519_NAME):
        return ed25519.Ed25519PublicKey.from_public_bytes(point)
    curve = {P256_OID: ec.SECP256R1(), P384_OID: ec.SECP384R1()}.get(params)
    if curve is None:
        raise TokenError(f"{describe_key(key)} is on a curve cred-helper does not use",
                         "use a P-256, P-384, Ed25519 or RSA key")
    return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)


def decode_ec_point(value: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING (the standard; SoftHSM2 and ykcs11), or the bare
    point (some modules)."""
    if len(value) >= 2 and value[0] == 0x04 and value[1] == len(value) - 2 and \
            len(value) - 2 in (32, 65, 97):
        return value[2:]
    if len(value) >= 3 and value[0] == 0x04 and value[1] == 0x81 and value[2] == len(value) - 3:
        return value[3:]
    return value


def wrap(session: Any, key: Any, token_name: str, mechanisms: frozenset) -> Any:
    """The token key as a cryptography private-key object whose sign() runs on the token."""
    from pkcs11 import KeyType

    public = public_key_of(session, key)
    describe = f"{describe_key(key)} on {token_name}"
    if key.key_type == KeyType.EC_EDWARDS:
        return TokenEd25519Key(key, public, mechanisms, describe)
    if key.key_type == KeyType.EC:
        return TokenECKey(key, public, mechanisms, describe)
    if key.key_type == KeyType.RSA:
        return TokenRSAKey(key, public, mechanisms, describe)
    raise TokenError(f"{describe} is not an Ed25519, EC or RSA key")


@contextmanager
def open_session(text: str, module_setting: str, pin_source_setting: str, login: bool,
                 interactive: bool, env: Mapping[str, str], ask: Callable[[str], str],
                 say: Callable[[str], None], rw: bool = False
                 ) -> Iterator[tuple[uris.Pkcs11URI, TokenInfo, Any, Any]]:
    """(URI, token info, token, session) for the token a `pkcs11:` URI names; logged in
    (once) when `login`. The URI's module-path and pin-source win over the settings."""
    from .pin import check_source

    uri = uris.parse(text)
    module = choose_module(uri.module_path, module_setting)
    lib = load(module)
    token, info = find_token(lib, uri, module)
    if not login:
        with token.open(rw=rw) as session:
            yield uri, info, token, session
        return
    pin_source = check_source(uri.pin_source, "the URI's pin-source") if uri.pin_source \
        else pin_source_setting

    def refresh() -> int:
        return next((i.flags for _, i in _tokens(lib) if i.slot_id == info.slot_id), 0)

    with logged_in(token, info, pin_source, interactive, env, ask, say, refresh,
                   rw=rw) as session:
        yield uri, info, token, session


@contextmanager
def open_key(text: str, module_setting: str, pin_source_setting: str, interactive: bool,
             env: Mapping[str, str], ask: Callable[[str], str],
             say: Callable[[str], None]) -> Iterator[Any]:
    """The key a `pkcs11:` URI names, usable while the context is open."""
    with open_session(text, module_setting, pin_source_setting, True, interactive, env, ask,
                      say) as (uri, info, token, session):
        key = find_private_key(session, uri, info.describe())
        mechanisms = frozenset(token.slot.get_mechanisms())
        yield wrap(session, key, info.describe(), mechanisms)
