"""A private D-Bus session with gnome-keyring's Secret Service, unlocked, for keyring tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def secret_service(home: str) -> Iterator[dict[str, str]]:
    """Environment variables that point a process at a fresh, unlocked keyring."""
    out = subprocess.run(["dbus-daemon", "--session", "--fork", "--print-address=1",
                          "--print-pid=1"], capture_output=True, text=True, check=True)
    address, pid = out.stdout.split("\n")[:2]
    env = {"DBUS_SESSION_BUS_ADDRESS": address.strip(), "HOME": home,
           "PATH": os.environ.get("PATH", "")}
    keyring = subprocess.run(["gnome-keyring-daemon", "--unlock", "--components=secrets"],
                             input="test-only-password", capture_output=True, text=True,
                             env=env, check=True)
    keyring_pid = next((line.split("=", 1)[1] for line in keyring.stdout.splitlines()
                        if line.startswith("GNOME_KEYRING_PID=")), None)
    time.sleep(0.3)
    try:
        yield {"DBUS_SESSION_BUS_ADDRESS": env["DBUS_SESSION_BUS_ADDRESS"]}
    finally:
        for p in (keyring_pid, pid):
            if p:
                try:
                    os.kill(int(p), signal.SIGTERM)
                except (ProcessLookupError, ValueError):
                    pass
