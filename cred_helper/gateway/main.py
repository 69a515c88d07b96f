"""`cred-helper gateway run`: flags checked and turned into the server's parts (the SSH user CA,
the host keys, the recordings directory, the connection: a kubeconfig, or the pod's service
account in cluster, as the broker and the janitor connect), then served until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import CredHelperError, UsageError, os_reason


@dataclass(frozen=True)
class Options:
    listen: str
    host_keys: tuple[str, ...]
    user_ca: str
    recordings: str
    kubeconfig: str | None
    context: str | None
    max_sessions_per_person: int
    max_channels: int
    max_connections: int
    max_logging_in_per_address: int
    idle_timeout: str
    max_command_length: int
    recording_limit_mib: int
    shell: str


def listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {text!r} is not HOST:PORT", "e.g. --listen 0.0.0.0:2222")
    return host.strip("[]") or "0.0.0.0", int(port)


def run_gateway(options: Options) -> int:
    from importlib.util import find_spec

    if find_spec("asyncssh") is None or find_spec("websockets") is None:
        raise UsageError("the gateway's libraries (asyncssh, websockets) are not installed",
                         "pip install 'cred-helper[gateway]'")
    from ..connect import endpoint as where
    from ..durations import parse_duration
    from .access import ca_keys
    from .connections import Connections
    from .handlers import Context
    from .kubeapi import Cluster
    from .server import Config, Gateway, load_host_keys
    from .trail import Trail

    host, port = listen_address(options.listen)
    try:
        idle = parse_duration(options.idle_timeout)
    except ValueError:
        raise UsageError(f"--idle-timeout: {options.idle_timeout!r} is not a duration",
                         "write it as 90s, 15m or 1h") from None
    for flag, value in (("--max-sessions-per-person", options.max_sessions_per_person),
                        ("--max-channels", options.max_channels),
                        ("--max-connections", options.max_connections),
                        ("--max-logging-in-per-address", options.max_logging_in_per_address),
                        ("--max-command-length", options.max_command_length),
                        ("--recording-limit", options.recording_limit_mib)):
        if value < 1:
            raise UsageError(f"{flag} must be 1 or more")
    try:
        cas = ca_keys(Path(options.user_ca).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--user-ca: cannot read {options.user_ca}: {os_reason(exc)}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"--user-ca {options.user_ca}: {exc}",
                         "give the SSH user CA's public key, one OpenSSH line") from None
    if not options.host_keys:
        raise UsageError("--host-key is required", "ssh-keygen -t ed25519 -f host_key -N ''")
    try:
        host_keys = load_host_keys(options.host_keys)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--host-key: cannot load {', '.join(options.host_keys)}: {exc}",
                         "give an unencrypted OpenSSH private key") from None
    recordings = Path(options.recordings)
    try:
        recordings.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = recordings / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--recordings: cannot write in {recordings}: {os_reason(exc)}",
                         "mount a writable volume there") from None
    endpoint, auth = where(options.kubeconfig, options.context, os.environ)
    if endpoint.proxy_url:
        raise UsageError("the gateway does not go through a proxy-url",
                         "give it a kubeconfig cluster without proxy-url")
    cluster = Cluster(endpoint, auth)
    connections = Connections(options.max_sessions_per_person, options.max_channels, idle)
    context = Context(cluster=cluster, connections=connections, trail=Trail(sys.stdout),
                      recordings=recordings, recording_limit=options.recording_limit_mib << 20,
                      max_command_length=options.max_command_length,
                      shell=tuple(options.shell.split()), clock=time.time)
    config = Config(host=host, port=port, host_keys=host_keys, ca_keys=cas,
                    max_sessions_per_person=options.max_sessions_per_person,
                    max_channels=options.max_channels,
                    max_connections=options.max_connections,
                    max_logging_in_per_address=options.max_logging_in_per_address,
                    idle_timeout=idle)
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    return asyncio.run(_serve(Gateway(config, cluster, context, time.time)))


async def _serve(gateway) -> int:
    loop = asyncio.get_running_loop()
    # API reads run in threads: one per concurrent login or `pods`, beyond the default's 6.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=32))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def ready(port: int) -> None:
        print(f"cred-helper gateway: listening on {gateway.config.host}:{port}",
              file=sys.stderr, flush=True)

    try:
        await gateway.serve(stop, ready)
    except CredHelperError:
        raise
    except OSError as exc:
        raise CredHelperError(f"cannot listen on {gateway.config.host}:{gateway.config.port}: "
                              f"{os_reason(exc)}") from None
    return 0
