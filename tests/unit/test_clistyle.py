"""Every command's help and completion follow one rule for values with fixed alternatives:
written `a|b|c`, completed to those words. Walks the whole command tree, so a new option
declared either way (a click Choice, or `metavar="a|b"` checked by config.py) is covered."""

from __future__ import annotations

import click

from cred_helper.cli import cli
from cred_helper.clistyle import alternatives


def _every(command: click.Command, path: str = "cred-helper"):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _every(sub, f"{path} {name}")


def test_alternatives_are_written_one_way_and_complete():
    checked = 0
    for path, command in _every(cli):
        ctx = click.Context(command, info_name=path)
        for param in command.params:
            words = alternatives(param)
            metavar = param.make_metavar(ctx)
            if not words:
                assert not ("[" in metavar and "|" in metavar), (path, param.name, metavar)
                assert "{" not in metavar, (path, param.name, metavar)
                continue
            checked += 1
            assert metavar.strip("[]").rstrip(".") == "|".join(words), (path, metavar)
            done = [item.value for item in param.shell_complete(ctx, "")]
            assert done == list(words), (path, param.name, done)
    assert checked >= 15  # get's and setup's issuer, cache, ... ; status -o; janitor; keys


def test_plain_text_values_are_still_checked_by_config():
    """A Words value is not validated by click: config.py names flag and profile key."""
    get = cli.commands["get"]
    issuer = next(p for p in get.params if p.name == "issuer")
    assert issuer.type.convert("nonsense", issuer, None) == "nonsense"


def test_commands_listed_in_the_order_people_meet_them():
    names = cli.list_commands(click.Context(cli))
    assert names[:4] == ["get", "setup", "login", "status"]
    assert names[-2:] == ["help", "version"]
    assert sorted(names) == sorted(cli.commands)
