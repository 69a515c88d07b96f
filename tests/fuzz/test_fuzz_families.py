"""Seeded fuzz families for what issue 24 found outside the first corpus, under the same
promises as test_fuzz.py (and its depth floors):

- names of every length and script, from the API server's SelfSubjectReview or the command
  line: the certificate names exactly them, or the run is one clear error;
- damaged side files (served log, alias, pending record and refusal, lock, refresh token):
  never the credential lost, never a symlink followed;
- misdirected aliases (well formed, naming the entry of another cluster or key, or another
  apiVersion): the credential printed is always this cluster's, in the apiVersion asked for.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

from tests.support.apiserver import LocalAPIServer
from tests.support.damage import KINDS, clear, plant
from tests.support.fuzz import (
    NAMES,
    TEXT_NAMES,
    Tally,
    certificate_checker,
    private_file,
    run_case,
    run_checked,
    seeds,
    visible,
)
from tests.support.harness import edit_entry

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"
ALICE = ("alice@example.com", ["oncall", "sre", "system:bootstrappers"])


def _refused(status: dict) -> str:
    return "a credential for a name that is not text"


# ---- names ----------------------------------------------------------------------------------

def names_case(box, rng: random.Random):
    """(argv, checker): a person of any name, asked for by the server's answer or by flags."""
    argv = box.base_args("--cache=none")
    if rng.random() < 0.6:
        name = rng.choice(NAMES)
        groups = rng.sample([*NAMES, "oncall", "system:masters", "system:authenticated"],
                            rng.randint(0, 3))
        box.server.tokens[box.token] = (name, groups)
        expected = (name, visible(groups))
    else:
        name = rng.choice([*TEXT_NAMES, "\udce9t\udce9"])  # argv's undecodable bytes
        groups = rng.sample(TEXT_NAMES, rng.randint(1, 3))
        argv += [f"--subject-cn={name}", *(f"--subject-o={g}" for g in groups)]
        expected = (name, set(groups))
    if not all(n in TEXT_NAMES or n in ("oncall", "system:masters", "system:authenticated")
               for n in (expected[0], *groups)):
        return argv, _refused
    return argv, certificate_checker(box.server.ca.cert, *expected)


def test_names(fuzz_box):
    tally = Tally("names")
    env = dict(fuzz_box.env, KUBERNETES_EXEC_INFO=json.dumps(fuzz_box.exec_info()))
    try:
        for seed, rng in seeds(8, 100):
            argv, ok = names_case(fuzz_box, rng)
            run_checked(tally, f"seed {seed}", fuzz_box, argv, env, ok)
    finally:
        fuzz_box.server.tokens[fuzz_box.token] = tuple(ALICE)
    tally.assert_clean(credentials=0.6, reached=0.95)


# ---- damaged side files -----------------------------------------------------------------------

SIDE_FILES = ("served", "alias", "pending", "pending-refused", "lock", "refresh")
MORE_DAMAGE = ("garbage", "too large", "fifo", "mode 000")


def damage_side_file(path: Path, kind: str, target: Path, rng: random.Random) -> None:
    if kind in KINDS:
        plant(path, kind, target)
        return
    clear(path)
    if kind == "garbage":
        private_file(path, os.urandom(rng.randint(0, 300)))
    elif kind == "too large":  # past what cred-helper reads of a file it wrote
        private_file(path, b"x" * (4 * 1024 * 1024 + 1))
    elif kind == "fifo":
        os.mkfifo(path, 0o600)
    else:
        private_file(path, b"")
        os.chmod(path, 0o000)


def test_side_files(fuzz_box):
    tally = Tally("side files")
    argv = fuzz_box.base_args("--approval-timeout=2s")
    env = dict(fuzz_box.env, KUBERNETES_EXEC_INFO=json.dumps(fuzz_box.exec_info()))
    assert run_case(argv, env).code == 0
    cache = fuzz_box.cache_dir
    (entry,) = cache.glob("*.json")
    (alias,) = cache.glob("*.alias")
    pristine = {entry: entry.read_bytes(), alias: alias.read_bytes()}
    target = fuzz_box.root / "precious"
    private_file(target, "the user's own\n")
    kinds = [k for k in (*KINDS, *MORE_DAMAGE) if k != "foreign owner" or os.geteuid() == 0]
    for seed, rng in seeds(9, 120):
        for path in list(cache.iterdir()):
            clear(path)
        for path, data in pristine.items():
            private_file(path, data)
        if rng.random() < 0.45:  # expired: the renewal takes the lock and the pending record
            ended = time.time() - 60
            edit_entry(entry, lambda doc, e=ended: doc.update(issued_at=e - 1800, not_after=e))
        for name in rng.sample(SIDE_FILES, rng.randint(1, 3)):
            path = alias if name == "alias" else entry.with_suffix(f".{name}")
            damage_side_file(path, rng.choice(kinds), target, rng)
        result = run_checked(tally, f"seed {seed}", fuzz_box, argv, env,
                             certificate_checker(fuzz_box.server.ca.cert, ALICE[0],
                                                 visible(ALICE[1])))
        if result.code != 0:
            tally.finding("bad credential", f"seed {seed}", f"lost: {result.stderr}")
        if target.read_text() != "the user's own\n":
            tally.finding("bad credential", f"seed {seed}", "a symlink's target was written")
    tally.assert_clean(credentials=0.95, reached=0.3)


# ---- misdirected aliases ------------------------------------------------------------------------

class Clusters:
    """Two clusters (each its own CA) and, for each, entries of two key kinds, each reached
    by kubectl in both apiVersions: eight command lines, eight aliases, four entries."""

    def __init__(self, box, other: LocalAPIServer) -> None:
        self.box = box
        self.runs = []
        for server in (box.server, other):
            for key in ("ed25519", "p256"):
                for version in (V1, V1BETA1):
                    info = {**box.exec_info(api_version=version)}
                    info["spec"] = {**info["spec"], "cluster": server.cluster_entry()}
                    env = dict(box.env, KUBERNETES_EXEC_INFO=json.dumps(info))
                    self.runs.append((box.base_args(f"--key={key}"), env, server, version))
        self.alias_of, self.entry_of = [], []
        for argv, env, _, _ in self.runs:
            before = set(box.cache_dir.glob("*.alias"))
            assert run_case(argv, env).code == 0
            (alias,) = set(box.cache_dir.glob("*.alias")) - before
            self.alias_of.append(alias)
            self.entry_of.append(alias.read_text().split("\n")[0])
        self.pristine = {p: p.read_bytes() for p in box.cache_dir.iterdir()
                         if p.suffix in (".json", ".alias")}
        self.keys = sorted(p.stem for p in self.pristine if p.suffix == ".json")
        assert len(self.keys) == 4 and len(self.pristine) == 12

    def restore(self) -> None:
        for path in self.box.cache_dir.iterdir():
            if path not in self.pristine and path.is_file() and path.suffix != ".lock":
                path.unlink()
        for path, data in self.pristine.items():
            private_file(path, data)

    def misdirect(self, run: int, rng: random.Random) -> None:
        """Point run's own alias, and up to three others, at any entry in any apiVersion."""
        others = [p for p in self.alias_of if p != self.alias_of[run]]
        for path in [self.alias_of[run], *rng.sample(others, rng.randint(0, 3))]:
            private_file(path, f"{rng.choice(self.keys)}\n{rng.choice([V1, V1BETA1])}\n")
        if rng.random() < 0.3:  # and its own entry expired, so that the run renews it
            ended = time.time() - 60
            edit_entry(self.box.cache_dir / f"{self.entry_of[run]}.json",
                       lambda doc: doc.update(issued_at=ended - 1800, not_after=ended))


def test_misdirected_aliases(fuzz_box):
    tally = Tally("misdirected aliases")
    with LocalAPIServer() as other:
        other.tokens[fuzz_box.token] = fuzz_box.server.tokens[fuzz_box.token]
        other.auto_approve = fuzz_box.server.auto_approve
        clusters = Clusters(fuzz_box, other)
        for seed, rng in seeds(10, 120):
            clusters.restore()
            run = rng.randrange(len(clusters.runs))
            clusters.misdirect(run, rng)
            argv, env, server, version = clusters.runs[run]
            # This cluster's CA signed it (certificate_checker), for alice.
            result = run_checked(tally, f"seed {seed}", fuzz_box, argv, env,
                                 certificate_checker(server.ca.cert, ALICE[0],
                                                     visible(ALICE[1])), servers=(other,))
            if result.code != 0:
                tally.finding("bad credential", f"seed {seed}", f"lost: {result.stderr}")
            elif json.loads(result.stdout)["apiVersion"] != version:
                tally.finding("bad credential", f"seed {seed}",
                              f"not the {version} kubectl asked for")
    tally.assert_clean(credentials=0.95, reached=0.12)
