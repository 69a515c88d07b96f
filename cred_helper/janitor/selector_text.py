"""A label selector's text, read exactly as kube-apiserver and kubectl read it: a port of
apimachinery's `labels.Parse` (k8s.io/apimachinery v0.37.2, pkg/labels/selector.go), its lexer,
its parser and its validation, so that `--exclude-selector` accepts what `kubectl get -l`
accepts, refuses what it refuses, and means the same.

What that parser does that a reader might not expect, all kept here:
- empty values: `k in ()`, `k in (v,)`, `k in (,v)`, `k in (a,,b)` and `k=` all include "";
- `in` and `notin` are words only where an operator is expected: `in in (in)` is the key `in`;
- `>` and `<` compare a label's value as a base-10 integer (`replicas>2`);
- whitespace is space, tab, CR and LF; a NUL is read as the end of the text (see `lex`);
- an empty text selects everything (the caller decides whether to allow it).

tests/integration/test_selector_oracle.py holds this module to the real parser on a generated
corpus (a Go program built against apimachinery from the module proxy)."""

from __future__ import annotations

import re

# (key, operator, values); operators: in, notin, exists, !exists, gt, lt
Requirement = tuple[str, str, frozenset[str]]

_WHITESPACE = " \t\r\n"
_SPECIAL = "=!(),><"
_SYMBOLS = {")": ")", ",": ",", "!": "!", "==": "==", "=": "=", ">": ">", "<": "<",
            "!=": "!=", "(": "("}
_WORDS = {"in": "in", "notin": "notin"}
IDENT, END = "ident", "end"

_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INT64 = 1 << 63


def lex(text: str) -> list[tuple[str, str]]:
    """Tokens as (kind, literal): kind is a symbol, `in`/`notin`, IDENT, or END last.

    As apimachinery's lexer, which reads a NUL as it reads the end: a NUL where a token would
    start ends the text, and one right after a token ends that token and is dropped."""
    tokens: list[tuple[str, str]] = []
    pos, size = 0, len(text)

    def read() -> str:
        nonlocal pos
        if pos >= size:
            return "\0"
        pos += 1
        return text[pos - 1]

    while True:
        ch = read()
        while ch in _WHITESPACE:
            ch = read()
        if ch == "\0":
            tokens.append((END, ""))
            return tokens
        pos -= 1
        if ch in _SPECIAL:
            # The longest symbol: one character, or `==` / `!=` (each single one is a symbol).
            buffer, symbol = "", ""
            while True:
                ch = read()
                if ch == "\0":
                    break
                if ch not in _SPECIAL:
                    pos -= 1
                    break
                buffer += ch
                if buffer in _SYMBOLS:
                    symbol = buffer
                else:
                    pos -= 1
                    break
            tokens.append((_SYMBOLS[symbol], symbol))
            continue
        word = ""
        while True:
            ch = read()
            if ch == "\0":
                break
            if ch in _SPECIAL or ch in _WHITESPACE:
                pos -= 1
                break
            word += ch
        tokens.append((_WORDS.get(word, IDENT), word))


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = lex(text)
        self.at = 0

    def peek(self, values: bool = True) -> tuple[str, str]:
        return self._as(self.tokens[self.at], values)

    def take(self, values: bool = True) -> tuple[str, str]:
        self.at += 1
        return self._as(self.tokens[self.at - 1], values)

    @staticmethod
    def _as(token: tuple[str, str], values: bool) -> tuple[str, str]:
        # Where a value may stand, `in` and `notin` are plain words.
        kind, literal = token
        return (IDENT, literal) if values and kind in _WORDS else token

    def selector(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, literal = self.peek()
            if kind == END:
                return requirements
            if kind not in (IDENT, "!"):
                raise ValueError(f"found {literal!r}, expected: !, identifier, or end of text")
            requirements.append(self.requirement())
            kind, literal = self.take()
            if kind == END:
                return requirements
            if kind != ",":
                raise ValueError(f"found {literal!r}, expected: ',' or end of text")
            kind, literal = self.peek()
            if kind not in (IDENT, "!"):
                raise ValueError(f"found {literal!r}, expected: identifier after ','")

    def requirement(self) -> Requirement:
        negated = False
        kind, key = self.take()
        if kind == "!":
            negated = True
            kind, key = self.take()
        if kind != IDENT:
            raise ValueError(f"found {key!r}, expected: identifier")
        _check_key(key)
        if negated or self.peek()[0] in (END, ","):
            # `!key` takes no operator: anything after it is the caller's error (`!a=b`).
            return key, "!exists" if negated else "exists", frozenset()
        kind, literal = self.take(values=False)
        operators = {"in": "in", "notin": "notin", "=": "in", "==": "in", "!=": "notin",
                     ">": "gt", "<": "lt"}
        if kind not in operators:
            raise ValueError(f"found {literal!r}, expected: in, notin, =, ==, !=, > or <")
        values = self.value_set() if kind in ("in", "notin") else self.exact_value()
        operator = operators[kind]
        if operator in ("gt", "lt"):
            for value in values:
                if not _is_int64(value):
                    raise ValueError(f"{value!r}: for '>' and '<', the value must be an "
                                     "integer")
        for value in values:
            _check_value(value)
        return key, operator, frozenset(values)

    def value_set(self) -> set[str]:
        kind, literal = self.take()
        if kind != "(":
            raise ValueError(f"found {literal!r}, expected: '('")
        kind, literal = self.peek()
        if kind == ")":
            self.take()
            return {""}
        if kind not in (IDENT, ","):
            raise ValueError(f"found {literal!r}, expected: ',', ')' or identifier")
        values: set[str] = set()
        while True:
            kind, literal = self.take()
            if kind == IDENT:
                values.add(literal)
                after, text = self.peek()
                if after == ")":
                    self.take()
                    return values
                if after != ",":
                    raise ValueError(f"found {text!r}, expected: ',' or ')'")
            elif kind == ",":
                # Around a comma with nothing on one side stands the empty value.
                after = self.peek()[0]
                if not values or after in (")", ","):
                    values.add("")
                if after == ")":
                    self.take()
                    return values
            else:
                raise ValueError(f"found {literal!r}, expected: ',' or identifier")

    def exact_value(self) -> set[str]:
        kind, literal = self.peek()
        if kind in (END, ","):
            return {""}
        kind, literal = self.take()
        if kind != IDENT:
            raise ValueError(f"found {literal!r}, expected: identifier")
        return {literal}


def parse_requirements(text: str) -> list[Requirement]:
    """The requirements of a selector's text, in the order written; ValueError with what is
    wrong. An empty text has none (it selects everything)."""
    return _Parser(text).selector()


def _check_key(key: str) -> None:
    """A label key: an optional DNS subdomain and `/`, then a name of at most 63 characters."""
    prefix, slash, name = key.rpartition("/")
    ok = key.count("/") <= 1 and 0 < len(name) <= 63 and bool(_NAME.fullmatch(name))
    if slash:
        ok = ok and 0 < len(prefix) <= 253 and bool(_DNS_SUBDOMAIN.fullmatch(prefix))
    if not ok:
        raise ValueError(f"{key!r} is not a label key")


def _check_value(value: str) -> None:
    if len(value) > 63 or not (value == "" or _NAME.fullmatch(value)):
        raise ValueError(f"{value!r} is not a label value")


def _is_int64(text: str) -> bool:
    """Go's strconv.ParseInt(text, 10, 64) succeeds."""
    return bool(_INTEGER.fullmatch(text)) and -_INT64 <= int(text) < _INT64


def as_int64(text: str) -> int | None:
    return int(text) if _is_int64(text) else None
