"""Writing one `[clusters.NAME]` profile into the profile file, keeping the rest of it as text
(comments and other profiles included): the table is appended, or (with `--overwrite`) its
lines replaced. A profile of that name that differs from what setup would write, written by
hand or by an earlier setup with other options, is refused without `--overwrite`, as the
kubeconfig side refuses a different entry of the same name; keys setup has no option for
(the access requests') are the person's, and stay.

`updated_text` is pure; the result is parsed again and must hold exactly the profiles it held
before plus this one, else nothing is written.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import UsageError

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_HEADER = re.compile(r"^\s*\[")


def _key(name: str) -> str:
    return name if _BARE.fullmatch(name) else json.dumps(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to a profile")


def table(name: str, profile: dict[str, Any]) -> str:
    lines = [f"[clusters.{_key(name)}]"]
    lines += [f"{key} = {_value(value)}" for key, value in profile.items()]
    return "\n".join(lines) + "\n"


def _parse(text: str, path: str) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}",
                         "fix the file before running setup") from None


def updated_text(old: str, path: str, name: str, profile: dict[str, Any],
                 overwrite: bool = False, kept: tuple[str, ...] = ()) -> str | None:
    """The file's new text, or None when it already holds exactly this profile. Of the keys
    in `kept` (those setup has no option for, which the person adds: the access requests'
    gateway, namespace, ...), what the old profile holds stays as it is, with --overwrite
    too: never a difference, never lost."""
    before = _parse(old, path)
    clusters = before.get("clusters", {})
    if not isinstance(clusters, dict):
        raise UsageError(f"{path}: [clusters] must be a table of profiles")
    mine = clusters.get(name)
    if isinstance(mine, dict):
        profile = {**profile, **{k: mine[k] for k in kept if k in mine and k not in profile}}
    if clusters.get(name) == profile:
        return None
    if name in clusters and not overwrite:
        raise UsageError(f"{path} already has a profile [clusters.{name}], different from the "
                         f"one setup would write ({differences(clusters[name], profile)})",
                         "choose another --cluster name, or pass --overwrite to replace it")
    lines = old.splitlines(keepends=True)
    start = _find_header(lines, name)
    if start is None:
        sep = "" if not old or old.endswith("\n\n") else ("\n" if old.endswith("\n") else "\n\n")
        new = old + sep + table(name, profile)
    else:
        end = start + 1
        while end < len(lines) and not _HEADER.match(lines[end]):
            end += 1
        # keep the blank lines (and comments) that lead to the next table
        while end - 1 > start and (not lines[end - 1].strip()
                                   or lines[end - 1].lstrip().startswith("#")):
            end -= 1
        new = "".join(lines[:start]) + table(name, profile) + "".join(lines[end:])
    after = _parse(new, path)
    expected = dict(before)
    expected["clusters"] = {**clusters, name: profile}
    if after != expected:
        raise UsageError(f"{path}: cannot update [clusters.{name}] in place (it is written "
                         "in a form setup does not edit)",
                         f"remove [clusters.{name}] from the file and run setup again")
    return new


def differences(old: Any, new: dict[str, Any]) -> str:
    """Which keys differ, by name only (values may be anything the user wrote)."""
    if not isinstance(old, dict):
        return "it is not a table"
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return "differs in " + ", ".join(keys)


def _find_header(lines: list[str], name: str) -> int | None:
    wanted = {f"[clusters.{name}]", f'[clusters."{name}"]', f"[clusters.'{name}']",
              f"[clusters.{_key(name)}]"}
    for i, line in enumerate(lines):
        stripped = line.split("#", 1)[0].strip().replace(" ", "")
        if stripped in {w.replace(" ", "") for w in wanted}:
            return i
    return None
