"""The SSH server's login bookkeeping, without a network: what each login name costs."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

from cred_helper.gateway.connections import Connections
from cred_helper.gateway.handlers import Context
from cred_helper.gateway.server import MAX_LOGINS, Config, Gateway, _Server
from cred_helper.gateway.trail import Trail


class CountingCluster:
    """Answers every read with "no such request", and counts the reads."""

    def __init__(self) -> None:
        self.reads = 0

    def get_request(self, name: str):
        self.reads += 1
        return None


def test_one_connection_gets_a_few_login_names_and_no_more_reads():
    cluster = CountingCluster()
    ctx = Context(cluster=cluster, connections=Connections(4, 4, 60),  # type: ignore[arg-type]
                  trail=Trail(io.StringIO()), recordings=Path("/nonexistent"),
                  recording_limit=1, max_command_length=10, shell=("sh",), clock=time.time)
    gateway = Gateway(Config("127.0.0.1", 0, (), ()), cluster, ctx, time.time)  # type: ignore[arg-type]
    server = _Server(gateway)
    for i in range(MAX_LOGINS + 5):
        assert asyncio.run(server.begin_auth(f"ar-{i}")) is True
    assert cluster.reads == MAX_LOGINS
    assert server.refusal == f"more than {MAX_LOGINS} login names on one connection"
    assert server.access is None
