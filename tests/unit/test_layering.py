"""The three in-cluster programs (broker, janitor, gateway) sit beside each other on top of the
plugin's layers: no arrow runs from the plugin side, or from a sibling, up into one of them.
What they share (the connection rule, the attestation proof's wire format) lives below them.
cli.py is the one exception: it starts each program, lazily."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "cred_helper"
PROGRAMS = ("broker", "janitor", "gateway")


def _imported_modules(source: str, here: tuple[str, ...]) -> set[str]:
    """Every cred_helper module a file imports, as a dotted name relative to the package;
    `here` is the file's own place in it, e.g. ("keys", "attest")."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name.removeprefix("cred_helper.") for a in node.names
                         if a.name.startswith("cred_helper."))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if not (node.module or "").startswith("cred_helper"):
                    continue
                base = (node.module or "").split(".")[1:]
            else:
                base = list(here[:len(here) - node.level]) + (node.module or "").split(".")
                base = [part for part in base if part]
            if not node.module:
                names.update(".".join([*base, a.name]) for a in node.names)
            else:
                names.add(".".join(base))
    return names


def _program_of(dotted: str) -> str | None:
    first = dotted.split(".", 1)[0]
    return first if first in PROGRAMS else None


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.stat().st_size)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_reaches_up_into_a_program_it_is_not_part_of(path):
    if path.relative_to(PACKAGE).as_posix() == "cli.py":
        return
    own = _program_of(path.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", "."))
    here = path.relative_to(PACKAGE).with_suffix("").parts
    reached = {name for name in _imported_modules(path.read_text(), here)
               if _program_of(name) not in (None, own)}
    assert not reached, f"{path.relative_to(PACKAGE)} imports {sorted(reached)}"


def test_the_rule_sees_each_way_of_importing_a_program():
    """The check itself can fail."""
    source = ("from ..broker import verdict\nfrom ..broker.facts import x\n"
              "import cred_helper.janitor.run\nfrom cred_helper.gateway import grant\n"
              "from .. import attestproof\n")
    found = _imported_modules(source, ("keys", "attest"))
    assert {"broker", "broker.facts", "janitor.run", "gateway", "attestproof"} <= found
    assert {_program_of(name) for name in found} == {"broker", "janitor", "gateway", None}
