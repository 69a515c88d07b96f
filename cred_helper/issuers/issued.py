"""What an issuer hands back: the credential, when it ends, and whom it names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Issued:
    status: dict[str, str]  # ExecCredential status fields, without expirationTimestamp
    not_after: float
    identity: dict[str, Any]
    source: str  # where it came from: the CSR's name, the OpenID provider
    server: str
