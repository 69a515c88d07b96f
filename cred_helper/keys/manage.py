"""`cred-helper keys`: what is on the tokens, a new non-exportable key, a key's public half."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from . import uri as uris
from .pkcs11 import (
    P256_OID,
    TokenError,
    TokenInfo,
    describe_key,
    key_kind,
    public_key_of,
)

KINDS = ("p256", "ed25519", "rsa2048")


@dataclass(frozen=True)
class KeyRow:
    token: str
    label: str
    key_id: bytes
    kind: str
    object_class: str  # private | public
    extractable: str  # yes | no | "" (public keys, or not visible)
    uri: str


def list_keys(session: Any, info: TokenInfo) -> list[KeyRow]:
    """Keys the session can see: public keys always, private keys once logged in."""
    from pkcs11 import Attribute, ObjectClass

    rows = []
    for cls, name in ((ObjectClass.PRIVATE_KEY, "private"), (ObjectClass.PUBLIC_KEY, "public")):
        for key in session.get_objects({Attribute.CLASS: cls}):
            extractable = ""
            if name == "private":
                extractable = "yes" if key[Attribute.EXTRACTABLE] else "no"
            label = key.label or ""
            key_id = bytes(key.id or b"")
            rows.append(KeyRow(info.label, label, key_id, key_kind(key), name, extractable,
                               uris.build(info.label, label, key_id)))
    return sorted(rows, key=lambda r: (r.key_id, r.object_class))


def _free_id(session: Any) -> bytes:
    from pkcs11 import Attribute

    taken = {bytes(o[Attribute.ID]) for o in session.get_objects({})
             if _has_id(o)}
    for n in range(1, 256):
        if bytes([n]) not in taken:
            return bytes([n])
    raise TokenError("the token has no free one-byte key id",
                     "name one in the URI: id=%NN (two hex digits per byte)")


def _has_id(obj: Any) -> bool:
    from pkcs11 import Attribute

    try:
        return bool(obj[Attribute.ID])
    except Exception:  # certificates and data objects may lack the attribute
        return False


def generate(session: Any, info: TokenInfo, label: str, key_id: bytes | None, kind: str
             ) -> tuple[str, Any]:
    """A key pair on the token, the private half sensitive and never extractable; refuses a
    label or id already in use. Returns the new key's URI and its public key."""
    from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
    from pkcs11.util.ec import encode_named_curve_parameters

    if kind not in KINDS:
        raise UsageError(f"--type: {kind!r} is not one of {', '.join(KINDS)}")
    for attribute, value, what in ((Attribute.LABEL, label, f"label {label!r}"),
                                   (Attribute.ID, key_id, f"id {uris.format_id(key_id or b'')}")):
        if value is None:
            continue
        existing = [o for o in session.get_objects({attribute: value})
                    if o.object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY,
                                          ObjectClass.CERTIFICATE)]
        if existing:
            raise TokenError(f"{info.describe()} already has an object with {what}; "
                             "cred-helper does not overwrite keys",
                             "choose another object= (label) or id= in the URI, or delete the "
                             "old key with the token's own tools")
    key_id = key_id or _free_id(session)
    private = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
               Attribute.EXTRACTABLE: False, Attribute.SIGN: True, Attribute.DECRYPT: False,
               Attribute.LABEL: label, Attribute.ID: key_id}
    public = {Attribute.TOKEN: True, Attribute.VERIFY: True, Attribute.ENCRYPT: False,
              Attribute.LABEL: label, Attribute.ID: key_id}
    if kind == "rsa2048":
        _, key = session.generate_keypair(KeyType.RSA, 2048, store=True,
                                          public_template=public, private_template=private)
    else:
        oid = "1.2.840.10045.3.1.7" if kind == "p256" else "1.3.101.112"
        key_type = KeyType.EC if kind == "p256" else KeyType.EC_EDWARDS
        params = session.create_domain_parameters(
            key_type, {Attribute.EC_PARAMS: encode_named_curve_parameters(oid)}, local=True)
        mechanism = Mechanism.EC_KEY_PAIR_GEN if kind == "p256" else \
            Mechanism.EC_EDWARDS_KEY_PAIR_GEN
        _, key = params.generate_keypair(store=True, mechanism=mechanism,
                                         public_template=public, private_template=private)
    assert kind != "p256" or bytes(key[Attribute.EC_PARAMS]) == P256_OID
    return uris.build(info.label, label, key_id), public_key_of(session, key)


def find_public(session: Any, uri: uris.Pkcs11URI, token_name: str) -> Any:
    """The public key a URI names: its public key object, or (logged in) its private key's."""
    from pkcs11 import Attribute, ObjectClass

    template: dict[Any, Any] = {}
    if uri.object is not None:
        template[Attribute.LABEL] = uri.object
    if uri.id is not None:
        template[Attribute.ID] = uri.id
    for cls in (ObjectClass.PUBLIC_KEY, ObjectClass.PRIVATE_KEY):
        found = list(session.get_objects({**template, Attribute.CLASS: cls}))
        if len(found) == 1:
            return public_key_of(session, found[0])
        if len(found) > 1:
            raise TokenError(f"{len(found)} keys match {uri.describe_object()} on {token_name}: "
                             f"{', '.join(describe_key(k) for k in found)}",
                             "add id= (or object=) to the URI to name one")
    raise TokenError(f"no key matching {uri.describe_object()} on {token_name}",
                     "see `cred-helper keys list` (private keys show with --login)")
