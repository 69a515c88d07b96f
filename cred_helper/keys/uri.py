"""PKCS#11 URIs (RFC 7512): `pkcs11:token=YubiKey%20PIV;id=%01?module-path=/usr/lib/x.so`.

Pure parsing. Path attributes select the token and the object; of the query attributes,
`module-path` and `pin-source` are honoured, and `pin-value` is refused: a PIN does not belong
on a command line or in a config file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from ..errors import UsageError

PATH_ATTRIBUTES = ("token", "manufacturer", "serial", "model", "object", "id", "type",
                   "slot-id", "slot-description", "slot-manufacturer", "library-description",
                   "library-manufacturer", "library-version")
QUERY_ATTRIBUTES = ("module-path", "module-name", "pin-source")
_USED = {";": ("token", "manufacturer", "serial", "model", "object", "id", "type", "slot-id"),
         "&": ("module-path", "pin-source")}
OBJECT_TYPES = ("private", "public", "cert", "secret-key", "data")
# Characters `build` leaves as they are (RFC 3986 unreserved); everything else is encoded.
_PLAIN = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")


@dataclass(frozen=True)
class Pkcs11URI:
    token: str | None = None
    manufacturer: str | None = None
    serial: str | None = None
    model: str | None = None
    object: str | None = None
    id: bytes | None = None
    type: str | None = None
    slot_id: int | None = None
    module_path: str | None = None
    pin_source: str | None = None
    # What else was given (library-*, slot-description, ...): matched by nobody, kept for
    # messages.
    other: dict[str, str] = field(default_factory=dict)

    def describe_token(self) -> str:
        parts = [f"{k}={v}" for k, v in (("token", self.token), ("manufacturer",
                 self.manufacturer), ("serial", self.serial), ("model", self.model),
                 ("slot-id", self.slot_id)) if v is not None]
        return ";".join(parts) or "any token"

    def describe_object(self) -> str:
        parts = []
        if self.object is not None:
            parts.append(f"object={self.object}")
        if self.id is not None:
            parts.append(f"id={format_id(self.id)}")
        return ";".join(parts) or "any key"


def format_id(value: bytes) -> str:
    return "".join(f"%{b:02X}" for b in value)


def _encode(text: str) -> str:
    return "".join(c if c in _PLAIN else "".join(f"%{b:02X}" for b in c.encode())
                   for c in text)


def _decode(raw: str, name: str, uri: str) -> bytes:
    for i, ch in enumerate(raw):
        if ch == "%":
            pair = raw[i + 1:i + 3]
            if len(pair) != 2 or any(c not in "0123456789abcdefABCDEF" for c in pair):
                raise _bad(uri, f"{name}: '%' must be followed by two hex digits")
        elif ch.isspace() or not ch.isprintable():
            raise _bad(uri, f"{name}: spaces and control characters must be percent-encoded "
                            "(%20 for a space)")
    return unquote_to_bytes(raw)


def _bad(uri: str, why: str) -> UsageError:
    return UsageError(f"{uri!r} is not a valid PKCS#11 URI: {why}",
                      "the form is pkcs11:token=LABEL;object=LABEL;id=%01 (RFC 7512); "
                      "list keys with `cred-helper keys list`")


def parse(uri: str) -> Pkcs11URI:
    if not uri.startswith("pkcs11:"):
        raise _bad(uri, "it does not start with pkcs11:")
    rest = uri[len("pkcs11:"):]
    path, _, query = rest.partition("?")
    values: dict[str, str | bytes] = {}
    other: dict[str, str] = {}
    for part, sep in ((path, ";"), (query, "&")):
        for item in part.split(sep) if part else []:
            name, eq, raw = item.partition("=")
            if not eq or not name:
                raise _bad(uri, f"{item!r} is not NAME=VALUE")
            if name == "pin-value":
                raise UsageError("PKCS#11 URIs with pin-value are refused: a PIN must not be "
                                 "written in arguments or files others may read",
                                 "use pin-source, or --pin-source prompt|env:VAR|file:PATH|"
                                 "cmd:COMMAND")
            if name in values or name in other:
                raise _bad(uri, f"{name} is given twice")
            decoded = _decode(raw, name, uri)
            if name == "id":
                values[name] = decoded
                continue
            try:
                text = decoded.decode("utf-8")
            except UnicodeDecodeError:
                raise _bad(uri, f"{name} is not UTF-8") from None
            if name in _USED[sep]:
                values[name] = text
            elif name.startswith("x-") or name in PATH_ATTRIBUTES + QUERY_ATTRIBUTES:
                other[name] = text
            else:
                raise _bad(uri, f"unknown attribute {name!r}")
    kind = values.get("type")
    if kind is not None and kind not in OBJECT_TYPES:
        raise _bad(uri, f"type must be one of {', '.join(OBJECT_TYPES)}")
    slot = values.get("slot-id")
    if slot is not None and not str(slot).isdigit():
        raise _bad(uri, "slot-id must be a decimal number")
    text = {k: v for k, v in values.items() if isinstance(v, str)}
    ident = values.get("id")
    return Pkcs11URI(
        token=text.get("token"), manufacturer=text.get("manufacturer"),
        serial=text.get("serial"), model=text.get("model"), object=text.get("object"),
        id=ident if isinstance(ident, bytes) else None, type=text.get("type"),
        slot_id=int(slot) if isinstance(slot, str) else None,
        module_path=text.get("module-path"), pin_source=text.get("pin-source"), other=other)


def build(token: str, label: str, key_id: bytes) -> str:
    """The URI naming one key, as `keys generate` and `keys list` print it."""
    return f"pkcs11:token={_encode(token)};object={_encode(label)};id={format_id(key_id)}"
