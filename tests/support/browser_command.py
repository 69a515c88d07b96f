"""A stand-in for the user's browser, run by cred-helper through `$BROWSER`: it opens the
login URL with ScriptedBrowser, signs in, consents, and follows the provider's redirect to
cred-helper's loopback listener, as a person clicking through would.

Environment: SCRIPTED_LOGIN (account, default alice), SCRIPTED_DENY=1 to press Cancel,
SCRIPTED_LOG (a file: the URL opened, the last page's text, then every URL visited, for the
test to read), SCRIPTED_WAIT_FOR (a file: start only once it exists, as a slow browser would).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.oidc_provider import ScriptedBrowser


def main() -> None:
    url = sys.argv[-1]  # earlier arguments only mark this browser (for a test's attacker)
    wait_for = os.environ.get("SCRIPTED_WAIT_FOR")
    deadline = time.monotonic() + 60
    while wait_for and not os.path.exists(wait_for) and time.monotonic() < deadline:
        time.sleep(0.05)
    browser = ScriptedBrowser(os.environ.get("SCRIPTED_LOGIN", "alice"),
                              deny=os.environ.get("SCRIPTED_DENY") == "1")
    try:
        outcome = browser.approve(url)
    except Exception as exc:  # recorded for the test, which fails on its own terms
        outcome = f"browser failed: {exc!r}"
    log = os.environ.get("SCRIPTED_LOG")
    if log:
        visited = "\n".join(browser.visited)
        Path(log).write_text(f"{url}\n{' '.join(outcome.split())}\n{visited}\n")


if __name__ == "__main__":
    main()
