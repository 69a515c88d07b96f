"""Which edits setup makes to kubeconfig files: new entries where kubectl puts them, its own
updated, --overwrite replacing whole, anyone else's refused; and --print showing only that."""

from __future__ import annotations

import pytest

from cred_helper import goyaml
from cred_helper import kubeconfigwrite as kw
from cred_helper.errors import UsageError
from cred_helper.yamledit import Edit

OURS = {"exec": {"command": "cred-helper", "args": ["--cluster=prod"]}}


def kfile(path: str, text: str | None) -> kw.KubeFile:
    if text is None:
        return kw.KubeFile(path, None)
    return kw.KubeFile(path, None, text, "utf-8", goyaml.load(text))


def user(name: str, body: dict, ours: bool = True) -> kw.Entry:
    return kw.Entry("users", name, body, ours=ours)


def test_a_new_entry_goes_to_the_default_file():
    files = [kfile("/a", None), kfile("/b", "users: []\n")]
    plan = kw.plan(files, "/b", [user("u", OURS)])
    assert plan.edits == {"/b": [Edit("users", {"name": "u", "user": OURS})]}
    assert plan.notes == ["added user 'u' to /b"]


def test_an_existing_entry_is_updated_where_kubectl_found_it():
    files = [kfile("/a", "users:\n- name: x\n  user: {}\n"),
             kfile("/b", 'users:\n- name: u\n  user:\n    exec:\n      command: cred-helper\n'
                         '      env: [{name: "Y", value: "y"}]\n'),
             kfile("/c", "users:\n- name: u\n  user: {token: shadowed}\n")]
    plan = kw.plan(files, "/a", [user("u", OURS)])
    [edit] = plan.edits["/b"]
    assert edit.index == 0
    assert edit.item["user"]["exec"]["env"] == [{"name": "Y", "value": "y"}]  # kept
    assert edit.item["user"]["exec"]["args"] == ["--cluster=prod"]


def test_overwrite_keeps_nothing_of_the_old_entry():
    files = [kfile("/a", "users:\n- name: u\n  user:\n    token: old-secret\n"
                         "    exec: {command: cred-helper, env: []}\n")]
    plan = kw.plan(files, "/a", [user("u", OURS)], overwrite=True)
    assert plan.edits["/a"] == [Edit("users", {"name": "u", "user": OURS}, 0)]


def test_someone_elses_entry_is_refused_and_an_equal_one_left_alone():
    files = [kfile("/a", "clusters:\n- name: prod\n  cluster: {server: https://other}\n")]
    entry = kw.Entry("clusters", "prod", {"server": "https://mine"})
    with pytest.raises(UsageError, match="already has a cluster named 'prod'"):
        kw.plan(files, "/a", [entry])
    same = kw.Entry("clusters", "prod", {"server": "https://other"})
    assert kw.plan(files, "/a", [same]).edits == {}


def test_a_name_kubectl_reads_as_another_type_is_not_ours():
    """`name: y` is the boolean true to kubectl: a user named "y" is a new entry."""
    files = [kfile("/a", "users:\n- name: y\n  user: {}\n")]
    plan = kw.plan(files, "/a", [user("y", OURS)])
    assert plan.edits["/a"] == [Edit("users", {"name": "y", "user": OURS})]


@pytest.mark.parametrize("text", ["users:\n- name: a\n  user: {}\n- name: a\n  user: {}\n",
                                  "users: {a: 1}\n", "- 1\n", "a: .nan\n"])
def test_a_file_kubectl_cannot_read_is_refused(tmp_path, text):
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(UsageError):
        kw.load_file(str(path))


def test_print_shows_setups_entries_and_nothing_of_the_rest():
    files = [kfile("/a", "users:\n- name: other\n  user: {token: foreign-secret}\n"
                         "- name: u\n  user:\n    exec: {command: cred-helper, env: "
                         "[{name: T, value: own-secret}]}\n")]
    plan = kw.plan(files, "/a", [user("u", OURS), user("n", OURS)])
    shown = "".join(kw.shown(path, changes) for path, changes in plan.shown.items())
    assert "foreign-secret" not in shown and "own-secret" not in shown
    assert "# updated in users (its other fields kept):" in shown
    assert '- name: "n"' in shown and "--cluster=prod" in shown


def test_utf16_with_a_byte_order_mark_is_read_and_kept():
    data = "\ufeffusers: []\n".encode("utf-16-le")
    assert kw.decode(data, "/a") == ("\ufeffusers: []\n", "utf-16-le")
    with pytest.raises(UsageError, match="not UTF-8"):
        kw.decode(b"users: \xff\n", "/a")
