"""Label selectors: --exclude-selector's text and a PDB's selector object."""

from __future__ import annotations

import pytest

from cred_helper.janitor.selectors import parse_selector, selector_object


@pytest.mark.parametrize(("text", "labels", "matches"), [
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "db"}, False),
    ("app!=web", {}, True),
    ("app!=web", {"app": "web"}, False),
    ("env in (a, b),tier", {"env": "b", "tier": "x"}, True),
    ("env notin (a,b)", {"env": "a"}, False),
    ("env notin (a,b)", {}, True),
    ("!canary", {"canary": "1"}, False),
    ("example.com/debug-keep=yes", {"example.com/debug-keep": "yes"}, True),
    # Empty values, as apimachinery's labels.Parse reads them (issue 23): each of these
    # excludes a pod labelled `k: ""`, as kubectl's selector does.
    ("k in (v,)", {"k": ""}, True),
    ("k in ()", {"k": ""}, True),
    ("k in (,v)", {"k": ""}, True),
    ("k in (a,,b)", {"k": ""}, True),
    ("k=", {"k": ""}, True),
    ("k notin ()", {"k": ""}, False),
    ("in in (in)", {"in": "in"}, True),  # `in` is a key and a value where one stands
    ("replicas>2", {"replicas": "3"}, True),
    ("replicas>2", {"replicas": "x"}, False),
    ("replicas<2", {}, False),
])
def test_text(text, labels, matches):
    assert parse_selector(text).matches(labels) is matches


@pytest.mark.parametrize("text", ["", "  ", ",", "a=b=c", "a in b", "!a=b", "-a=b", "a=-b",
                                  "a in (b", "a b", "keep=yes,", "tierin ()", "a>b", "a>",
                                  "a..b/c=d", "Example.com/k"])
def test_bad_text(text):
    with pytest.raises(ValueError):
        parse_selector(text)


def test_objects():
    sel = selector_object({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "NotIn", "values": ["db"]},
        {"key": "zone", "operator": "Exists"}]})
    assert sel.matches({"app": "web", "zone": "a"})
    assert not sel.matches({"app": "web", "zone": "a", "tier": "db"})


def test_an_empty_budget_selector_selects_every_pod():
    """policy/v1: `{}` covers the whole namespace (kube-apiserver 1.37 blocks an eviction
    under such a budget)."""
    assert selector_object({}).matches({})
    assert selector_object({"matchLabels": {}, "matchExpressions": []}).matches({"a": "b"})


@pytest.mark.parametrize("obj", [
    None, "x", {"matchLabels": {"a": 1}},
    {"matchExpressions": [{"key": "a", "operator": "Bogus"}]},
    {"matchExpressions": "x"}, {"matchLabels": {"a": "b"}, "matchExpressions": [None]},
])
def test_missing_or_malformed_budget_selectors_select_nothing(obj):
    assert not selector_object(obj).matches({"a": "b"})
