""""Did you mean ...?" for a misspelt command or profile name: one rule, so that every command
answers a typo the same way. Pure."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from .errors import UsageError


def close_words(word: str, candidates: Iterable[str]) -> list[str]:
    """The candidates `word` is probably a typo of, best first (at most three): close spellings,
    else the candidates it is the start of (`stat` -> `status`)."""
    names = sorted(set(candidates))
    close = difflib.get_close_matches(word, names, n=3, cutoff=0.6)
    if close:
        return close
    return [name for name in names if word and name.startswith(word)][:3]


LONGEST_SHOWN = 40  # longer than any command and than the profile names people type


def shown(word: str) -> str:
    """WORD as an error quotes it: whole when it could be a name, else its start and its
    length. A word this long is a paste (a token, a key) more often than a typo, and the
    error line goes to a terminal, a CI log or a ticket."""
    if len(word) <= LONGEST_SHOWN:
        return repr(word)
    return f"{word[:8]!r}... ({len(word)} characters)"


def either(words: list[str]) -> str:
    return " or ".join(words) if len(words) < 3 else ", ".join(words[:-1]) + " or " + words[-1]


def unknown_command(word: str, commands: Iterable[str], path: str = "cred-helper",
                    profiles: Iterable[str] = ()) -> UsageError:
    """The error for `cred-helper WORD` where WORD is no command of `path`. A profile's name
    typed as a command (`cred-helper prod`) is pointed at --cluster."""
    commands = list(commands)
    where = "" if path == "cred-helper" else f" in `{path}`"
    if path == "cred-helper" and word in set(profiles):
        return UsageError(f"no command {word!r}; did you mean --cluster {word}?",
                          f"`cred-helper login --cluster {word}` logs in; `cred-helper "
                          f"status --cluster {word}` shows what is cached for it")
    close = close_words(word, commands)
    if close:
        return UsageError(f"no command {shown(word)}{where}; did you mean {either(close)}?",
                          f"`{path} --help` lists the commands")
    return UsageError(f"no command {shown(word)}{where}",
                      f"the commands are {', '.join(commands)}; `{path} --help` says more")
