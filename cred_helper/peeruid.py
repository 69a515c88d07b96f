"""Which local user holds the other end of a TCP connection to one of our loopback listeners.

TCP has no peer credentials (SO_PEERCRED is for Unix sockets), but on Linux the kernel lists
every socket of the network namespace in /proc/net/tcp and /proc/net/tcp6 with the uid that
created it. A connection to 127.0.0.1 from another local user is therefore visible as such.

`owner` is pure (the tables' text in, an answer out); `read_tables` is the I/O.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
LISTEN = "0A"


@dataclass(frozen=True)
class Owner:
    """`checkable`: the tables list our listener, so they can be trusted to list the peer.
    `uid`: the peer socket's owner; None when it is not listed with one (a socket already
    closed by its process has no owner any more: it shows as uid 0 with inode 0)."""

    checkable: bool
    uid: int | None


def owner(tables: str, peer: tuple[str, int], listener: tuple[str, int]) -> Owner:
    """Who owns the socket at `peer` (address, port) connected to our `listener`."""
    checkable = False
    uid = None
    for line in tables.splitlines():
        row = _row(line)
        if row is None:
            continue
        local, remote, state, row_uid, inode = row
        if local == listener and state == LISTEN:
            checkable = True
        elif local == peer and remote == listener and inode != 0:
            uid = row_uid
    return Owner(checkable, uid)


def read_tables() -> str:
    """The kernel's TCP tables as text; "" where there are none (not Linux). Tables that exist
    but cannot be read now raise Unreadable: a caller must not take that for a platform
    without them, since another user can bring it about (connections that use up this
    process's file descriptors)."""
    texts = []
    for path in TABLES:
        try:
            with open(path, encoding="ascii", errors="replace") as f:
                texts.append(f.read())
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise Unreadable(f"{path}: {exc.strerror or type(exc).__name__}") from None
    return "\n".join(texts)


class Unreadable(Exception):
    """The kernel's TCP tables exist, and could not be read."""


def _row(line: str) -> tuple[tuple[str, int], tuple[str, int], str, int, int] | None:
    # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    fields = line.split()
    if len(fields) < 10 or not fields[0].endswith(":"):
        return None
    try:
        return (_address(fields[1]), _address(fields[2]), fields[3], int(fields[7]),
                int(fields[9]))
    except ValueError:
        return None


def _address(text: str) -> tuple[str, int]:
    """`0100007F:1F90` (IPv4) or 32 hex digits (IPv6) and a port, as the kernel prints them:
    each 32-bit word of the address in this machine's byte order. IPv4-mapped IPv6 addresses
    come back as IPv4, as a listener on 127.0.0.1 sees its peers."""
    hex_address, _, hex_port = text.partition(":")
    if len(hex_address) not in (8, 32):
        raise ValueError(text)
    raw = b"".join(struct.pack("=I", int(hex_address[i:i + 8], 16))
                   for i in range(0, len(hex_address), 8))
    if len(raw) == 4:
        address = socket.inet_ntop(socket.AF_INET, raw)
    else:
        v6 = ipaddress.IPv6Address(raw)
        address = str(v6.ipv4_mapped) if v6.ipv4_mapped else str(v6)
    return address, int(hex_port, 16)
