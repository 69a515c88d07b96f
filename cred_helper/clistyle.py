"""One way for every command's help and completion, applied to the whole command tree once.

A value with fixed alternatives is written `a|b|c` in help (never click's `[a|b]` or `{a|b}`)
and completes to those words in the shell, whether click checks it (a Choice) or config.py does
(an option declared with `metavar="a|b|c"`: config.py names the flag *and* the profile key in its
errors, which click's Choice cannot, so those stay plain text for click). Declaring an option
either way is enough; `apply` does the rest, and tests/unit/test_clistyle.py checks every command.
"""

from __future__ import annotations

import re
from typing import Any

import click
from click.shell_completion import CompletionItem

# Alternatives a person types as they are (lower case): `csr|oidc`, not `FILE|pkcs11:URI`.
_ALTERNATIVES = re.compile(r"[a-z0-9][a-z0-9-]*(\|[a-z0-9][a-z0-9-]*)+")


class Words(click.ParamType):
    """A value that completes to fixed words but is checked elsewhere (config.py)."""

    name = "words"

    def __init__(self, words: tuple[str, ...]) -> None:
        self.words = words

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "|".join(self.words)

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        return value

    def shell_complete(self, ctx: click.Context, param: click.Parameter,
                       incomplete: str) -> list[CompletionItem]:
        return [CompletionItem(w) for w in self.words if w.startswith(incomplete)]


def alternatives(param: click.Parameter) -> tuple[str, ...]:
    """The fixed words a parameter takes, or () for a free value."""
    if isinstance(param.type, click.Choice):
        return tuple(str(c) for c in param.type.choices)
    if isinstance(param.type, Words):
        return param.type.words
    return ()


def apply(command: click.Command) -> None:
    """Give every parameter of `command` and its subcommands the house style."""
    for param in command.params:
        if isinstance(param.type, click.Choice):
            param.metavar = "|".join(alternatives(param))
        elif param.type is click.STRING and param.metavar \
                and _ALTERNATIVES.fullmatch(param.metavar):
            param.type = Words(tuple(param.metavar.split("|")))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            apply(sub)
