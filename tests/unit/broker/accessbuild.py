"""Real AccessRequest objects for the broker's unit tests: real SSH keys, real proofs."""

from __future__ import annotations

import base64
import functools
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cred_helper import accessrequest as ar


def key(kind: str = "ed25519"):
    """One key per kind for the whole run."""
    return _key(kind)


@functools.cache
def _key(kind: str):
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key({"p256": ec.SECP256R1(), "p384": ec.SECP384R1()}[kind])


def line(kind: str = "ed25519") -> str:
    return key(kind).public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def access_object(name: str = "alice-1", *, username: str = "alice",
                  groups: tuple[str, ...] = ("oncall", "system:authenticated"),
                  namespace: str = "payments", pods: tuple[str, ...] = (),
                  seconds: int = 1800, reason: str = "INC-42", public_key: str | None = None,
                  proof: bytes | None = None, status: dict | None = None,
                  created: float | None = None, **spec_extra: Any) -> dict[str, Any]:
    """An AccessRequest object as the API server returns it, created `created` (unix
    seconds; default now: a proof is held to its request's creation time)."""
    spec: dict[str, Any] = {"username": username, "groups": list(groups),
                            "publicKey": public_key or line(), "namespace": namespace,
                            "expirationSeconds": seconds, "reason": reason, **spec_extra}
    if pods:
        spec["pods"] = list(pods)
    if proof is not None:
        spec["attestation"] = base64.b64encode(proof).decode()
    obj: dict[str, Any] = {"apiVersion": ar.API_VERSION, "kind": ar.KIND,
                           "metadata": {"name": name, "uid": f"uid-{name}",
                                        "resourceVersion": "5",
                                        "creationTimestamp": ar.format_time(
                                            time.time() if created is None else created)},
                           "spec": spec}
    if status is not None:
        obj["status"] = status
    return obj
