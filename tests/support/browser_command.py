"""A stand-in for the user's browser, run by cred-helper through `$BROWSER`: it opens the
login URL with ScriptedBrowser, signs in, consents, and follows the provider's redirect to
cred-helper's loopback listener, as a person clicking through would.

Environment: SCRIPTED_LOGIN (account, default alice), SCRIPTED_DENY=1 to press Cancel,
SCRIPTED_LOG (a file: the URL opened and the last page's text, for the test to read).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.oidc_provider import ScriptedBrowser


def main() -> None:
    url = sys.argv[1]
    browser = ScriptedBrowser(os.environ.get("SCRIPTED_LOGIN", "alice"),
                              deny=os.environ.get("SCRIPTED_DENY") == "1")
    try:
        outcome = browser.approve(url)
    except Exception as exc:  # recorded for the test, which fails on its own terms
        outcome = f"browser failed: {exc!r}"
    log = os.environ.get("SCRIPTED_LOG")
    if log:
        Path(log).write_text(f"{url}\n{outcome}\n")


if __name__ == "__main__":
    main()
