"""A key on a PKCS#11 token as a cryptography private-key object, so that the CSR builder,
PyJWT and anything else that takes a key object signs on the token without knowing it.

The private half never leaves the token: every method that would export it raises. Hashing is
done where the token can take it: EdDSA hashes inside; for ECDSA the host hashes and the token
signs the digest (CKM_ECDSA, which SoftHSM2 and ykcs11 both have, unlike CKM_ECDSA_SHA256);
for RSA PKCS#1 v1.5 the token's CKM_SHA*_RSA_PKCS where it has it, else CKM_RSA_PKCS over a
DigestInfo built here.
"""

from __future__ import annotations

from typing import Any, NoReturn

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from ..errors import CredHelperError

# DER DigestInfo prefixes (RFC 8017 §9.2, note 1), for tokens that only sign raw PKCS#1.
DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


def _not_exportable(*_: Any, **__: Any) -> NoReturn:
    raise CredHelperError("a hardware key's private half cannot be read or exported",
                          "that is the point of keeping it on the token")


class _TokenSigner:
    """What all three kinds share: the token's key handle and its signing call."""

    def __init__(self, handle: Any, public: Any, mechanisms: frozenset, describe: str) -> None:
        self._handle = handle
        self._public = public
        self._mechanisms = mechanisms
        self.describe = describe

    def _sign(self, data: bytes, mechanism: Any) -> bytes:
        import pkcs11.exceptions

        try:
            return bytes(self._handle.sign(data, mechanism=mechanism))
        except pkcs11.exceptions.PKCS11Error as exc:
            raise CredHelperError(f"the token refused to sign with {self.describe} "
                                  f"({type(exc).__name__})",
                                  "check that the key may sign, and that the token is "
                                  "still inserted and logged in") from None

    def public_key(self):
        return self._public

    private_bytes = private_numbers = private_bytes_raw = _not_exportable

    def __copy__(self):
        return self

    def __deepcopy__(self, memo: dict) -> Any:
        return self


class TokenEd25519Key(_TokenSigner, ed25519.Ed25519PrivateKey):
    def sign(self, data: bytes) -> bytes:
        from pkcs11 import Mechanism

        return self._sign(data, Mechanism.EDDSA)


class TokenECKey(_TokenSigner, ec.EllipticCurvePrivateKey):
    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.curve.key_size

    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm
             ) -> bytes:
        from pkcs11 import Mechanism

        if not isinstance(signature_algorithm, ec.ECDSA):
            raise UnsupportedAlgorithm("token EC keys sign ECDSA only")
        algorithm = signature_algorithm.algorithm
        if isinstance(algorithm, utils.Prehashed):
            digest = data
        else:
            h = hashes.Hash(algorithm)
            h.update(data)
            digest = h.finalize()
        raw = self._sign(digest, Mechanism.ECDSA)  # r || s, each the curve's size
        half = len(raw) // 2
        return utils.encode_dss_signature(int.from_bytes(raw[:half], "big"),
                                          int.from_bytes(raw[half:], "big"))

    def exchange(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise UnsupportedAlgorithm("token keys here are for signing only")


class TokenRSAKey(_TokenSigner, rsa.RSAPrivateKey):
    @property
    def key_size(self) -> int:
        return self._public.key_size

    def sign(self, data: bytes, padding_: padding.AsymmetricPadding,
             algorithm: hashes.HashAlgorithm | utils.Prehashed) -> bytes:
        from pkcs11 import Mechanism

        if not isinstance(padding_, padding.PKCS1v15):
            raise UnsupportedAlgorithm("token RSA keys sign with PKCS#1 v1.5 padding only")
        if isinstance(algorithm, utils.Prehashed) or algorithm.name not in DIGEST_INFO:
            # (a prehashed digest does not say which hash made it, and DigestInfo needs that)
            raise UnsupportedAlgorithm("token RSA keys sign whole messages with SHA-256/384/512")
        combined = getattr(Mechanism, f"{algorithm.name.upper()}_RSA_PKCS")
        if combined in self._mechanisms:
            return self._sign(data, combined)
        h = hashes.Hash(algorithm)
        h.update(data)
        return self._sign(DIGEST_INFO[algorithm.name] + h.finalize(), Mechanism.RSA_PKCS)

    def decrypt(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise UnsupportedAlgorithm("token keys here are for signing only")
