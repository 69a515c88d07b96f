"""The cache hit serves only intact, sane, fresh entries of this profile; the slow path then
discards the damaged ones with one warning."""

from __future__ import annotations

import io
import itertools
import json
import os
import time

import pytest

from cred_helper import fastpath
from cred_helper.cache.aliases import FastPathAliases
from cred_helper.cache.entry import Entry
from cred_helper.cache.entrydoc import seal, unseal
from cred_helper.cache.filestore import FileStore
from cred_helper.fastkey import alias_path, belongs_to, fast_key, flag_value
from cred_helper.fastpath import try_serve

NOW = 1_800_000_000.0
KEY = "0123456789abcdef" * 4
OTHER = "fedcba9876543210" * 4
V1 = "client.authentication.k8s.io/v1"
ARGV = ["--issuer=csr", "--ttl=30m"]


class Cache:
    def __init__(self, root) -> None:
        self.dir = str(root / "cache")
        self.env = {"HOME": str(root), "CRED_HELPER_CACHE_DIR": self.dir}
        self.warnings: list[str] = []
        self.store = FileStore(self.dir, self.warnings.append)
        self.entry_path = os.path.join(self.dir, f"{KEY}.json")
        self.fast = fast_key(ARGV, self.env)
        self.alias = alias_path(self.dir, self.fast)
        self.aliases = FastPathAliases(self.dir, self.warnings.append)

    def put(self, **changes) -> None:
        fields = dict(key=KEY, profile="p", issuer="csr", issued_at=NOW - 60,
                      not_after=NOW + 1740, ttl=1800, serial="s1", status={"token": "tok"},
                      belongs_to=belongs_to("", None))  # no profile, no KUBERNETES_EXEC_INFO
        self.store.save(Entry(**{**fields, **changes}))
        self.aliases.point(self.fast, KEY, V1)

    def serve(self, argv: list[str] = ARGV, **env: str) -> str | None:
        out = io.StringIO()
        served = try_serve(argv, {**self.env, **env}, out, now=NOW)
        assert served == bool(out.getvalue()), "printed exactly when it says it served"
        return out.getvalue() or None

    def read_entry(self) -> bytes:
        with open(self.entry_path, "rb") as fh:
            return fh.read()

    def replace_entry(self, data: bytes) -> None:
        with open(self.entry_path, "wb") as fh:
            fh.write(data)

    def reseal(self, **changes) -> None:
        doc = {**json.loads(unseal(self.read_entry())), **changes}
        self.replace_entry(seal(json.dumps(doc, sort_keys=True, separators=(",", ":"))
                                .encode()))


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Cache:
    monkeypatch.chdir(tmp_path)  # the fast key covers the working directory
    # Each serve is another kubectl process: a second run from one is a 401 retry.
    parents = itertools.count()
    monkeypatch.setattr(fastpath, "parent_identity", lambda: f"kubectl {next(parents)}")
    box = Cache(tmp_path)
    box.put()
    return box


def test_an_intact_fresh_entry_is_served(cache):
    doc = json.loads(cache.serve())
    assert doc["status"]["token"] == "tok" and doc["apiVersion"] == V1
    assert cache.warnings == []


def flip(cache: Cache) -> None:
    data = bytearray(cache.read_entry())
    data[data.index(b'"tok"') + 2] ^= 0x20  # "tOk": still JSON, still a token, not ours
    cache.replace_entry(bytes(data))


DAMAGED = {
    "flipped byte": flip,
    "torn": lambda c: c.replace_entry(c.read_entry()[:-40]),
    "older format": lambda c: c.replace_entry(
        json.dumps({"format": 1, **json.loads(unseal(c.read_entry()))}).encode()),
    "empty": lambda c: c.replace_entry(b""),
    "NaN expiry": lambda c: c.reseal(not_after=float("nan")),
    "infinite expiry": lambda c: c.reseal(not_after=float("inf")),
    "huge expiry": lambda c: c.reseal(not_after=1e308),
    "huge int expiry": lambda c: c.reseal(not_after=10**400),
    "expiry a string": lambda c: c.reseal(not_after=str(NOW + 1740)),
    "ttl a bool": lambda c: c.reseal(ttl=True),
    "empty status": lambda c: c.reseal(status={}),
    "status of numbers": lambda c: c.reseal(status={"token": 5}),
    "unknown status field": lambda c: c.reseal(status={"token": "t", "kind": "x"}),
    "serial missing": lambda c: c.reseal(serial=""),
    "a directory": lambda c: (os.unlink(c.entry_path), os.mkdir(c.entry_path, 0o700)),
}


@pytest.mark.parametrize("damage", DAMAGED.values(), ids=DAMAGED.keys())
def test_damage_is_not_served_and_the_slow_path_discards_it_once(cache, damage):
    damage(cache)
    assert cache.serve() is None
    assert cache.store.load(KEY) is None
    assert len(cache.warnings) == 1 and "discarding" in cache.warnings[0], cache.warnings
    assert not os.path.lexists(cache.entry_path)
    assert cache.store.load(KEY) is None and len(cache.warnings) == 1


def test_expired_or_nearly_is_not_served_and_not_a_warning(cache):
    cache.put(issued_at=NOW - 1800, not_after=NOW + 30)
    assert cache.serve() is None
    assert cache.store.load(KEY) is not None and cache.warnings == []


def test_an_entry_for_another_key_is_not_served(cache):
    cache.reseal(key=OTHER)  # intact, sane, but not the entry the alias names
    assert cache.serve() is None
    assert cache.store.load(KEY) is None
    assert len(cache.warnings) == 1 and "another key" in cache.warnings[0]


def write_alias(cache: Cache, data: bytes) -> None:
    with open(cache.alias, "wb") as fh:
        fh.write(data)


ALIASES = {
    "unknown apiVersion": f"{KEY}\nclient.authentication.k8s.io/v2\n".encode(),
    "no apiVersion": f"{KEY}\n".encode(),
    "an extra line": f"{KEY}\n{V1}\nmore\n".encode(),
    "no final newline": f"{KEY}\n{V1}".encode(),
    "key not hex": f"{'k' * 64}\n{V1}\n".encode(),
    "key with a path": f"../{KEY[3:]}\n{V1}\n".encode(),
    "key upper case": f"{KEY.upper()}\n{V1}\n".encode(),
    "key with spaces": f" {KEY}\n{V1}\n".encode(),
    "not ASCII": f"{KEY}\n{V1}\u00e9\n".encode(),
    "empty": b"",
}


@pytest.mark.parametrize("data", ALIASES.values(), ids=ALIASES.keys())
def test_an_alias_that_is_not_exactly_key_and_api_version_is_not_a_hit(cache, data):
    write_alias(cache, data)
    assert cache.serve() is None


def test_an_alias_that_is_not_a_private_regular_file_is_not_a_hit(cache):
    os.chmod(cache.alias, 0o644)
    assert cache.serve() is None
    os.unlink(cache.alias)
    os.mkdir(cache.alias, 0o700)
    assert cache.serve() is None
    os.rmdir(cache.alias)
    os.mkfifo(cache.alias, 0o600)  # must not wait for a writer
    started = time.monotonic()
    assert cache.serve() is None
    assert time.monotonic() - started < 10
    os.unlink(cache.alias)
    os.symlink(cache.entry_path, cache.alias)
    assert cache.serve() is None


def test_writing_an_alias_where_a_directory_stands_warns_once_and_replaces_it(cache):
    os.unlink(cache.alias)
    os.mkdir(cache.alias, 0o700)
    cache.aliases.point(cache.fast, KEY, V1)
    assert cache.warnings == [f"ignoring {cache.alias}: it is a directory; removed it (it is "
                              "made again when needed)"]
    assert [n for n in os.listdir(cache.dir) if n.startswith(".tmp-")] == []
    assert cache.serve() is not None


V1BETA1 = "client.authentication.k8s.io/v1beta1"


def _exec_info(api_version: str, cluster: dict | None = None) -> str:
    spec: dict = {"interactive": False}
    if cluster is not None:
        spec["cluster"] = cluster
    return json.dumps({"apiVersion": api_version, "kind": "ExecCredential", "spec": spec})


def test_a_hit_answers_only_in_the_api_version_kubectl_names(cache):
    """An alias naming another apiVersion than KUBERNETES_EXEC_INFO (one written for another
    request) is not followed: kubectl gets the version it asked for, from the full CLI."""
    info = _exec_info(V1BETA1)
    fast = fast_key(ARGV, {**cache.env, "KUBERNETES_EXEC_INFO": info})
    cache.aliases.point(fast, KEY, V1BETA1)
    assert json.loads(cache.serve(KUBERNETES_EXEC_INFO=info))["apiVersion"] == V1BETA1
    cache.aliases.point(fast, KEY, V1)  # the v1 answer, under v1beta1's shortcut
    assert cache.serve(KUBERNETES_EXEC_INFO=info) is None
    cache.aliases.point(cache.fast, KEY, V1BETA1)  # no variable: v1 is asked for
    assert cache.serve() is None
    for bad in ("not json", "[]", _exec_info("client.authentication.k8s.io/v2"),
                json.dumps({"apiVersion": V1, "kind": "Other"}),
                _exec_info(V1, {"server": 5})):
        fast = fast_key(ARGV, {**cache.env, "KUBERNETES_EXEC_INFO": bad})
        cache.aliases.point(fast, KEY, V1)
        assert cache.serve(KUBERNETES_EXEC_INFO=bad) is None, bad


CLUSTER_A = {"server": "https://a.example:6443", "certificate-authority-data": "QUFB"}


@pytest.mark.parametrize("argv, env, cluster", [
    (["--cluster=prod", *ARGV], {}, None),  # another profile's entry
    (ARGV, {"CRED_HELPER_CLUSTER": "prod"}, None),
    (ARGV, {}, CLUSTER_A),  # another cluster's
    (ARGV, {}, {**CLUSTER_A, "server": "https://b.example:6443"}),
    (ARGV, {}, {**CLUSTER_A, "certificate-authority-data": "QkJC"}),
    (ARGV, {}, {**CLUSTER_A, "tls-server-name": "b.example"}),
])
def test_an_alias_that_leads_to_the_entry_of_another_profile_or_cluster_is_not_followed(
        cache, argv, env, cluster):
    """Each case: this command line's alias, well formed, naming an intact fresh entry that
    was issued for something else (the entry says what in belongs_to)."""
    info = _exec_info(V1, cluster) if cluster is not None else None
    env = {**env, **({"KUBERNETES_EXEC_INFO": info} if info else {})}
    cache.aliases.point(fast_key(argv, {**cache.env, **env}), KEY, V1)
    cache.reseal(belongs_to=belongs_to("staging", (CLUSTER_A["server"], "", "QUFB")))
    assert cache.serve(argv, **env) is None
    # The entry's own command line is served.
    own = belongs_to(flag_value(argv, "--cluster") or env.get("CRED_HELPER_CLUSTER", ""),
                     cluster and (cluster["server"], cluster.get("tls-server-name", ""),
                                  cluster["certificate-authority-data"]))
    cache.reseal(belongs_to=own)
    assert json.loads(cache.serve(argv, **env))["status"]["token"] == "tok"


def test_an_entry_from_before_belongs_to_is_served_by_the_full_run_only(cache):
    doc = json.loads(unseal(cache.read_entry()))
    del doc["belongs_to"]
    cache.replace_entry(seal(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()))
    assert cache.serve() is None
    assert cache.store.load(KEY).belongs_to == "" and cache.warnings == []
    cache.reseal(belongs_to="not a digest")
    assert cache.serve() is None
    assert cache.store.load(KEY) is None and "belongs_to" in cache.warnings[0]
