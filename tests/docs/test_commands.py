"""Every command the pages show is run by a test, or listed as not runnable here with the
reason (tests/support/doccommands.py, NOT_RUNNABLE).

A test runs a page's commands by taking them from the page: `doccommands.block(PAGE, HEADING
[, lang, index])`. This test finds those calls in the tests' source, and fails for a ```sh
block no test takes whose commands are not all listed, for a listed command no page shows any
more, and for a fence that hides commands from the rule (no language, or bash, console or
shell). Output is ```text."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import doccommands

TESTS = Path(__file__).resolve().parents[1]


def taken_blocks() -> dict[tuple[str, str, int], list[str]]:
    """(page, heading, index) of every sh block some test takes, with the tests taking it."""
    taken: dict[tuple[str, str, int], list[str]] = {}
    for path in TESTS.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name != "block" or len(node.args) < 2:
                continue
            args = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
            keywords = {k.arg: k.value.value for k in node.keywords
                        if isinstance(k.value, ast.Constant)}
            page, heading = args[0], args[1]
            lang = args[2] if len(args) > 2 else keywords.get("lang", "sh")
            index = args[3] if len(args) > 3 else keywords.get("index", 0)
            if isinstance(page, str) and isinstance(heading, str) and lang == "sh":
                where = f"{path.relative_to(TESTS.parent)}:{node.lineno}"
                taken.setdefault((page, heading, index), []).append(where)
    return taken


def sh_blocks() -> dict[tuple[str, str, int], doccommands.Block]:
    found: dict[tuple[str, str, int], doccommands.Block] = {}
    for page in doccommands.pages():
        seen: dict[str, int] = {}
        for block in doccommands.blocks(page):
            if block.lang != "sh":
                continue
            index = seen.get(block.heading, 0)
            seen[block.heading] = index + 1
            found[(page, block.heading, index)] = block
    return found


def test_every_fence_says_what_it_holds():
    bad = [b.where for page in doccommands.pages() for b in doccommands.blocks(page)
           if b.lang not in doccommands.LANGUAGES]
    assert not bad, f"give these fences a language ({sorted(doccommands.LANGUAGES)}): {bad}"


def test_every_command_is_run_by_a_test_or_listed_as_not_runnable():
    taken = taken_blocks()
    untested = {block.where: block.runnable for key, block in sh_blocks().items()
                if block.runnable and key not in taken}
    assert not untested, ("commands no test runs: take them from the page in a test "
                          f"(doccommands.block), or list them in NOT_RUNNABLE: {untested}")


def test_every_test_takes_a_block_that_exists():
    missing = {key: where for key, where in taken_blocks().items() if key not in sh_blocks()}
    assert not missing, missing


def test_no_listed_command_is_stale():
    shown = {c for block in sh_blocks().values() for c in block.commands}
    stale = [c for c in doccommands.NOT_RUNNABLE if c not in shown]
    assert not stale, f"no page shows these any more: {stale}"


def test_a_command_continues_over_lines_heredocs_and_loops():
    block = doccommands.Block("x.md", "x", "sh", (
        "# a comment\n"
        "cred-helper setup --cluster prod \\\n    --issuer csr\n"
        "cat > p.json <<'JSON'\n{\"a\": 1}\nJSON\n"
        "for ns in a b; do\n  echo $ns\ndone\n"
        "scripts/test\n"), 1)
    assert block.commands == ["cred-helper setup --cluster prod --issuer csr",
                              "cat > p.json <<'JSON'\n{\"a\": 1}\nJSON",
                              "for ns in a b; do\n  echo $ns\ndone",
                              "scripts/test"]
    assert block.runnable == block.commands[:3]
