"""Opening a URL in the user's browser, without letting the browser near our stdout.

The standard `webbrowser` module runs browsers with our stdout, which belongs to kubectl (one
ExecCredential and nothing else), and waits for some of them to exit. So the command is chosen
here, the way `webbrowser` and xdg-utils choose it, and started detached with its output
discarded.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping


def browser_command(url: str, env: Mapping[str, str], platform: str = sys.platform
                    ) -> list[str] | None:
    """The command that opens `url`, or None where no browser can open (an SSH session, a
    container, a machine without a desktop)."""
    for entry in env.get("BROWSER", "").split(os.pathsep):
        # $BROWSER: a list of commands, `%s` standing for the URL (as webbrowser reads it).
        words = shlex.split(entry) if entry.strip() else []
        if words and shutil.which(words[0], path=env.get("PATH")):
            if any("%s" in w for w in words):
                return [w.replace("%s", url) for w in words]
            return [*words, url]
    if platform == "darwin":
        return ["open", url]
    if platform.startswith(("linux", "freebsd", "openbsd")) and (
            env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        opener = shutil.which("xdg-open", path=env.get("PATH"))
        return [opener, url] if opener else None
    return None


def can_open(env: Mapping[str, str]) -> bool:
    return browser_command("about:blank", env) is not None


def open_url(url: str, env: Mapping[str, str]) -> bool:
    """Start the browser on `url`; False when none could be started."""
    command = browser_command(url, env)
    if command is None:
        return False
    try:
        subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, env=dict(env))
    except OSError:
        return False
    return True
