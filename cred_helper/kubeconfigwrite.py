"""Adding a cluster, user and context to kubeconfig files the way kubectl does, without
changing anything else in them.

Which file: an entry that exists goes back into the first file of the list that defines it
(kubectl's merge keeps the first); a new one goes where `kubectl config set-*` writes: the
explicit `--kubeconfig` file, else the first file of `$KUBECONFIG` that exists (the last one
when none does), else ~/.kube/config.

Files are read as kubectl reads them (goyaml.py) and edited as text (yamledit.py): what setup
does not change keeps its bytes, comments and quoting included. An entry setup replaces is
replaced whole with `--overwrite`; without it, one that runs cred-helper is updated (the fields
setup sets change, the rest stay), and any other that differs is refused.

`plan` is pure (documents in, edits out); `load_files` reads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import atomicfile, goyaml, yamledit
from .errors import UsageError
from .kubeconfig import MAX_FILE

SECTIONS = {"clusters": "cluster", "users": "user", "contexts": "context"}
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


@dataclass
class KubeFile:
    path: str
    old: atomicfile.Existing | None  # None: the file does not exist yet
    text: str = ""
    encoding: str = "utf-8"
    doc: dict[str, Any] | None = None  # as kubectl reads it; None: empty or new


@dataclass(frozen=True)
class Entry:
    section: str  # clusters, users, contexts
    name: str
    body: dict[str, Any]
    # True: an existing entry of this name is ours to update (setup's fields set, the rest
    # kept); False: an existing different one is someone else's, and is not overwritten.
    ours: bool = False


@dataclass
class Plan:
    edits: dict[str, list[yamledit.Edit]] = field(default_factory=dict)  # path -> edits
    notes: list[str] = field(default_factory=list)
    shown: dict[str, list[tuple[str, Entry]]] = field(default_factory=dict)  # for --print


def file_list(explicit: str | None, env: Mapping[str, str]) -> tuple[list[str], str]:
    """(every file kubectl merges, in order; the file new entries go to)."""
    if explicit:
        path = os.path.abspath(os.path.expanduser(explicit))
        return [path], path
    listed = [os.path.abspath(os.path.expanduser(p))
              for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    paths = list(dict.fromkeys(listed))
    if not paths:
        home = env.get("HOME") or os.path.expanduser("~")
        path = os.path.join(home, ".kube", "config")
        return [path], path
    if len(paths) == 1:
        return paths, paths[0]
    existing = [p for p in paths if os.path.exists(p)]
    return paths, existing[0] if existing else paths[-1]


def decode(data: bytes, path: str) -> tuple[str, str]:
    """(text, encoding): UTF-8, or UTF-16 with its byte-order mark, as Go's YAML reads."""
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text",
                         "fix the kubeconfig file before running setup") from None


def load_file(path: str) -> KubeFile:
    import yaml

    old = atomicfile.read_or_refuse(path, "KUBECONFIG",
                                    "name a kubeconfig file (--kubeconfig FILE)", MAX_FILE)
    if old is None:
        return KubeFile(path, None)
    text, encoding = decode(old.data, path)
    try:
        doc = goyaml.load(text)
    except goyaml.NotJSON as exc:
        raise UsageError(f"{path} holds {exc}", "fix the kubeconfig file before running "
                         "setup (kubectl cannot read it either)") from None
    except (yaml.YAMLError, ValueError):
        raise UsageError(f"{path} is not valid YAML", "fix the kubeconfig file before "
                         "running setup (kubectl cannot read it either)") from None
    except RecursionError:
        raise UsageError(f"{path} nests too deeply to be a kubeconfig") from None
    if doc is not None and not isinstance(doc, dict):
        raise UsageError(f"{path} is not a kubeconfig", "fix or remove the file")
    for section, inner in SECTIONS.items():
        items = (doc or {}).get(section)
        if items is not None and not isinstance(items, list):
            raise UsageError(f"{path}: {section} is not a list",
                             "fix the kubeconfig file before running setup")
        names = [i.get("name") for i in items or [] if isinstance(i, dict)]
        twice = next((n for n in names if names.count(n) > 1), None)
        if twice is not None:
            raise UsageError(f"{path} has two {section} named {twice!r}, and kubectl refuses "
                             "to read it", f"remove one of the {inner} entries")
    return KubeFile(path, old, text, encoding, doc)


def load_files(paths: list[str]) -> list[KubeFile]:
    return [load_file(path) for path in paths]


def find(files: list[KubeFile], section: str, name: str
         ) -> tuple[KubeFile, int, dict[str, Any]] | None:
    """The first file defining `name` in `section`, the item's index and the item (kubectl's
    merge)."""
    for kf in files:
        for index, item in enumerate((kf.doc or {}).get(section) or []):
            if isinstance(item, dict) and item.get("name") == name:
                return kf, index, item
    return None


def merge_body(old: Any, new: dict[str, Any]) -> dict[str, Any]:
    """`new`'s fields over `old`'s, recursively for mappings; fields only `old` has stay."""
    merged = dict(old) if isinstance(old, dict) else {}
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_body(merged[key], value)
        else:
            merged[key] = value
    return merged


def plan(files: list[KubeFile], default_path: str, entries: list[Entry],
         overwrite: bool = False) -> Plan:
    """The edits that set `entries`, and none for those already set."""
    result = Plan()

    def add(path: str, edit: yamledit.Edit, verb: str, entry: Entry) -> None:
        result.edits.setdefault(path, []).append(edit)
        result.shown.setdefault(path, []).append((verb, entry))
        result.notes.append(f"{verb} {SECTIONS[entry.section]} {entry.name!r} "
                            f"{'to' if verb == 'added' else 'in'} {path}")

    for entry in entries:
        inner = SECTIONS[entry.section]
        found = find(files, entry.section, entry.name)
        if found is None:
            add(default_path, yamledit.Edit(entry.section, {"name": entry.name,
                                                            inner: entry.body}), "added", entry)
            continue
        kf, index, item = found
        old = item.get(inner)
        if overwrite:
            new = entry.body
            verb = "replaced"
        elif entry.ours:
            new = merge_body(old, entry.body)
            verb = "updated"
        elif goyaml.to_json(entry.body) == old:
            continue
        else:
            raise UsageError(
                f"{kf.path} already has a {inner} named {entry.name!r}, different from the "
                "one setup would write",
                "choose another name (--cluster, --context-name), or pass --overwrite to "
                "replace it")
        new_item = {"name": entry.name, inner: new}
        if goyaml.to_json(new_item) == item:
            continue
        add(kf.path, yamledit.Edit(entry.section, new_item, index), verb, entry)
    return result


def new_text(kf: KubeFile, edits: list[yamledit.Edit]) -> bytes:
    """The file's new bytes (its encoding kept); UsageError where it cannot be edited."""
    try:
        text = yamledit.apply(kf.text, edits, kf.doc)
    except yamledit.NotEditable as exc:
        raise UsageError(f"cannot add setup's entries to {kf.path}: {exc}",
                         "add them by hand (cred-helper setup --print shows them), or "
                         "simplify that part of the file") from None
    return text.encode(kf.encoding)


def shown(path: str, changes: list[tuple[str, Entry]]) -> str:
    """What --print shows for a file: setup's entries only, never the rest of the file."""
    lines = [f"# {path}"]
    for verb, entry in changes:
        inner = SECTIONS[entry.section]
        kept = " (its other fields kept)" if verb == "updated" else ""
        lines.append(f"# {verb} in {entry.section}{kept}:")
        lines += yamledit.item_lines({"name": entry.name, inner: entry.body})
    return "\n".join(lines) + "\n"
