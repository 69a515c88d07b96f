"""The gateway under load and under attack: 20 people's sessions complete while a hostile client
(holding a valid certificate, and anonymous ones) opens many channels, sends huge lines and
garbage; seeded hostile command lines never run anything outside the grant and never stop the
gateway. The hostile client is asyncssh's, which can send what OpenSSH's `ssh` will not (NUL
bytes and newlines inside a command, any number of channels)."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from cred_helper.gateway.sshlib import asyncssh
from tests.support import gateway as gw

pytestmark = pytest.mark.realcluster


@pytest.fixture(scope="module")
def world(gateway_world):
    return gateway_world


async def _hostile(world, key: gw.Key, login: str, stop: threading.Event) -> dict:
    """Many channels, huge and broken lines, then garbage, in a loop until told to stop."""
    seen = {"refused_channels": 0, "huge": 0, "garbage": 0, "rounds": 0}
    while not stop.is_set():
        async with await gw.connect(world.gateway, key, login) as conn:
            async def open_one():
                try:
                    chan, _ = await conn.create_session(asyncssh.SSHClientSession,
                                                        "exec api-1 -- sleep 2")
                    return chan
                except asyncssh.ChannelOpenError:
                    seen["refused_channels"] += 1
                    return None
            channels = await asyncio.gather(*(open_one() for _ in range(40)))
            for chan in channels:
                if chan is not None:
                    chan.close()
                    await chan.wait_closed()
            await asyncio.sleep(0.5)  # the gateway counts them closed
            done = await conn.run("exec api-1 -- echo " + "x" * 30000, check=False)
            assert done.exit_status == 2 and "longer than 4096 bytes" in done.stderr
            seen["huge"] += 1
        # Garbage after the handshake's first line: the gateway drops only this connection.
        with socket.create_connection(("127.0.0.1", world.gateway.port), timeout=10) as s:
            s.recv(100)
            s.sendall(b"SSH-2.0-hostile\r\n" + os.urandom(4096) + b"\x00" * 65536)
            s.settimeout(10)
            try:
                while s.recv(4096):
                    pass
            except (ConnectionResetError, TimeoutError):
                pass
            seen["garbage"] += 1
        seen["rounds"] += 1
    return seen


def test_twenty_sessions_complete_beside_a_hostile_client(world):
    grant = gw.grant(world.payments, exec_patterns=(("sh", "-c", "*"),))
    people = [gw.person(world.plane, world.directory, f"person{i}@example.com", ["oncall"])
              for i in range(20)]
    requests = [world.request(grant, who=p) for p in people]
    hostile_name, hostile_key = world.request(
        gw.grant(world.payments, exec_patterns=(("sleep", "*"), ("echo", "**"))),
        who=world.bob)
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=21) as pool:
        hostile = pool.submit(asyncio.run, _hostile(world, hostile_key, hostile_name, stop))
        time.sleep(1)

        def session(i: int) -> subprocess.CompletedProcess:
            name, key = requests[i]
            return gw.ssh(world.gateway, key, name, "exec", "api-1", "--", "sh", "-c",
                          f"'read line; echo $line-{i}; sleep 1; echo done-{i}'",
                          stdin=f"hello from {i}\n", timeout=120)

        results = list(pool.map(session, range(20)))
        stop.set()
        seen = hostile.result(timeout=120)
    for i, done in enumerate(results):
        assert (done.returncode, done.stdout) == (0, f"hello from {i}-{i}\ndone-{i}\n"), \
            done.stderr
    assert seen["rounds"] >= 1 and seen["refused_channels"] >= 36 * seen["rounds"]
    # The channel limit (4) held on every round, and the gateway still serves.
    assert world.gateway.proc.poll() is None
    name, key = requests[0]
    assert gw.ssh(world.gateway, key, name, "whoami").returncode == 0


def test_a_persons_sessions_are_limited(world):
    grant = gw.grant(world.payments, exec_patterns=(("sh", "-c", "*"),))
    carol = gw.person(world.plane, world.directory, "carol@example.com", ["oncall"])
    held = []
    try:
        for _ in range(4):  # the default --max-sessions-per-person
            name, key = world.request(grant, who=carol)
            proc = subprocess.Popen(
                gw.ssh_argv(world.gateway, key, name, "exec", "api-1", "--", "sh", "-c",
                            "'echo in; sleep 60'"),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                stdin=subprocess.DEVNULL)
            held.append(proc)
            assert proc.stdout.readline() == "in\n"
        name, key = world.request(grant, who=carol)
        done = gw.ssh(world.gateway, key, name, "whoami")
        assert done.returncode == 255 and "Permission denied" in done.stderr
        line = world.gateway.wait_trail(lambda t: t["kind"] == "session" and
                                        t.get("request") == name)
        assert "carol@example.com already has 4 open sessions" in line["reason"]
    finally:
        for proc in held:
            proc.kill()
            proc.wait()
    # Once those end, carol gets in again.
    deadline = time.monotonic() + 10
    while gw.ssh(world.gateway, key, name, "whoami").returncode != 0:
        assert time.monotonic() < deadline


WORDS = ["echo", "touch", "pwned", "rm", "-rf", "/", "--", "-c", "sh", "'", '"', "\\", ";",
         "&&", "|", "$(touch pwned)", "`touch pwned`", ">pwned", "é", "\u202e", "🙂", "*",
         "api-1", "db-0", "../db-0", "api-1;", "exec", "shell", "logs", "pods", "-f",
         "--tail", "99", "x" * 200, "\t", "  "]


def seeded_lines(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(0, 10))]
        if rng.random() < 0.6:  # most aim at exec, to get past the first checks
            words = ["exec", rng.choice(["api-1", "db-0", "api-2"]), "--", *words]
        line = " ".join(words)
        roll = rng.random()
        if roll < 0.08:
            line += "\x00touch pwned"
        elif roll < 0.14:
            line += "\n touch pwned"
        elif roll < 0.18:
            line += "\x1b]0;pwned\x07"
        elif roll < 0.22:
            line = line * 200
        lines.append(line)
    return lines


async def _run_lines(world, key, login, lines: list[str]) -> list[tuple[str, int | None]]:
    out = []
    async with await gw.connect(world.gateway, key, login) as conn:
        for line in lines:
            try:
                chan, _ = await conn.create_session(asyncssh.SSHClientSession, line,
                                                    encoding=None)
                await asyncio.wait_for(chan.wait_closed(), 30)
                out.append((line, chan.get_exit_status()))
            except asyncssh.ChannelOpenError as exc:
                out.append((line, exc.code))
    return out


def test_seeded_hostile_commands_never_run_outside_the_grant(world):
    grant = gw.grant(world.payments, pods=("api-1",), commands=("exec",),
                     exec_patterns=(("echo", "**"),))
    name, key = world.request(grant)
    results = asyncio.run(_run_lines(world, key, name, seeded_lines(2027, 300)))
    assert len(results) == 300
    codes = {code for _, code in results}
    assert codes <= {0, 2, 126}, codes
    # Nothing but echo ran, and only in api-1: no file appeared in any pod's directory.
    for directory in world.pod_dirs.values():
        assert not list(directory.glob("*pwned*")), list(directory.iterdir())
    allowed = [t for t in world.gateway.trail() if t.get("request") == name and
               t["kind"] == "command" and t["decision"] == "allowed"]
    assert {t["verb"] for t in allowed} <= {"exec", "help", "whoami"}
    execs = [t for t in allowed if t["verb"] == "exec"]
    assert execs and all(t["argv"][0] == "echo" and t["pod"] == "api-1" for t in execs)
    assert world.gateway.proc.poll() is None
    assert gw.ssh(world.gateway, key, name, "exec", "api-1", "--", "echo", "alive").stdout \
        == "alive\n"
