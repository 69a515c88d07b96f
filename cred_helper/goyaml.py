"""YAML as kubectl reads it, and values written so that every reader agrees.

kubectl reads a kubeconfig through sigs.k8s.io/yaml, which parses with go.yaml.in/yaml/v2 and
converts the result to JSON before decoding it into typed structs. That YAML types a plain
(unquoted) scalar by rules of its own: `y`, `On` and `NO` are booleans, `0o17`, `012` and
`0x1F` integers, `1e3` and `08` floats, while `1:20` and `2001-12-14` stay strings. PyYAML
(YAML 1.1) and YAML 1.2 readers each disagree with it somewhere, so a file read by one and
written back by another changes what kubectl sees: `namespace: "1e3"` written back unquoted
becomes a number, and kubectl then refuses the whole file.

`load` gives the JSON document kubectl decodes (go.yaml.in/yaml/v2's resolve.go and
sigs.k8s.io/yaml's key conversion, read at v2.4.4 and v1.6.0); `scalar` and `key` write a value
that Go, PyYAML and YAML 1.2 all read back as that value (every string double-quoted).
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

PLAIN_TAG = "tag:cred-helper:go-plain"
# Aliases let a small file stand for a huge document ("billion laughs"): Go's YAML refuses
# excessive aliasing past 400,000 values, and so does this, past that many and one per
# character of the text (more than a text without aliases can hold).
ALIAS_ALLOWANCE = 400_000
MERGE_TAG = "tag:yaml.org,2002:merge"

_BOOLS = {**dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On",
                           "ON"), True),
          **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off",
                           "OFF"), False)}
_NULLS = {"", "~", "null", "Null", "NULL"}
_SPECIAL_FLOATS = {**dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
                   **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
                   **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf)}
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")  # what Go's ParseFloat takes after "."
_DIGITS = {2: re.compile(r"[01]+"), 8: re.compile(r"[0-7]+"), 10: re.compile(r"[0-9]+"),
           16: re.compile(r"[0-9a-fA-F]+")}
_PREFIXES = {"0x": 16, "0X": 16, "0o": 8, "0O": 8, "0b": 2, "0B": 2}
INT64 = (-(1 << 63), (1 << 63) - 1)
UINT64_MAX = (1 << 64) - 1


def _parse_int(text: str, base: int, signed: bool) -> int | None:
    """Go's strconv.ParseInt (signed) or ParseUint: base 0 reads Go's prefixes, and a leading
    0 means octal; None where Go returns an error (bad digit, out of range)."""
    sign = 1
    if signed and text[:1] in ("+", "-"):
        sign, text = (-1 if text[0] == "-" else 1), text[1:]
    if base == 0:
        base = _PREFIXES.get(text[:2], 0)
        if base:
            text = text[2:]
        elif len(text) > 1 and text[0] == "0":
            base, text = 8, text[1:]
        else:
            base = 10
    if not _DIGITS[base].fullmatch(text):
        return None
    value = sign * int(text, base)
    low, high = INT64 if signed else (0, UINT64_MAX)
    return value if low <= value <= high else None


def _parse_float(text: str) -> float | None:
    value = float(text)
    return None if math.isinf(value) else value  # Go: out of range is an error


def plain_value(text: str) -> Any:
    """What go.yaml.in/yaml/v2 makes of a plain scalar (its `resolve` with no tag): a bool,
    None, an int, a float, or the text itself. Timestamps stay text, as v2 decodes them into
    an interface{}."""
    if text in _BOOLS:
        return _BOOLS[text]
    if text in _NULLS:
        return None
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    first = text[0]
    if first == ".":
        value = _parse_float(text) if _DOT_FLOAT.fullmatch(text) else None
        return text if value is None else value
    if first not in "+-0123456789":
        return text
    plain = text.replace("_", "")
    for signed in (True, False):
        number = _parse_int(plain, 0, signed)
        if number is not None:
            return number
    if _YAML_FLOAT.fullmatch(plain):
        value = _parse_float(plain)
        return text if value is None else value
    for prefix, sign in (("0b", ""), ("-0b", "-")):
        if plain.startswith(prefix):
            number = _parse_int(sign + plain[len(prefix):], 2, True)
            if number is None and not sign:
                number = _parse_int(plain[2:], 2, False)
            return text if number is None else number
    return text


class NotJSON(ValueError):
    """Go's conversion to JSON fails here (kubectl cannot read the file either)."""


def _key(value: Any) -> str:
    # sigs.k8s.io/yaml: a JSON object key from the YAML key Go resolved
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and INT64[0] <= value <= INT64[1]:
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return f"{value:g}"  # Go formats with float32 precision; close enough for a key
    raise NotJSON(f"a mapping key {value!r} that kubectl cannot read")


class _Resolver(yaml.resolver.BaseResolver):
    """Every plain scalar goes to plain_value; quoted ones are strings, as in Go."""

    def resolve(self, kind, value, implicit):
        if kind is yaml.ScalarNode and implicit[0]:
            return MERGE_TAG if value == "<<" else PLAIN_TAG
        return super().resolve(kind, value, implicit)


def _spend(budget: list[int], values: int) -> None:
    budget[0] -= values
    if budget[0] < 0:
        raise NotJSON("excessive aliasing (kubectl refuses it too)")


class _Constructor(yaml.constructor.SafeConstructor):
    budget: list[int]  # values still to be made (GoLoader sets it)

    def construct_plain(self, node: yaml.ScalarNode) -> Any:
        return plain_value(node.value)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
        """As v2 decodes into a map: pairs in order, a later key replacing an earlier one; a
        merge key (`<<`) sets its mapping's keys where it stands (of a list of them, the
        first wins). Keys become JSON's strings here, so that 1 and true stay apart."""
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping, found {node.id}", node.start_mark)
        mapping: dict[str, Any] = {}
        _spend(self.budget, len(node.value))
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                merged = value_node.value if isinstance(value_node, yaml.SequenceNode) \
                    else [value_node]
                for source in reversed(merged):
                    if not isinstance(source, yaml.MappingNode):
                        raise yaml.constructor.ConstructorError(
                            None, None, "a merge key needs a mapping", source.start_mark)
                    mapping.update(self.construct_mapping(source, deep=True))
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (dict, list)):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key that is a list or mapping", key_node.start_mark)
            mapping[_key(key)] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_other(self, node: yaml.Node) -> Any:
        # v2 keeps a value under a tag it does not know as it is
        if isinstance(node, yaml.ScalarNode):
            return node.value
        if isinstance(node, yaml.SequenceNode):
            return self.construct_sequence(node)
        return self.construct_mapping(node)


_Constructor.add_constructor(PLAIN_TAG, _Constructor.construct_plain)
_Constructor.add_constructor(None, _Constructor.construct_other)

try:
    from yaml._yaml import CParser as _Parser  # libyaml: a 10 MB file in seconds
except ImportError:  # PyYAML without libyaml
    from yaml.parser import Parser as _Parser  # type: ignore[assignment]
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parts(Reader, Scanner, _Parser):  # type: ignore[valid-type,misc]
        def __init__(self, stream):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            _Parser.__init__(self)
else:
    class _Parts(_Parser):  # type: ignore[no-redef]
        pass


class GoLoader(_Parts, yaml.composer.Composer, _Constructor, _Resolver):
    def __init__(self, stream):
        _Parts.__init__(self, stream)
        yaml.composer.Composer.__init__(self)
        _Constructor.__init__(self)
        _Resolver.__init__(self)
        self.budget = [ALIAS_ALLOWANCE + len(stream)]


def to_json(value: Any, budget: list[int] | None = None) -> Any:
    """The value as sigs.k8s.io/yaml hands it to encoding/json: string keys, no sharing
    (an alias becomes a copy; `budget`: how many values may still be made)."""
    budget = [1 << 62] if budget is None else budget
    _spend(budget, 1)
    if isinstance(value, dict):
        return {_key(k): to_json(v, budget) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v, budget) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        raise NotJSON(f"{value} (JSON has no such number)")
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)  # an explicit !!timestamp and the like


def load(text: str) -> Any:
    """The document as kubectl decodes it (None for an empty one). Raises yaml.YAMLError,
    RecursionError for absurd nesting, or NotJSON."""
    loader = GoLoader(text)
    try:
        return to_json(loader.get_single_data(), loader.budget)
    finally:
        loader.dispose()


# ---- writing -------------------------------------------------------------------------------

_SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    # control characters, and what a YAML 1.1 reader takes as a line break or a BOM
    if code < 0x20 or 0x7F <= code <= 0x9F or ch in "\u2028\u2029\ufeff" or \
            0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF):
        return f"\\u{code:04x}"
    return ch


def quote(text: str) -> str:
    """A double-quoted YAML scalar: a string to every YAML reader."""
    return '"' + "".join(_escape(ch) for ch in text) + '"'


def scalar(value: Any) -> str:
    """A scalar (or an inline list or mapping, in JSON's form) as YAML text that reads back as
    `value` in Go, PyYAML and YAML 1.2 alike."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} cannot be written: kubectl would not read it")
        text = repr(value)
        if "." not in text and "e" in text:  # 1e+16: YAML 1.1 wants a '.' to see a float
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, list):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        # JSON's form, keys quoted too: a JSON kubeconfig stays JSON
        return "{" + ", ".join(f"{quote(str(k))}: {scalar(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def key(name: str) -> str:
    """A mapping key: plain where every reader takes it as this string, else quoted."""
    if _SAFE_KEY.fullmatch(name) and plain_value(name) == name and \
            yaml.safe_load(name) == name:
        return name
    return quote(name)
