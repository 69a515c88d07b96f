"""What the code and the manifests point people at stays there: every `docs/PAGE.md` a message,
hint or comment names is a page, and `docs/PAGE.md: Section` names one of its headings (the
README's sections moved to docs/, and a hint that names a section nobody can find helps no
one)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POINTER = re.compile(r"docs/([A-Za-z0-9_/.-]+\.md)(?:: ([A-Z][^)\"\n]*))?")


def headings(page: Path) -> list[str]:
    return [re.sub(r"[`*]", "", m.group(1)).strip()
            for m in re.finditer(r"^#{1,6} (.*)$", page.read_text(), re.M)]


def pointers() -> list[tuple[str, str, str]]:
    """(where, page, section or "") for each pointer in cred_helper/ and packaging/."""
    found = []
    for base in ("cred_helper", "packaging"):
        for path in sorted((ROOT / base).rglob("*")):
            if not path.is_file() or path.suffix not in (".py", ".yaml", "") \
                    or "__pycache__" in path.parts:
                continue
            try:
                text = path.read_text()
            except UnicodeDecodeError:
                continue
            # A section name may be cut where a string literal wraps: its first line is kept.
            for m in POINTER.finditer(text):
                where = f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}"
                found.append((where, m.group(1), (m.group(2) or "").rstrip(" .,;")))
    return found


def test_every_page_and_section_the_code_names_is_there():
    broken = []
    for where, page, section in pointers():
        file = ROOT / "docs" / page
        if not file.exists():
            broken.append(f"{where}: docs/{page} (no such page)")
        elif section and not any(h.startswith(section) for h in headings(file)):
            broken.append(f"{where}: docs/{page}: {section} (no such heading)")
    assert not broken, broken


def test_the_pointers_are_found():
    """The check itself can fail: it sees the hints that name a section."""
    found = {(page, section) for _, page, section in pointers() if section}
    assert ("admin/rbac.md", "The requesters' role") in found
    assert any(page == "setup.md" and "A kubeconfig entry by hand".startswith(section)
               for page, section in found)
