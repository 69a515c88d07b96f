"""Adding a cluster, user and context to kubeconfig files the way kubectl does.

Which file: an entry that exists goes back into the first file of the list that defines it
(kubectl's merge keeps the first); a new one goes where `kubectl config set-*` writes: the
explicit `--kubeconfig` file, else the first file of `$KUBECONFIG` that exists (the last one
when none does), else ~/.kube/config. Everything else in a file (foreign entries, unknown
fields, preferences, extensions) is kept; YAML comments are not (no YAML round trip keeps
them). A changed file is backed up first and replaced atomically with its mode (0600 when new).

`plan` is pure (documents in, documents out); `load_files` and `write` do the I/O.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import kubeconfig
from .atomicfile import replace_file
from .errors import UsageError, os_reason

SECTIONS = {"clusters": "cluster", "users": "user", "contexts": "context"}


@dataclass
class KubeFile:
    path: str
    doc: dict[str, Any] | None  # None: the file does not exist yet


@dataclass(frozen=True)
class Entry:
    section: str  # clusters, users, contexts
    name: str
    body: dict[str, Any]
    # True: an existing entry of this name is ours to update (merged into); False: an
    # existing different one is someone else's, and is not overwritten.
    ours: bool = False


@dataclass
class Plan:
    changed: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> new document
    notes: list[str] = field(default_factory=list)


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


def load_files(paths: list[str]) -> list[KubeFile]:
    files = []
    for path in paths:
        if not os.path.exists(path):
            files.append(KubeFile(path, None))
            continue
        doc = kubeconfig.load(path, "KUBECONFIG") if os.path.getsize(path) else {}
        for section in SECTIONS:
            if doc.get(section) is not None and not isinstance(doc.get(section), list):
                raise UsageError(f"{path}: {section} is not a list",
                                 "fix the kubeconfig file before running setup")
        files.append(KubeFile(path, doc))
    return files


def find(files: list[KubeFile], section: str, name: str) -> tuple[KubeFile, dict] | None:
    """The first file defining `name` in `section`, and that item (kubectl's merge)."""
    for kf in files:
        for item in (kf.doc or {}).get(section) or []:
            if isinstance(item, dict) and item.get("name") == name:
                return kf, item
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


def plan(files: list[KubeFile], default_path: str, entries: list[Entry]) -> Plan:
    """The documents that change when `entries` are set, and nothing for those that do not."""
    docs = {kf.path: copy.deepcopy(kf.doc) if kf.doc is not None else None for kf in files}
    result = Plan()
    for entry in entries:
        inner = SECTIONS[entry.section]
        found = find(files, entry.section, entry.name)
        if found is None:
            path = default_path
            doc = docs.get(path)
            if doc is None:
                doc = {"apiVersion": "v1", "kind": "Config", "preferences": {},
                       "clusters": [], "users": [], "contexts": [], "current-context": ""}
            doc.setdefault(entry.section, [])
            if doc[entry.section] is None:
                doc[entry.section] = []
            doc[entry.section].append({"name": entry.name, inner: entry.body})
            docs[path] = doc
            result.notes.append(f"added {inner} {entry.name!r} to {path}")
            continue
        kf, item = found
        old = item.get(inner)
        new = merge_body(old, entry.body) if entry.ours else entry.body
        if new == old:
            continue
        if not entry.ours:
            raise UsageError(
                f"{kf.path} already has a {inner} named {entry.name!r}, different from the "
                "one setup would write",
                "choose another name (--cluster, --context-name), or pass --overwrite")
        doc = docs[kf.path]
        assert doc is not None
        for other in doc[entry.section]:
            if isinstance(other, dict) and other.get("name") == entry.name:
                other[inner] = new
                break
        result.notes.append(f"updated {inner} {entry.name!r} in {kf.path}")
    for kf in files:
        if docs.get(kf.path) != kf.doc:
            result.changed[kf.path] = docs[kf.path]  # type: ignore[assignment]
    if default_path not in {kf.path for kf in files} and docs.get(default_path) is not None:
        result.changed[default_path] = docs[default_path]  # type: ignore[assignment]
    return result


def render(doc: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(doc, default_flow_style=False, sort_keys=False)


def write(path: str, text: str, now: float | None = None) -> str | None:
    """Replace `path` (through a symlink: its target) atomically, with its mode, after a
    backup `path.bak-YYYYmmddTHHMMSSZ`; returns the backup's path (None for a new file)."""
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    backup = None
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        try:
            mode = os.stat(target).st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o600
        else:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
            backup = f"{target}.bak-{stamp}"
            shutil.copy2(target, backup)  # keeps the mode: a kubeconfig holds secrets
        replace_file(target, text, mode)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {os_reason(exc)}",
                         "check the file's directory and permissions") from None
    return backup
