"""Plain scalars typed as kubectl's YAML types them, and values written so every reader agrees.

The table's expectations are what kubectl 1.32 printed for the same scalars (`kubectl config
view -o json` of an extension); tests/integration/test_kubeconfig_fidelity.py asks kubectl
again for a larger corpus.
"""

from __future__ import annotations

import math

import pytest
import yaml

from cred_helper import goyaml

# (plain scalar, what Go makes of it)
TABLE = [
    ("y", True), ("Y", True), ("yes", True), ("On", True), ("TRUE", True),
    ("n", False), ("N", False), ("no", False), ("OFF", False), ("False", False),
    ("tRue", "tRue"), ("yES", "yES"),
    ("~", None), ("null", None), ("Null", None), ("nULL", "nULL"),
    ("1e3", 1000.0), ("12E5", 1.2e6), ("5e-3", 0.005), (".5", 0.5), ("1.", 1.0), ("08", 8.0),
    ("0o17", 15), ("0O17", 15), ("012", 10), ("0x1F", 31), ("0b101", 5), ("-0b11", -3),
    ("0b-1", -1), ("1_000", 1000), ("+12", 12), ("-0", 0),
    ("18446744073709551615", 18446744073709551615), ("18446744073709551616", 2.0 ** 64),
    ("0xFFFFFFFFFFFFFFFFF", "0xFFFFFFFFFFFFFFFFF"), ("1e400", "1e400"), (".5e400", ".5e400"),
    ("1:20", "1:20"), ("2001-12-14", "2001-12-14"), ("2001-12-14T21:59:43.10Z",
                                                      "2001-12-14T21:59:43.10Z"),
    ("0x", "0x"), ("09.5", 9.5), ("._5", "._5"), ("1__0", 10), ("_1", "_1"),
    ("=", "="), ("<<x", "<<x"), ("abc", "abc"), ("-", "-"), ("+", "+"),
]


@pytest.mark.parametrize(("text", "expected"), TABLE)
def test_a_plain_scalar_is_typed_as_go_types_it(text, expected):
    got = goyaml.plain_value(text)
    assert type(got) is type(expected) and got == expected


def test_special_floats():
    assert math.isnan(goyaml.plain_value(".NaN"))
    assert goyaml.plain_value("-.inf") == -math.inf
    assert goyaml.plain_value(".Inf") == math.inf


def test_a_document_as_kubectl_reads_it():
    doc = goyaml.load('a: "1e3"\nb: 1e3\nc: 1:20\nn: 1\n1: x\ny: [y, "y"]\nm: &m {k: 1}\n'
                      'o: {<<: *m, j: 2}\n')
    # keys are JSON strings (a bool key becomes "true"), merge keys are merged
    assert doc == {"a": "1e3", "b": 1000.0, "c": "1:20", "false": 1, "1": "x",
                   "true": [True, "y"], "m": {"k": 1}, "o": {"k": 1, "j": 2}}


def test_an_unknown_tag_keeps_the_value_as_it_is():
    assert goyaml.load("a: !custom 5\nb: !!str 1e3\n") == {"a": "5", "b": "1e3"}


def test_an_empty_document_is_none():
    assert goyaml.load("") is None
    assert goyaml.load("# only a comment\n") is None


AMBIGUOUS = [t for t, _ in TABLE] + ["", " lead", "trail ", "a: b", "- x", "#x", "x #y",
                                     "[x]", "{x}", "'q'", '"q"', "\\", "line\nbreak", "tab\tx",
                                     "\u2028", "\x85", "\ufeff", "é", "\U0001f600", "\x00",
                                     "@x", "`x", "%x", "!x", "&x", "*x", "|", ">", "?", ":"]


@pytest.mark.parametrize("text", AMBIGUOUS)
def test_a_written_string_is_that_string_to_go_and_pyyaml(text):
    written = f"k: {goyaml.scalar(text)}\n"
    assert goyaml.load(written) == {"k": text}
    assert yaml.safe_load(written) == {"k": text}


@pytest.mark.parametrize("value", [True, False, None, 0, -5, 1 << 62, 1.5, 1e16, 1e-5, 1000.0,
                                   ["a", "y", 1], {"y": "n", "1e3": [True]}])
def test_a_written_value_reads_back_as_itself(value):
    written = f"k: {goyaml.scalar(value)}\n"
    assert goyaml.load(written) == {"k": value}
    assert yaml.safe_load(written) == {"k": value}


@pytest.mark.parametrize(("name", "plain"), [
    ("server", True), ("certificate-authority-data", True), ("apiVersion", True),
    ("y", False), ("on", False), ("null", False), ("1e3", False), ("a b", False), ("", False),
    ("<<", False), ("=", False)])
def test_a_key_is_plain_only_where_every_reader_agrees(name, plain):
    written = goyaml.key(name)
    assert (written == name) is plain
    assert goyaml.load(f"{written}: 1\n") == {name: 1}
    assert yaml.safe_load(f"{written}: 1\n") == {name: 1}


@pytest.mark.parametrize("fan", ["[{refs}]", "{{<<: [{refs}], k: 1}}"])
def test_aliases_that_stand_for_a_huge_document_are_refused(fan):
    """A "billion laughs" kubeconfig: refused in a moment, as Go's YAML refuses it."""
    import time

    lines = ['a0: &a0 {x: "lol", y: "lol"}']
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} " + fan.format(refs=refs))
    started = time.monotonic()
    with pytest.raises(goyaml.NotJSON, match="excessive aliasing"):
        goyaml.load("\n".join(lines) + "\n")
    assert time.monotonic() - started < 30
