"""The pages outside the site (README, CONTRIBUTING, CHANGELOG) hold to what the site's strict
build holds docs/ to: every relative link reaches a file, and every anchor a heading. And the
facts the pages copy stay the facts: the layout names every module, the README stays a short
front page, the starter policy shown is the one shipped."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from markdown.extensions.toc import slugify

from tests.support import doccommands, policies

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """The ids the site (Python-Markdown's toc) gives the page's headings."""
    found: set[str] = set()
    for block_free in _outside_fences(page.read_text()):
        if (head := re.match(r"^#{1,6} (.*?)\s*$", block_free)) is not None:
            text = re.sub(r"[`*]", "", head.group(1))
            slug, n = slugify(text, "-"), 1
            while slug in found:  # repeated headings get _1, _2, as toc numbers them
                slug = f"{slugify(text, '-')}_{n}"
                n += 1
            found.add(slug)
    return found


def _outside_fences(text: str) -> list[str]:
    lines, inside = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
        elif not inside:
            lines.append(line)
    return lines


def test_the_top_pages_links_reach_files_and_headings():
    broken = []
    for name in doccommands.TOP_PAGES:
        page = ROOT / name
        if not page.exists():
            continue
        for line in _outside_fences(page.read_text()):
            for target in LINK.findall(line):
                if re.match(r"^[a-z]+:", target):
                    continue  # https:, mailto:: not ours to check
                path, _, anchor = target.partition("#")
                file = (page.parent / path) if path else page
                if not file.exists():
                    broken.append(f"{name}: {target} (no such file)")
                elif anchor and anchor not in anchors(file):
                    broken.append(f"{name}: {target} (no such heading)")
    assert not broken, broken


def test_a_missing_heading_is_caught(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# Set up a cluster\n\n## What happens next: the first kubectl waits\n"
                    "```sh\n# not a heading\n```\n")
    assert anchors(page) == {"set-up-a-cluster", "what-happens-next-the-first-kubectl-waits"}


def test_the_readme_is_a_short_front_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 170
    for section in ("## Quick start", "## Everyday commands", "## Documentation",
                    "## The two commands"):
        assert section in readme


def test_the_layout_names_every_module():
    """CONTRIBUTING.md's layout: every module of cred_helper/ under its package, every
    benchmark, every test support module."""
    layout = doccommands.block("CONTRIBUTING.md", "Layout", "text").text
    sections: dict[str, str] = {}
    current = ""
    for line in layout.splitlines():
        if (top := re.match(r"^(\S+/)", line)) is not None:
            current = top.group(1)
        elif (sub := re.match(r"^  ([a-z_]+/)", line)) is not None \
                and current.startswith("cred_helper/"):
            current = "cred_helper/" + sub.group(1)
        elif re.match(r"^  \S", line) and current.startswith("cred_helper/"):
            current = "cred_helper/"
        sections[current] = sections.get(current, "") + line + "\n"
    missing = []
    for path in sorted((ROOT / "cred_helper").rglob("*.py")):
        if path.name == "__init__.py":
            continue
        where = path.parent.relative_to(ROOT).as_posix() + "/"
        if path.name not in sections.get(where, ""):
            missing.append(path.relative_to(ROOT).as_posix())
    for folder in ("bench", "tests/support"):
        for path in sorted((ROOT / folder).glob("*.py")):
            if path.name != "__init__.py" and path.name not in layout:
                missing.append(path.relative_to(ROOT).as_posix())
    assert not missing, f"CONTRIBUTING.md's layout does not name {missing}"


def test_the_starter_policy_shown_is_the_one_shipped():
    shown = doccommands.block("docs/admin/policy.md", "The starter policy", "yaml").text
    assert shown == policies.starter()


def test_the_annotated_policy_differs_from_step_two_only_as_the_page_says():
    """Its break-glass rule is step 2's; its oncall rule is step 2's with PIN and touch
    policies added; the rest (a no-bots rule, max-age, a key-hash registry entry) is extra."""
    shown = {r["name"]: r for r in yaml.safe_load(policies.documented())["rules"]}
    shipped = {r["name"]: r for r in yaml.safe_load(policies.step_two())["rules"]}
    assert set(shown) == {*shipped, "no-bots"}
    assert shown["break-glass"] == shipped["break-glass"]
    oncall = dict(shown["oncall"])
    assert oncall.pop("pin-policies") and oncall.pop("touch-policies")
    assert oncall == shipped["oncall"]


def test_no_message_sends_a_reader_to_the_readmes_old_sections():
    """Hints and packaged comments name the docs page that now holds what they point at."""
    stale = [f"{path.relative_to(ROOT)}:{n}" for folder in ("cred_helper", "packaging", "bin")
             for path in (ROOT / folder).rglob("*") if path.is_file()
             and path.suffix in ("", ".py", ".yaml", ".rb")
             for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
             if "README" in line and not line.startswith("COPY ")]  # the image's own copy
    assert not stale, stale
