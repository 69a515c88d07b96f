"""The open sessions (one per authenticated SSH connection) and when each must end. Pure
bookkeeping: the server adds and removes sessions, feeds in request changes and the time, and
carries out the endings this returns (a one-line notice on each open command, then the
connection closed).

A session ends when its request is denied, deleted, re-signed or changed (the watch's news
goes through access.ended), at the end of its certificate or request, or after `idle`
seconds without a byte either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..accessrequest import AccessRequest, format_time
from .access import Access, ended


@dataclass(eq=False)
class Session:
    id: str
    access: Access
    client: str  # the peer's address
    started: float
    last_activity: float
    channels: int = 0  # open at this moment: commands and forwarded connections
    commands: int = 0  # run so far
    bytes_in: int = 0
    bytes_out: int = 0
    ending: str = ""  # why it is ending, once it is
    # One entry per running command: tells it (with a line for the person) to stop.
    stoppers: set[Callable[[str], None]] = field(default_factory=set)
    # Returns once the connection's socket takes more: what a command or a forwarded
    # connection sends waits on it, so a client that stops reading (whatever window it
    # grants) leaves the bytes in the pod, not in the gateway's memory.
    writable: Callable[[], Awaitable[object]] | None = None

    @property
    def person(self) -> str:
        return self.access.spec.username

    def touch(self, now: float, sent: int = 0, received: int = 0) -> None:
        self.last_activity = now
        self.bytes_out += sent
        self.bytes_in += received


class Connections:
    def __init__(self, max_per_person: int, max_channels: int, idle: float) -> None:
        self.max_per_person = max_per_person
        self.max_channels = max_channels
        self.idle = idle
        self._sessions: set[Session] = set()

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self):
        return iter(list(self._sessions))

    def of_person(self, person: str) -> int:
        return sum(1 for s in self._sessions if s.person == person)

    def add(self, session: Session) -> str:
        """"" when the session is in; else why not (the person's limit)."""
        if self.of_person(session.person) >= self.max_per_person:
            return (f"{session.person} already has {self.max_per_person} open sessions "
                    "(the gateway's --max-sessions-per-person)")
        self._sessions.add(session)
        return ""

    def remove(self, session: Session) -> None:
        self._sessions.discard(session)

    def open_channel(self, session: Session) -> str:
        """"" when one more channel may open on the session; else why not."""
        if session.ending:
            return session.ending
        if session.channels >= self.max_channels:
            return (f"this connection already has {self.max_channels} open channels "
                    "(the gateway's --max-channels)")
        session.channels += 1
        return ""

    def close_channel(self, session: Session) -> None:
        session.channels = max(0, session.channels - 1)

    def changed(self, name: str, request: AccessRequest | None, now: float
                ) -> list[tuple[Session, str]]:
        """The sessions of request `name` that must end now that it reads `request` (None:
        deleted or unreadable), with the reason."""
        return [(s, reason) for s in self._sessions
                if s.access.request == name and not s.ending
                and (reason := ended(s.access, request, now))]

    def synced(self, requests: dict[str, AccessRequest | None], now: float
               ) -> list[tuple[Session, str]]:
        """After a full list: every session whose request is missing or changed."""
        return [(s, reason) for s in self._sessions if not s.ending
                and (reason := ended(s.access, requests.get(s.access.request), now))]

    def due(self, now: float) -> list[tuple[Session, str]]:
        """Sessions past their end, or idle for too long."""
        out = []
        for s in self._sessions:
            if s.ending:
                continue
            if now >= s.access.ends_at:
                out.append((s, f"access request {s.access.request} ended at "
                               f"{format_time(s.access.ends_at)}"))
            elif now - s.last_activity >= self.idle:
                out.append((s, f"idle for {int(self.idle)} s (the gateway's --idle-timeout)"))
        return out
