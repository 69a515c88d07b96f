"""Items spliced into a YAML document's text: everything else keeps its bytes, and the result
reads (as kubectl reads it) as the old document with exactly those items added or replaced."""

from __future__ import annotations

import pytest
import yaml

from cred_helper import goyaml
from cred_helper.yamledit import Edit, NotEditable, apply

ITEM = {"name": "prod", "cluster": {"server": "https://x.example", "namespace-ish": "1e3",
                                    "flags": ["y", "1:20"], "env": [{"name": "Y", "value": "n"}],
                                    "empty": {}, "none": None, "on": True}}


def kept(old: str, new: str) -> bool:
    """Every character of `old` is in `new`, in order: the edit only inserted text (and
    dropped the null a list replaces)."""
    rest = iter(new)
    old = old.replace(": null", ":")
    return all(ch in rest for ch in old)


DOCS = {
    "kubectl": 'apiVersion: v1\nclusters:\n- cluster:\n    server: "1e3"\n  name: a\n'
               'contexts: null\nkind: Config\nusers: null\n',
    "indented": "clusters:\n  - name: a\n    cluster: {server: x}\n  # trailing comment\nz: 1\n",
    "comments": "# top\nclusters: # the clusters\n- name: a # a\n  cluster:\n    server: x  # s\n"
                "# between\nusers: []\n",
    "block-scalar-last": "clusters:\n- name: a\n  cluster:\n    note: |+\n      keep\n\n\n"
                         "# c\nkind: Config\n",
    "no-newline-at-end": "clusters:\n- name: a\n  cluster: {}",
    "crlf": "clusters:\r\n- name: a\r\n  cluster: {}\r\nusers: null\r\n",
    "bom": "\ufeffclusters:\n- name: a\n  cluster: {}\n",
    "json": '{"clusters": [{"name": "a", "cluster": {}}], "users": []}',
    "flow-empty-root": "{}",
    "flow-trailing-comma": "clusters: [{name: a, cluster: {}}, ]\n",
    "empty": "",
    "only-comments": "# nothing here yet",
    "section-missing": "apiVersion: v1\nkind: Config\n",
    "empty-null": "clusters:\nusers:\n",
    "alias-elsewhere": "base: &b {server: x}\nclusters:\n- name: a\n  cluster: *b\n",
    "unquoted-go-strings": "contexts:\n- name: a\n  context: {namespace: 1:20}\nclusters: []\n",
}


@pytest.mark.parametrize("name", DOCS)
def test_an_item_is_appended_and_nothing_else_changes(name):
    text = DOCS[name]
    new = apply(text, [Edit("clusters", ITEM), Edit("users", {"name": "u", "user": {}})])
    assert kept(text, new)
    doc = goyaml.load(new)
    assert doc["clusters"][-1] == goyaml.to_json(ITEM)
    assert doc["users"][-1] == {"name": "u", "user": {}}
    before = goyaml.load(text) or {}
    for key, value in before.items():
        if key not in ("clusters", "users"):
            assert doc[key] == value
    assert yaml.safe_load(new.lstrip("\ufeff"))  # PyYAML reads it too
    if "\r\n" in text:
        assert "\n" not in new.replace("\r\n", "")


@pytest.mark.parametrize("name", ["kubectl", "indented", "comments", "json",
                                  "flow-trailing-comma", "alias-elsewhere"])
def test_an_item_is_replaced_whole(name):
    text = DOCS[name]
    new = apply(text, [Edit("clusters", ITEM, 0)])
    doc = goyaml.load(new)
    assert doc["clusters"][0] == goyaml.to_json(ITEM)
    assert len(doc["clusters"]) == len(goyaml.load(text)["clusters"])


def test_a_replaced_item_takes_nothing_from_the_old_one():
    text = ("clusters:\n- name: prod\n  cluster:\n    server: https://old\n"
            "    insecure-skip-tls-verify: true\n    tls-server-name: old  # why\n"
            "- name: other\n  cluster: {server: \"y\"}\n")
    new = apply(text, [Edit("clusters", {"name": "prod", "cluster": {"server": "https://n"}},
                             0)])
    assert goyaml.load(new)["clusters"] == [{"name": "prod", "cluster": {"server": "https://n"}},
                                            {"name": "other", "cluster": {"server": "y"}}]
    assert "old" not in new.split("- name: other")[0].replace("# why", "")


@pytest.mark.parametrize(("text", "why"), [
    ("shared: &s []\nclusters: *s\n", "not written as a list"),
    ("clusters: &s []\nother: *s\n", "change more than"),
    ("base: &b {clusters: [{name: a}]}\n<<: *b\n", "change more than"),
    ("clusters:\n- &a {name: a, cluster: {}}\nother: *a\n", "would not read back"),
    ("- a\n- b\n", "not a mapping"),
    ("clusters: 5\n", "not written as a list"),
])
def test_a_form_it_cannot_edit_is_refused(text, why):
    edits = [Edit("clusters", ITEM)]
    if text.startswith("clusters:\n- &a"):
        edits = [Edit("clusters", ITEM, 0)]  # replacing the anchored item breaks the alias
    with pytest.raises(NotEditable, match=why):
        apply(text, edits)


def test_a_new_file_gets_kubectls_header():
    new = apply("", [Edit("contexts", {"name": "c", "context": {"cluster": "x"}})])
    assert goyaml.load(new) == {"apiVersion": "v1", "kind": "Config", "contexts": [
        {"name": "c", "context": {"cluster": "x"}}]}


def test_ambiguous_values_written_by_setup_read_back_exactly():
    values = ["1e3", "y", "n", "Y", "12E5", "0o17", "5e-3", "1:20", "", "null", "~", "-",
              "a: b", "#", "é", "line\nbreak"]
    item = {"name": "y", "context": {f"k{i}": v for i, v in enumerate(values)}}
    new = apply("contexts: []\n", [Edit("contexts", item)])
    assert goyaml.load(new)["contexts"] == [item]
    assert yaml.safe_load(new)["contexts"] == [item]
