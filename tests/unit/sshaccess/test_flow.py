"""The pure parts of making a request: what shapes its cache entry, what it is called. (The
flow itself runs against the real kube-apiserver: tests/realcluster/test_access_requests.py.)"""

from __future__ import annotations

import dataclasses

import pytest

from cred_helper import accessrequest as ar
from cred_helper.sshaccess.flow import entry_key, finished, request_name
from cred_helper.sshaccess.settings import Gateway, SshSettings

SSH = SshSettings(namespace="payments", pods=("api-*",), seconds=1800, reason="INC-42",
                  ssh_key="ed25519", user_ca="ssh-ed25519 CA", gateway=Gateway("gw", 22),
                  host_keys=("ssh-ed25519 H",), host_ca="", alias="prod-payments")


@pytest.mark.parametrize("field, value", [
    ("namespace", "shop"), ("pods", ("api-*", "db-0")), ("seconds", 3600),
    ("ssh_key", "pkcs11:token=t"), ("user_ca", "ssh-ed25519 OTHER")])
def test_each_shaping_setting_changes_the_entry(field, value):
    assert entry_key("k" * 64, dataclasses.replace(SSH, **{field: value})) != \
        entry_key("k" * 64, SSH)


@pytest.mark.parametrize("field, value", [
    ("reason", "another"), ("gateway", Gateway("gw2", 2222)), ("host_keys", ()),
    ("alias", "x"), ("pods", ("api-*",))])
def test_what_does_not_shape_it_does_not_change_it(field, value):
    assert entry_key("k" * 64, dataclasses.replace(SSH, **{field: value})) == \
        entry_key("k" * 64, SSH)


def test_the_credential_shapes_it():
    assert entry_key("a" * 64, SSH) != entry_key("b" * 64, SSH)


@pytest.mark.parametrize("username", ["alice@example.com", "oidc:https://login.example.com/t#"
                                      + "x" * 300, "ALICE", "@@", "system:serviceaccount:a:b"])
def test_request_names_are_api_names_and_login_names(username):
    name = request_name(username, 1_900_000_000, "abc123")
    assert ar.is_name(name) and name.endswith("-abc123") and len(name) < 80
    assert all(c.isalnum() or c == "-" for c in name)


@pytest.mark.parametrize("status, done", [
    ({}, False), ({"conditions": [{"type": "Approved", "status": "True"}]}, False),
    ({"certificate": "c"}, True), ({"conditions": [{"type": "Denied", "status": "True"}]}, True),
    ({"conditions": "junk"}, False)])
def test_what_ends_the_wait(status, done):
    assert finished({"metadata": {"name": "n"}, "status": status}) is done
