"""`--exclude-selector` against apimachinery's own `labels.Parse` (k8s.io/apimachinery v0.37.2,
the control plane's version), built from the module proxy into a program that answers for each
text whether it parses, into which requirements, and which label sets it matches
(tests/controlplane/selectororacle, built once per machine by tests/controlplane/gotools.py).

The corpus is generated (seeded, so every run asks the same): selectors built from keys,
operators and values that are valid, invalid and empty, joined with every kind of whitespace,
stray commas and parentheses and NULs, and token soups; each with label sets made from the keys
and values it names. Without Go the test is skipped; under CI=true that is a failure."""

from __future__ import annotations

import json
import random
import subprocess

import pytest

from cred_helper.janitor.selector_text import parse_requirements
from cred_helper.janitor.selectors import Selector

GOOD_KEYS = ["a", "k", "app", "tier", "in", "notin", "example.com/debug-keep", "a_b", "a.b",
             "A9", "9", "k" * 63, "p" * 253 + "/k", "x.y-z/Q_1"]
BAD_KEYS = ["Example.com/x", "a/b/c", "/x", "x/", "-a", "a-", "k" * 64, "p" * 254 + "/k",
            "a..b/c", "a.-b/c", "é", "a/", "ex_ample.com/k"]
GOOD_VALUES = ["", "v", "b", "in", "notin", "a_b", "a.b", "7", "007", "0", "x" * 63,
               "9223372036854775807", "9223372036854775808"]
BAD_VALUES = ["-v", "v-", "-5", "+5", "x" * 64, "é", "a/b"]
GOOD_OPERATORS = ["=", "==", "!=", "in", "notin", ">", "<"]
BAD_OPERATORS = ["", "!", "!==", "===", "=!", "<=", "in in"]
KEYS, VALUES = GOOD_KEYS + BAD_KEYS, GOOD_VALUES + BAD_VALUES
SPACE = ["", "", "", " ", "  ", "\t", "\n", "\r", " \t "]
SOUP = ["a", "k", "v", "7", "in", "notin", "=", "==", "!", "!=", "(", ")", ",", " ", "\t", ">",
        "<", "\0", "-", ".", "/", "_", "é", "x.y/z"]

EDGES = ["k in (v,)", "k in ()", "k in (,v)", "k in (a,,b)", "k notin ()", "k=", "k==", "k!=",
         "keep=yes,", "tierin ()", ",", "", " ", "!", "!k", "! k", "!k=v", "k=v=w", "in in (in)",
         "notin notin (notin)", "k in (in,notin)", "k>5", "k<-5", "k>", "k > 5", "k=(v)",
         "a=b\0c", "a\0=b", "a \0=b", "\0a", "x in (foo,,baz),y,z notin ()", "a!==b", "a==!b"]


def pick(rng: random.Random, good: list[str], bad: list[str]) -> str:
    return rng.choice(good if rng.random() < 0.93 else bad)


def requirement(rng: random.Random) -> str:
    sp = lambda: rng.choice(SPACE)  # noqa: E731
    key = pick(rng, GOOD_KEYS, BAD_KEYS)
    shape = rng.randrange(5)
    if shape == 0:
        return f"{sp()}{key}{sp()}"
    if shape == 1:
        return f"{sp()}!{sp()}{key}{sp()}"
    if shape == 2:
        op, value = pick(rng, GOOD_OPERATORS, BAD_OPERATORS), pick(rng, GOOD_VALUES, BAD_VALUES)
        return f"{sp()}{key}{sp()}{op}{sp()}{value}{sp()}"
    values = [pick(rng, GOOD_VALUES, BAD_VALUES) for _ in range(rng.randrange(4))]
    inner = ",".join(f"{sp()}{v}{sp()}" for v in values)
    if rng.random() < 0.3:
        inner = rng.choice([",", ",,", ""]) + inner + rng.choice([",", ""])
    op = rng.choice(["in", "notin", "in", "notin", "=", ""]) if rng.random() < 0.1 \
        else rng.choice(["in", "notin"])
    close = ")" if rng.random() < 0.97 else rng.choice(["", "))", "("])
    return f"{sp()}{key}{rng.choice([' ', ' ', '', '  '])}{op}{sp()}({inner}{close}{sp()}"


def selector(rng: random.Random) -> str:
    if rng.random() < 0.2:
        return "".join(rng.choice(SOUP) for _ in range(rng.randrange(1, 10)))
    text = ",".join(requirement(rng) for _ in range(rng.randrange(1, 4)))
    if rng.random() < 0.05:
        text = rng.choice([",", ", "]) + text
    if rng.random() < 0.05:
        text += rng.choice([",", ", ", "(", ")"])
    if rng.random() < 0.03:
        at = rng.randrange(len(text) + 1)
        text = text[:at] + "\0" + text[at:]
    return text


def label_sets(rng: random.Random, text: str) -> list[dict[str, str]]:
    keys = [k for k in KEYS if k in text][:4] or ["a"]
    candidates = [v for v in VALUES if v in text] + ["", "v", "7", "8", "-3", "other"]
    sets: list[dict[str, str]] = [{}]
    for _ in range(4):
        sets.append({k: rng.choice(candidates) for k in keys if rng.random() < 0.8})
    return sets


def corpus(count: int, seed: int = 23) -> list[dict]:
    rng = random.Random(seed)
    texts = EDGES + [selector(rng) for _ in range(count)]
    return [{"selector": t, "labels": label_sets(rng, t)} for t in texts]


@pytest.fixture(scope="module")
def oracle() -> str:
    """Built up front by the test command (tests/controlplane/prebuild.py), never here under
    CI=true."""
    from tests.controlplane import prebuild

    return str(prebuild.prebuilt(prebuild.SELECTOR_ORACLE))


def ask(oracle: str, queries: list[dict]) -> list[dict]:
    done = subprocess.run([oracle], input="".join(json.dumps(q) + "\n" for q in queries),
                          capture_output=True, text=True, timeout=300, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


# apimachinery's operators, as the janitor names them (`=` and `==` are `in` of one value).
GO_OPERATORS = {"in": "in", "=": "in", "==": "in", "notin": "notin", "!=": "notin",
                "exists": "exists", "!": "!exists", "gt": "gt", "lt": "lt"}


def ours(query: dict) -> dict:
    try:
        requirements = parse_requirements(query["selector"])
    except ValueError:
        return {"ok": False}
    sel = Selector(tuple(requirements), everything=True)
    return {"ok": True,
            "requirements": sorted([k, op, sorted(v)] for k, op, v in requirements),
            "matches": [sel.matches(labels) for labels in query["labels"]]}


def theirs(answer: dict) -> dict:
    if not answer["ok"]:
        return {"ok": False}
    return {"ok": True,
            "requirements": sorted([k, GO_OPERATORS[op], sorted(v)]
                                   for k, op, v in answer.get("requirements", [])),
            "matches": answer.get("matches", [])}


def test_the_janitor_reads_every_selector_as_apimachinery_does(oracle):
    queries = corpus(20_000)
    answers = ask(oracle, queries)
    assert len(answers) == len(queries)
    differ = [(q["selector"], ours(q), theirs(a)) for q, a in zip(queries, answers, strict=True)
              if ours(q) != theirs(a)]
    refused = sum(not a["ok"] for a in answers)
    # The corpus is worth something only if it holds both kinds, empty values included.
    assert 0.2 < refused / len(answers) < 0.8, refused
    assert sum('""' in json.dumps(theirs(a)["requirements"]) for a in answers if a["ok"]) > 500
    assert differ == [], f"{len(differ)} of {len(queries)} differ, e.g. {differ[:5]}"


@pytest.mark.parametrize(("text", "labels"), [
    ("k in (v,)", {"k": ""}), ("k in ()", {"k": ""}), ("k in (,v)", {"k": ""}),
])
def test_the_issues_empty_values_match_as_kubectl_matches(oracle, text, labels):
    """A pod labelled `k: ""` is excluded by these selectors, as kubectl's are."""
    [answer] = ask(oracle, [{"selector": text, "labels": [labels]}])
    assert answer["matches"] == [True]
    assert ours({"selector": text, "labels": [labels]})["matches"] == [True]
