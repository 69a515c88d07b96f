"""Reading who owns the other end of a loopback connection from the kernel's TCP tables."""

import os
import socket

import pytest

from cred_helper import peeruid
from tests.support.needs import needs

HEAD = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode")
# Our listener on 127.0.0.1:8080 (0x1F90), the server side of an accepted connection, and the
# client side on port 0xE6D6 owned by uid 65534 (as Linux and gVisor print them).
LISTENER = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0  " \
           "      0 54420 1 0000000000000000 100 0 0 10 0"
ACCEPTED = "   1: 0100007F:1F90 0100007F:E6D6 01 00000000:00000000 00:00000000 00000000     0  " \
           "      0 54422 1 0000000000000000 20 0 0 10 -1"
CLIENT = "   2: 0100007F:E6D6 0100007F:1F90 01 00000000:00000000 00:00000000 00000000 65534  " \
         "      0 54423 2 0000000000000000 20 0 0 10 -1"
# The same client after its process closed the socket: a time-wait entry, uid 0 and inode 0.
CLOSED = "   2: 0100007F:E6D6 0100007F:1F90 06 00000000:00000000 03:00000029 00000000     0  " \
         "      0 0 3 0000000000000000"
# An IPv6 socket connected through an IPv4-mapped address (::ffff:127.0.0.1), owned by 1000.
MAPPED = ("   0: 0000000000000000FFFF00000100007F:E6D7 0000000000000000FFFF00000100007F:1F90 01 "
          "00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 20 0 0 "
          "10 -1")
SERVER = ("127.0.0.1", 8080)


def _tables(*rows):
    return "\n".join([HEAD, *rows])


def test_the_peer_socket_names_its_owner():
    found = peeruid.owner(_tables(LISTENER, ACCEPTED, CLIENT), ("127.0.0.1", 0xE6D6), SERVER)
    assert found == peeruid.Owner(checkable=True, uid=65534)


def test_a_socket_its_process_closed_has_no_owner():
    """A time-wait entry says uid 0: for a root victim that must not pass as root's."""
    found = peeruid.owner(_tables(LISTENER, ACCEPTED, CLOSED), ("127.0.0.1", 0xE6D6), SERVER)
    assert found == peeruid.Owner(checkable=True, uid=None)


def test_an_ipv4_mapped_peer_is_found_in_the_ipv6_table():
    found = peeruid.owner(_tables(LISTENER) + "\n" + _tables(MAPPED), ("127.0.0.1", 0xE6D7),
                          SERVER)
    assert found == peeruid.Owner(checkable=True, uid=1000)


def test_tables_without_our_listener_cannot_tell():
    """Not Linux, or a /proc that lists nothing: the caller falls back on other defences."""
    assert peeruid.owner("", ("127.0.0.1", 1), SERVER) == peeruid.Owner(False, None)
    assert peeruid.owner(_tables(CLIENT), ("127.0.0.1", 0xE6D6), SERVER).checkable is False


def test_garbage_lines_are_skipped():
    found = peeruid.owner(_tables("junk", "   9: zz:zz 00:00 0A x x x x x x x", LISTENER,
                                  CLIENT), ("127.0.0.1", 0xE6D6), SERVER)
    assert found == peeruid.Owner(True, 65534)


@needs(os.path.exists("/proc/net/tcp"), "Linux's TCP tables")
def test_a_real_connection_from_this_process_is_ours():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()):
            conn, peer = listener.accept()
            with conn:
                found = peeruid.owner(peeruid.read_tables(), peer, listener.getsockname())
    assert found == peeruid.Owner(True, os.geteuid())


def test_tables_that_exist_but_cannot_be_read_are_not_taken_for_none(monkeypatch, tmp_path):
    """Another user can make the read fail (connections that use up our descriptors): that
    must not look like a machine without tables, where every request is admitted."""
    monkeypatch.setattr(peeruid, "TABLES", (str(tmp_path / "missing"), str(tmp_path)))
    with pytest.raises(peeruid.Unreadable, match="Is a directory"):
        peeruid.read_tables()
    monkeypatch.setattr(peeruid, "TABLES", (str(tmp_path / "missing"),))
    assert peeruid.read_tables() == ""
