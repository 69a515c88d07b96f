"""The documentation as tests read it: its pages, their sections by heading, their fenced
blocks, and the commands of each ```sh block as a person would type them.

A test that runs a page's commands takes them from the page with `block(page, heading)`, so
that what it runs is what the page shows; tests/docs/test_commands.py finds those calls and
fails for any ```sh block that no test takes and that is not listed as not runnable here."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOP_PAGES = ("README.md", "CONTRIBUTING.md", "CHANGELOG.md")
# a fence's language says what it holds: commands to type (sh), output (text), files, diagrams
LANGUAGES = frozenset({"sh", "text", "yaml", "toml", "json", "mermaid", "python", "ini"})

_FENCE = re.compile(r"^(\s*)(`{3,})(.*)$")
_HEADING = re.compile(r"^(#{1,6}) (.*?)\s*$")
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")


def pages() -> list[str]:
    """Every page, as a path relative to the checkout."""
    found = [p for p in TOP_PAGES if (ROOT / p).exists()]
    found += sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))
    return found


@dataclass(frozen=True)
class Block:
    page: str
    heading: str  # the nearest heading above it, as written (without the #s)
    lang: str
    text: str
    line: int  # of its opening fence, 1-based

    @property
    def commands(self) -> list[str]:
        """The commands of an sh block: a line ending in a backslash goes on, a heredoc's body
        belongs to its command, and a line that is only a comment is dropped."""
        out: list[str] = []
        lines = self.text.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            i += 1
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            command = line
            while command.endswith("\\") and i < len(lines):
                command = command[:-1].rstrip() + " " + lines[i].strip()
                i += 1
            for _, marker in _HEREDOC.findall(command):
                while i < len(lines):
                    command += "\n" + lines[i]
                    i += 1
                    if lines[i - 1].strip() == marker:
                        break
            out.append(command)
        return out

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line} ({self.heading})"


def blocks(page: str) -> list[Block]:
    """The fenced blocks of one page, in order."""
    found: list[Block] = []
    heading = ""
    fence: tuple[str, str, int, list[str], str] | None = None
    for number, line in enumerate((ROOT / page).read_text().splitlines(), 1):
        match = _FENCE.match(line)
        if fence is not None:
            indent, ticks, start, body, lang = fence
            if match and match.group(2) == ticks and not match.group(3).strip():
                found.append(Block(page, heading, lang, "\n".join(body) + "\n", start))
                fence = None
            else:
                body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            continue
        if match:
            info = match.group(3).strip()
            lang = info.split()[0] if info else ""
            fence = (match.group(1), match.group(2), number, [], lang)
            continue
        if (head := _HEADING.match(line)) is not None:
            heading = head.group(2)
    return found


def block(page: str, heading: str, lang: str = "sh", index: int = 0) -> Block:
    """The `index`-th block in `lang` under `heading` on `page` (before the next heading)."""
    matching = [b for b in blocks(page) if b.heading == heading and b.lang == lang]
    assert len(matching) > index, f"{page} has no {lang} block {index} under {heading!r}"
    return matching[index]


def section(page: str, heading: str) -> str:
    """The text under a heading, up to the next heading of the same or a higher level."""
    lines = (ROOT / page).read_text().splitlines()
    for i, line in enumerate(lines):
        head = _HEADING.match(line)
        if head and head.group(2) == heading:
            level = len(head.group(1))
            end = next((j for j in range(i + 1, len(lines))
                        if (h := _HEADING.match(lines[j])) and len(h.group(1)) <= level
                        and not _in_fence(lines, j)), len(lines))
            return "\n".join(lines[i + 1:end]) + "\n"
    raise AssertionError(f"{page} has no heading {heading!r}")


def _in_fence(lines: list[str], j: int) -> bool:
    ticks = 0
    for line in lines[:j]:
        if _FENCE.match(line):
            ticks += 1
    return ticks % 2 == 1


def run(command: str, *, cwd: Path, env: dict[str, str], replace: dict[str, str] | None = None,
        timeout: float = 120, stdin: str = "") -> subprocess.CompletedProcess:
    """One command as a person types it into bash, with `replace` applied first (the page's
    example server becomes the test's own, say); stdout and stderr are captured."""
    for old, new in (replace or {}).items():
        command = command.replace(old, new)
    return subprocess.run(["bash", "-c", "set -euo pipefail\n" + command], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, input=stdin)
