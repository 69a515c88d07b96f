"""Every diagram the docs draw parses with mermaid's own parser (the pinned `mermaid` package
in tests/support/mermaid, run by Node under jsdom): a diagram that would not render on the
site fails here instead. The flows the docs must draw are drawn."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import doccommands

PARSER = Path(__file__).resolve().parents[1] / "support" / "mermaid"


def parse(sources: list[str]) -> list[str | None]:
    node = shutil.which("node")
    if node is None or not (PARSER / "node_modules").is_dir():
        pytest.fail("no Node.js or no tests/support/mermaid/node_modules: run scripts/setup")
    done = subprocess.run([node, str(PARSER / "parse.mjs")], input=json.dumps(sources),
                          capture_output=True, text=True, timeout=120, cwd=PARSER)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def diagrams() -> list[doccommands.Block]:
    return [b for page in doccommands.pages() for b in doccommands.blocks(page)
            if b.lang == "mermaid"]


def test_every_diagram_parses():
    found = diagrams()
    results = parse([b.text for b in found])
    errors = {b.where: error for b, error in zip(found, results, strict=True)
              if error is not None}
    assert not errors, errors


def test_a_broken_diagram_is_caught():
    ok, broken = parse(["flowchart TD\n    a --> b\n", "flowchart TD\n    a --> {b\n"])
    assert ok is None
    assert broken is not None and "Parse error" in broken


def test_the_flows_a_reader_looks_at_are_drawn():
    """Issuance with its approval wait, renewal inside the margin, the broker's decision, the
    janitor's pass, an access request and a session through the gateway: each a diagram on
    its page."""
    where = {(b.page, b.heading) for b in diagrams()}
    assert ("docs/setup.md", "What happens next: the first kubectl waits for an approver") in where
    assert ("docs/reference/behaviour.md", "Renewal") in where
    assert ("docs/admin/policy.md", "How the broker decides") in where
    assert ("docs/admin/janitor.md", "One pass, and what spares a pod") in where
    assert ("docs/access-requests.md", "Access requests and SSH certificates") in where
    assert ("docs/ssh-gateway.md", "The SSH gateway") in where
