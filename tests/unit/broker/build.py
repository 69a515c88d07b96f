"""Real CSRs and CSR objects for the broker's unit tests, made with cryptography."""

from __future__ import annotations

import base64
import functools
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from cred_helper.attestproof import PROOF_OID
from cred_helper.issuers.csr import REASON_ANNOTATION, SIGNER


@functools.cache
def key(kind: str):
    """One key per kind for the whole run (RSA generation is slow)."""
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "p521":
        return ec.generate_private_key(ec.SECP521R1())
    if kind.startswith("rsa"):
        return rsa.generate_private_key(65537, int(kind[3:]))
    raise ValueError(kind)


def request_pem(kind: str = "ed25519", cn: str | None = "alice", orgs: tuple[str, ...] = (),
                extra: tuple[x509.NameAttribute, ...] = (), proof: bytes | None = None,
                sans: tuple[str, ...] = ()) -> bytes:
    names = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn is not None else []
    names += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    names += list(extra)
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    if proof is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(PROOF_OID, proof),
                                        critical=False)
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    private = key(kind)
    algorithm = None if kind == "ed25519" else hashes.SHA256()
    return builder.sign(private, algorithm).public_bytes(Encoding.PEM)


def csr_object(pem: bytes | None = None, *, username: str = "alice",
               groups: tuple[str, ...] = ("oncall", "system:authenticated"),
               usages: tuple[str, ...] = ("client auth",), expiration: int | None = 1800,
               reason: str | None = "incident 42", signer: str = SIGNER,
               status: dict | None = None, name: str = "csr-1",
               created: float | None = None) -> dict[str, Any]:
    """The object as kube-apiserver returns it; `created` (unix seconds) is its
    creationTimestamp, now by default."""
    import time

    pem = pem if pem is not None else request_pem()
    meta: dict[str, Any] = {"name": name, "uid": "uid-1", "resourceVersion": "7",
                            "creationTimestamp": time.strftime(
                                "%Y-%m-%dT%H:%M:%SZ",
                                time.gmtime(time.time() if created is None else created))}
    if reason is not None:
        meta["annotations"] = {REASON_ANNOTATION: reason}
    spec: dict[str, Any] = {"request": base64.b64encode(pem).decode(), "signerName": signer,
                            "usages": list(usages), "username": username, "groups": list(groups),
                            "uid": "user-uid"}
    if expiration is not None:
        spec["expirationSeconds"] = expiration
    obj: dict[str, Any] = {"apiVersion": "certificates.k8s.io/v1",
                           "kind": "CertificateSigningRequest", "metadata": meta, "spec": spec}
    if status is not None:
        obj["status"] = status
    return obj


def _tlv(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body


def request_naming_an_extension_twice(oid: x509.ObjectIdentifier = PROOF_OID) -> bytes:
    """A CSR for CN=alice, O=oncall whose extensions name `oid` twice, correctly self-signed.
    cryptography's builder refuses to write one, so the second extension is written under a
    sibling OID of the same length, renamed in the signed bytes, and the request signed again."""
    stand_in = x509.ObjectIdentifier(oid.dotted_string[:-1]
                                     + ("0" if oid.dotted_string[-1] != "0" else "1"))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "oncall")])
    private = key("ed25519")
    csr = (x509.CertificateSigningRequestBuilder().subject_name(name)
           .add_extension(x509.UnrecognizedExtension(oid, b"first"), critical=False)
           .add_extension(x509.UnrecognizedExtension(stand_in, b"second"), critical=False)
           .sign(private, None))

    info = csr.tbs_certrequest_bytes
    assert info.count(_oid_der(stand_in.dotted_string)) == 1
    info = info.replace(_oid_der(stand_in.dotted_string), _oid_der(oid.dotted_string))
    ed25519_algorithm = bytes.fromhex("300506032b6570")
    der = _tlv(0x30, info + ed25519_algorithm + _tlv(0x03, b"\x00" + private.sign(info)))
    return (b"-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(der)
            + b"-----END CERTIFICATE REQUEST-----\n")


def _oid_der(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))
