"""connections.py: the limits, and which sessions end on which news."""

from __future__ import annotations

from cred_helper import accessrequest as ar
from cred_helper.gateway.access import admit
from cred_helper.gateway.connections import Connections, Session
from tests.unit.gateway.test_access import CAS, NOW, parsed


def session(sid: str, now: float = NOW) -> Session:
    return Session(id=sid, access=admit(parsed(), CAS, now), client="127.0.0.1:1",
                   started=now, last_activity=now)


def test_sessions_per_person_and_channels_per_connection():
    conns = Connections(max_per_person=2, max_channels=2, idle=60)
    first, second, third = session("a"), session("b"), session("c")
    assert conns.add(first) == conns.add(second) == ""
    assert "already has 2 open sessions" in conns.add(third)
    assert len(conns) == 2 and conns.of_person("alice@example.com") == 2
    conns.remove(first)
    assert conns.add(third) == ""
    assert conns.open_channel(second) == conns.open_channel(second) == ""
    assert "already has 2 open channels" in conns.open_channel(second)
    conns.close_channel(second)
    assert conns.open_channel(second) == ""
    second.ending = "denied"
    assert conns.open_channel(second) == "denied"


def test_news_ends_the_sessions_of_that_request_only():
    conns = Connections(4, 4, 60)
    mine = session("a")
    conns.add(mine)
    assert conns.changed("ar-other", None, NOW) == []
    assert conns.changed(mine.access.request, parsed(), NOW) == []
    (ended,) = conns.changed(mine.access.request, None, NOW)
    assert ended[0] is mine and "was deleted" in ended[1]
    assert [s for s, _ in conns.synced({}, NOW)] == [mine]  # missing from a full list
    mine.ending = "was deleted"
    assert conns.synced({}, NOW) == []  # told once


def test_the_end_and_idleness():
    conns = Connections(4, 4, idle=60)
    mine = session("a")
    conns.add(mine)
    assert conns.due(NOW + 59) == []
    mine.touch(NOW + 59, sent=10, received=3)
    assert (mine.bytes_out, mine.bytes_in) == (10, 3)
    assert conns.due(NOW + 100) == []
    ((who, why),) = conns.due(NOW + 119)
    assert who is mine and "idle for 60 s" in why
    ((who, why),) = conns.due(NOW + 1800)
    assert f"ended at {ar.format_time(NOW + 1800)}" in why
