"""Adding or replacing items of a YAML document's top-level lists by editing its text.

Everything setup does not change keeps its bytes: comments, quoting, anchors, key order,
indentation, line endings, a byte-order mark. A YAML library's round trip cannot promise that
(a value quoted by one reader comes back plain from another, and kubectl then reads another
type: see goyaml.py), so the new items are spliced into the text at positions the parser
reports, rendered so that every reader agrees on them (goyaml.scalar).

After the splice the result is read again as kubectl reads it and must equal the old document
with exactly these items added or replaced; a document this cannot edit (a list reached
through an alias or a merge key, an anchor someone else refers to) raises NotEditable, and
nothing is written.

Pure: text in, text out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from . import goyaml


class NotEditable(ValueError):
    """The document is written in a form this module does not edit."""


@dataclass(frozen=True)
class Edit:
    section: str  # a key of the root mapping whose value is a list
    item: dict[str, Any]
    index: int | None = None  # None: append; else replace that item of the list


@dataclass
class _Splice:
    start: int
    end: int
    text: str
    newline_first: bool = False  # the text ends without a newline: start a line first


@dataclass
class _Node:
    kind: str  # scalar, alias, seq, map
    start: int
    end: int = 0  # where its content ends (a block collection: its last child's end)
    opener: int = 0  # a flow collection: just after its [ or {
    flow: bool = False
    value: str | None = None
    plain: bool = False
    items: list[_Node] = field(default_factory=list)  # a map: key, value, key, value ...


def _tree(text: str) -> _Node | None:
    """The root node of the (single) document, with the text positions of every node."""
    stack: list[_Node] = []
    root: list[_Node] = []
    for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        node = None
        if isinstance(event, yaml.ScalarEvent):
            node = _Node("scalar", event.start_mark.index, event.end_mark.index,
                         value=event.value, plain=bool(event.implicit[0]))
        elif isinstance(event, yaml.AliasEvent):
            node = _Node("alias", event.start_mark.index, event.end_mark.index)
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            kind = "seq" if isinstance(event, yaml.SequenceStartEvent) else "map"
            opened = _Node(kind, event.start_mark.index, opener=event.end_mark.index,
                           flow=bool(event.flow_style))
            stack.append(opened)
            continue
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            node = stack.pop()
            if node.flow or not node.items:
                node.end = event.end_mark.index
            else:
                node.end = node.items[-1].end
        if node is not None:
            (stack[-1].items if stack else root).append(node)
    return root[0] if root else None


def _entry(root: _Node, name: str) -> tuple[_Node, _Node] | None:
    """The last `name: value` pair of a mapping (the one Go and PyYAML keep)."""
    found = None
    for key_node, value in zip(root.items[::2], root.items[1::2], strict=True):
        if key_node.kind == "scalar" and (
                key_node.value == name if not key_node.plain
                else goyaml.plain_value(key_node.value or "") == name):
            found = key_node, value
    return found


def _column(text: str, index: int) -> int:
    return index - (text.rfind("\n", 0, index) + 1)


def _block(value: dict[str, Any], indent: int) -> list[str]:
    """A mapping in block style, each line indented by `indent`."""
    lines = []
    pad = " " * indent
    for name, item in value.items():
        label = goyaml.key(str(name))
        if isinstance(item, dict) and item:
            lines.append(f"{pad}{label}:")
            lines += _block(item, indent + 2)
        elif isinstance(item, list) and any(isinstance(v, (dict, list)) and v for v in item):
            lines.append(f"{pad}{label}:")
            for element in item:
                lines += _sequence_item(element, indent)
        else:
            lines.append(f"{pad}{label}: {goyaml.scalar(item)}")
    return lines


def _sequence_item(value: Any, dash: int) -> list[str]:
    """`- value`, the dash at column `dash` (kubectl's layout: the dash under its key)."""
    if isinstance(value, dict) and value:
        lines = _block(value, dash + 2)
        lines[0] = " " * dash + "- " + lines[0][dash + 2:]
        return lines
    return [" " * dash + "- " + goyaml.scalar(value)]


def item_lines(item: dict[str, Any]) -> list[str]:
    """`item` as one block-style list item, the way setup writes it."""
    return _sequence_item(item, 0)


def _dash_column(text: str, seq: _Node) -> int:
    first = seq.items[0].start
    line = text[text.rfind("\n", 0, first) + 1:first]
    return line.rfind("-") if "-" in line else _column(text, first)


def _splices(text: str, root: _Node | None, edits: list[Edit], nl: str) -> list[_Splice]:
    if root is None:  # empty, or only comments
        sections: dict[str, list] = {}
        for edit in edits:
            sections.setdefault(edit.section, []).append(edit.item)
        lines = ["apiVersion: v1", "kind: Config"]
        for section, items in sections.items():
            lines.append(f"{goyaml.key(section)}:")
            for item in items:
                lines += _sequence_item(item, 0)
        return [_at_line_after(text, len(text), nl, lines)]
    if root.kind != "map":
        raise NotEditable("the document is not a mapping")
    if len({edit.section for edit in edits}) != len(edits):
        raise ValueError("one edit per list")
    splices = []
    for edit in edits:
        splices += _splice(text, root, edit, nl)
        if root.flow and not root.items and _entry(root, edit.section) is None:
            # `{}` holds a key now: the next one added there goes after a comma
            root.items = [_Node("scalar", root.opener, root.opener)] * 2
    return splices


def _at_line_after(text: str, index: int, nl: str, lines: list[str]) -> _Splice:
    """New lines after the line holding `index` (after a comment there)."""
    if index > 0 and text[index - 1] == "\n":
        at, lead = index, False
    else:
        end = text.find("\n", index)
        at, lead = (end + 1, False) if end >= 0 else (len(text), bool(text))
    return _Splice(at, at, nl.join(lines) + nl, lead)


def _splice(text: str, root: _Node, edit: Edit, nl: str) -> list[_Splice]:
    entry = _entry(root, edit.section)
    if entry is None:  # a new top-level key
        if root.flow:
            new = f"{goyaml.quote(edit.section)}: {goyaml.scalar([edit.item])}"
            if root.items:
                at = root.items[-1].end
                return [_Splice(at, at, ", " + new)]
            return [_Splice(root.opener, root.opener, new)]
        column = _column(text, root.items[0].start)
        lines = [" " * column + f"{goyaml.key(edit.section)}:",
                 *_sequence_item(edit.item, column)]
        return [_at_line_after(text, root.end, nl, lines)]
    key_node, seq = entry
    if seq.kind == "scalar" and seq.plain and goyaml.plain_value(seq.value or "") is None:
        # `users: null` (kubectl writes that) or `users:`: the list replaces the null
        if root.flow:
            return [_Splice(seq.start, seq.end, goyaml.scalar([edit.item]))]
        start = seq.start
        while start > key_node.end and text[start - 1] in " \t":
            start -= 1
        lines = _sequence_item(edit.item, _column(text, key_node.start))
        return [_Splice(start, seq.end, ""), _at_line_after(text, seq.end, nl, lines)]
    if seq.kind != "seq":
        raise NotEditable(f"{edit.section} is not written as a list here (an alias or another "
                          "form)")
    if edit.index is not None:
        old = seq.items[edit.index]
        if seq.flow:
            return [_Splice(old.start, old.end, goyaml.scalar(edit.item))]
        column = _column(text, old.start)
        lines = _block(edit.item, column)
        lines[0] = lines[0][column:]
        return [_Splice(old.start, old.end, nl.join(lines))]
    if seq.flow:
        if seq.items:
            at = seq.items[-1].end
            return [_Splice(at, at, ", " + goyaml.scalar(edit.item))]
        return [_Splice(seq.opener, seq.opener, goyaml.scalar(edit.item))]
    lines = _sequence_item(edit.item, _dash_column(text, seq))
    return [_at_line_after(text, seq.end, nl, lines)]


def expected(doc: Any, edits: list[Edit]) -> dict[str, Any]:
    """The document kubectl should read after the edits (pure, on goyaml.load's output)."""
    result = dict(doc) if isinstance(doc, dict) else {"apiVersion": "v1", "kind": "Config"}
    for edit in edits:
        items = list(result.get(edit.section) or [])
        if edit.index is None:
            items.append(edit.item)
        else:
            items[edit.index] = edit.item
        result[edit.section] = items
    return goyaml.to_json(result)


def apply(text: str, edits: list[Edit], doc: Any = None) -> str:
    """`text` with the edits made; raises NotEditable, and yaml.YAMLError for a text that
    does not parse. `doc`: goyaml.load(text), where the caller has it already."""
    bom = text[:1] == "\ufeff"
    body = text[1:] if bom else text
    nl = "\r\n" if "\r\n" in body else "\n"
    root = _tree(body)
    splices = _splices(body, root, edits, nl)
    if any(s.newline_first for s in splices):  # once, before the first of them
        first = min((s for s in splices if s.newline_first), key=lambda s: s.start)
        first.text = nl + first.text
    # from the end, so that earlier positions stay right; at one position, the first edit's
    # text goes first
    order = sorted(range(len(splices)), key=lambda i: (splices[i].start, i), reverse=True)
    for i in order:
        splice = splices[i]
        body = body[:splice.start] + splice.text + body[splice.end:]
    result = ("\ufeff" if bom else "") + body
    want = expected(goyaml.load(text) if doc is None else doc, edits)
    try:
        got = goyaml.load(result)
    except (yaml.YAMLError, goyaml.NotJSON) as exc:
        raise NotEditable(f"the edit would not read back ({exc})") from None
    if got != want:
        raise NotEditable("an edit there would change more than the entries setup writes (an "
                          "anchor or merge key shares them)")
    return result
