"""The seeded fuzz suite: over a thousand hostile inputs, each held to the same promises.

For every input, whatever it is: no traceback, no secret on any stream or kept in the cache,
no bad credential printed; exit 0 with a good credential (the cluster CA's certificate for the
printed key, naming exactly whom the input asked for, or a token the provider really signed),
or exit 1 (2 for usage) with one error line and an optional hint. Inputs: KUBERNETES_EXEC_INFO,
profiles, cache files, bootstrap kubeconfigs, and the answers of a misbehaving API server and
OpenID provider; test_fuzz_families.py adds long names, damaged side files and misdirected
aliases.

Each category also proves its depth: at least a set share of its cases must reach the server
and end with a credential (Tally.assert_clean). Most inputs are plausible ones with one thing
wrong or unusual, so the damage is followed past the first check; a generator whose cases all
stop at argument parsing fails its floor instead of passing quietly.

A failure names its seed; `FUZZ_SEED=N` changes the whole run's seeds.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import time

import jwt
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from cred_helper.config import PROFILE_KEYS
from tests.support.fuzz import (
    STRINGS,
    TEXT_NAMES,
    Outcome,
    Tally,
    b64,
    certificate_checker,
    check_outcome,
    deep_nesting,
    hostile_value,
    json_text,
    mutate_bytes,
    mutate_doc,
    private_file,
    run_case,
    run_checked,
    seeds,
    snapshot,
    visible,
)
from tests.support.oidc_stub import CLIENT_ID, KEY, id_token, stub_provider
from tests.support.pki import CA

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"
ALICE = ("alice@example.com", {"oncall", "sre"})
FAST = ["--approval-timeout=2s"]


def _alice(box):
    return certificate_checker(box.server.ca.cert, ALICE[0], ALICE[1])


def _env_text(text: str) -> str:
    return text.replace("\0", "")  # the one thing an environment variable cannot hold


# ---- KUBERNETES_EXEC_INFO ---------------------------------------------------------------------

CLUSTER_VALUES = {
    "server": ["https://127.0.0.1:99999", "https://", "https://[::1", "https://a b",
               "https://127.0.0.1:1\n", "http://127.0.0.1:1", "https://127.0.0.1:0", "", 7,
               "https://user@127.0.0.1:1", "https://127.0.0.1:1/" + "x" * 5000,
               "https://" + "a" * 64 + ".example:443", "https://" + "a." * 130 + "x"],
    "certificate-authority-data": ["not base64", b64(b"\0" * 64), b64(b"-----BEGIN CERT"),
                                   "", 12, b64(b"x" * 300)],
    "tls-server-name": ["", "\0", "a" * 300, "xn--", "*.example.com", 1, "other.example"],
    "insecure-skip-tls-verify": [True, "true", 1, None],
    "proxy-url": ["http://127.0.0.1:1", "socks5://127.0.0.1:1", "ftp://x", "://", 5],
}


def plausible_exec_info(box, base: dict, rng: random.Random) -> dict:
    """kubectl's variable as other kubectl versions and kubeconfigs shape it: still usable,
    one or two things unusual (so the run goes on to the server with them)."""
    doc = json.loads(json.dumps(base))
    cluster = doc["spec"]["cluster"]
    extra_ca = CA("another-ca").cert_pem
    changes = [
        lambda: doc.__setitem__(rng.choice(["extra", "status", "metadata"]),
                                hostile_value(rng)),
        lambda: doc["spec"].__setitem__("response", hostile_value(rng)),
        lambda: doc["spec"].__setitem__("interactive", rng.choice([True, False])),
        lambda: doc["spec"].pop("interactive", None),
        lambda: cluster.__setitem__("config", hostile_value(rng)),  # kubeconfig extensions
        lambda: cluster.__setitem__("server", cluster["server"] + "/"),
        lambda: cluster.__setitem__("server", cluster["server"].replace("127.0.0.1",
                                                                        "localhost")),
        lambda: cluster.__setitem__("certificate-authority-data",
                                    b64(box.server.ca.cert_pem + extra_ca)),
        lambda: cluster.__setitem__("certificate-authority-data",
                                    b64(box.server.ca.cert_pem.replace(b"\n", b"\r\n"))),
        lambda: cluster.__setitem__("tls-server-name", rng.choice(["localhost",
                                                                   "kubernetes.default"])),
        lambda: cluster.__setitem__("insecure-skip-tls-verify", False),
        lambda: cluster.__setitem__("proxy-url", ""),
        lambda: cluster.__setitem__(rng.choice(STRINGS[:20]) or "k", hostile_value(rng)),
    ]
    for change in rng.sample(changes, rng.randint(1, 3)):
        change()
    return doc


def exec_info_case(box, rng: random.Random):
    base = box.exec_info(api_version=rng.choice([V1, V1BETA1]))
    roll = rng.random()
    if roll < 0.45:
        doc = plausible_exec_info(box, base, rng)
        raw = json.dumps(doc, indent=rng.choice([None, 1])) if rng.random() < 0.8 else \
            json_text(doc)
    elif roll < 0.65:
        field = rng.choice(sorted(CLUSTER_VALUES))
        base["spec"]["cluster"][field] = rng.choice(CLUSTER_VALUES[field])
        raw = json_text(base)
    elif roll < 0.82:
        raw = json_text(mutate_doc(base, rng, rng.randint(1, 2)))
    elif roll < 0.95:
        raw = mutate_bytes(json.dumps(base).encode(), rng).decode("utf-8", "replace")
    else:
        raw = deep_nesting(rng.choice([50, 1000, 100_000]), rng)
    argv = box.base_args(rng.choice(["--cache=none", "--cache=file"]), *FAST)
    if rng.random() < 0.5:  # as a profile gives them: a damaged spec.cluster is followed on
        argv += [f"--server={box.server.url}", f"--certificate-authority={box.ca_file}"]
    return argv, dict(box.env, KUBERNETES_EXEC_INFO=_env_text(raw)), _alice(box)


def test_exec_info(fuzz_box):
    tally = Tally("exec info")
    for seed, rng in seeds(1, 250):
        argv, env, ok = exec_info_case(fuzz_box, rng)
        run_checked(tally, f"seed {seed}", fuzz_box, argv, env, ok)
    tally.assert_clean(credentials=0.5, reached=0.3)


# ---- profiles ----------------------------------------------------------------------------------

def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if \
            math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # TOML basic strings take JSON's escapes
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items()
                               if v is not None) + "}"
    return '""'


def _plausible_profile_values(box) -> dict[str, list]:
    """Values each profile key may usefully hold for this sandbox's cluster."""
    good_names = TEXT_NAMES
    return {
        "ttl": ["30m", "1h", "10m", "1800", 3600, "1h30m", "90m"],
        "cache": ["none", "file"],
        "key": ["ed25519", "p256"],
        "server": [box.server.url, box.server.url + "/"],
        "certificate-authority": [str(box.ca_file), "~/ca.crt"],
        "signer-ca": [str(box.ca_file), "~/ca.crt"],
        "bootstrap-token-file": [str(box.token_file), "~/bootstrap.token"],
        "subject-cn": good_names,
        "subject-o": [["oncall"], ["sre", "oncall"], [good_names[3]], good_names[5],
                      ["g" * 300, "日本"]],
        "approval-timeout": ["2s", "3s", 2],
        "no-browser": [True, False],
        "pin-source": ["prompt", "env:PIN"],
        "oidc-scope": [["openid"], "openid"],
        "reason": None,  # a flag only: an unknown key in a profile
    }


def profile_case(box, rng: random.Random):
    """A profile that works for this cluster, with a few keys set to other usable values and,
    in some cases, one key hostile; then now and then damaged as text."""
    profile = {"issuer": "csr", "bootstrap-token-file": str(box.token_file),
               "server": box.server.url, "certificate-authority": str(box.ca_file),
               "ttl": "30m", "approval-timeout": "2s", "cache": "none"}
    plausible = {k: v for k, v in _plausible_profile_values(box).items() if v}
    for key in rng.sample(sorted(plausible), rng.randint(1, 4)):
        profile[key] = rng.choice(plausible[key])
    expected = True
    roll = rng.random()
    if roll < 0.3:
        key = rng.choice(sorted(PROFILE_KEYS))
        paths = ["/dev/null", "/dev/zero", str(box.root), str(box.root / "missing"), "~",
                 "", str(box.token_file), str(box.ca_file), "/etc/passwd"]
        profile[key] = rng.choice(paths) if rng.random() < 0.3 else hostile_value(rng)
    elif roll < 0.35:
        profile[rng.choice(["colour", "ttl ", "Issuer", "reason"])] = "x"
    lines = ["[clusters.prod]"] + [f"{json.dumps(k)} = {_toml(v)}" for k, v in profile.items()
                                   if v is not None]
    text = "\n".join(lines) + "\n"
    if rng.random() < 0.12:
        text = mutate_bytes(text.encode("utf-8", "surrogatepass"), rng).decode("utf-8",
                                                                               "replace")
        expected = False
    if rng.random() < 0.03:
        text = "[clusters.prod]\nx = " + "[" * 5000 + "]" * 5000 + "\n"
    config = private_file(box.root / "fuzz.toml", text)
    env = dict(box.env, KUBERNETES_EXEC_INFO=json.dumps(box.exec_info()), PIN="0000")
    return ["--cluster=prod", f"--config={config}"], env, \
        _profile_checker(box, profile if expected else None)


def _profile_checker(box, profile: dict | None):
    """The certificate names the profile's subject-cn/-o where it sets them, alice's name and
    groups where not; a profile damaged as text may name anyone (its CA is still checked)."""
    if profile is None:
        return certificate_checker(box.server.ca.cert)
    cn = profile.get("subject-cn")
    groups = profile.get("subject-o")
    groups = [groups] if isinstance(groups, str) else groups
    return certificate_checker(
        box.server.ca.cert, cn if isinstance(cn, str) and cn else ALICE[0],
        set(groups) if isinstance(groups, list) and groups else ALICE[1])


def test_profiles(fuzz_box):
    tally = Tally("profiles")
    for seed, rng in seeds(2, 200):
        argv, env, ok = profile_case(fuzz_box, rng)
        run_checked(tally, f"seed {seed}", fuzz_box, argv, env, ok)
    tally.assert_clean(credentials=0.45, reached=0.4)


# ---- cache files -------------------------------------------------------------------------------

ENTRY_VALUES = {
    "not_after": [float("nan"), float("inf"), 1e308, 10**30, -1, "2099-01-01", None, True],
    "issued_at": [float("nan"), 1e308, -1e308, "0", None, time.time() + 86400],
    "ttl": [0, -1, float("nan"), 10**30, "1800", None],
    "status": [{}, [], "x", {"token": 1}, {"clientCertificateData": "x"},
               {"clientCertificateData": "x", "clientKeyData": "y", "extra": "z"}, None],
    "serial": ["", 1, None, "\n"],
    "key": ["0" * 64, "../x", "", None],
    "format": [0, 99, "1", None],
    "belongs_to": ["", "0" * 64, None, 5, "x" * 64],
}


class CacheFiles:
    """One good entry and its alias, restored before each case."""

    def __init__(self, box, argv: list[str], env: dict[str, str]) -> None:
        self.dir = box.cache_dir
        result = run_case(argv, env)
        assert result.code == 0, result.stderr
        (self.entry,) = self.dir.glob("*.json")
        (self.alias,) = self.dir.glob("*.alias")
        self.pristine = {p: p.read_bytes() for p in (self.entry, self.alias)}

    def restore(self) -> None:
        for path in self.dir.iterdir():
            if path not in self.pristine:
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        for path, data in self.pristine.items():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            private_file(path, data)


def damage(files: CacheFiles, rng: random.Random) -> None:
    if rng.random() < 0.25:  # the entry's neighbours: its served log, a pending CSR record
        key = files.entry.name[:-len(".json")]
        junk = rng.choice([b"", b"\xff\xfe", deep_nesting(5000, rng).encode(),
                           mutate_bytes(b'{"format": 1, "name": "x"}', rng),
                           mutate_bytes(b'{"format": 1, "name": "x", "why": "no", "at": 1.5}',
                                        rng)])
        kind = rng.choice(["served", "pending", "pending-refused"])
        private_file(files.dir / f"{key}.{kind}", junk)
    roll = rng.random()
    target = files.entry if rng.random() < 0.75 else files.alias
    data = files.pristine[target]
    if roll < 0.4:
        private_file(target, mutate_bytes(data, rng))
    elif roll < 0.75 and target is files.entry:
        doc = json.loads(data)
        if rng.random() < 0.6:
            for name in rng.sample(sorted(ENTRY_VALUES), rng.randint(1, 2)):
                doc[name] = rng.choice(ENTRY_VALUES[name])
        else:
            doc = mutate_doc(doc, rng, rng.randint(1, 3))
        private_file(target, json_text(doc))
    elif roll < 0.75:
        key, version = data.decode().split("\n")[:2]
        private_file(target, rng.choice([f"{key}\n", f"{key}\n{version}\nextra\n", f"../{key}\n"
                                         f"{version}\n", f"{key}\nv2\n", f"{key[:-1]}\n"
                                         f"{version}\n", "\n\n", f"{key}\n{version}"]))
    elif roll < 0.85:
        target.unlink()
        target.mkdir(mode=0o700)
    elif roll < 0.93:
        import os

        os.chmod(target, rng.choice([0o644, 0o640, 0o000]))
    else:
        target.unlink()
        target.symlink_to("/etc/passwd")


def test_cache_files(fuzz_box):
    tally = Tally("cache files")
    argv = fuzz_box.base_args()
    env = dict(fuzz_box.env, KUBERNETES_EXEC_INFO=json.dumps(fuzz_box.exec_info()))
    files = CacheFiles(fuzz_box, argv, env)
    for seed, rng in seeds(3, 200):
        files.restore()
        damage(files, rng)
        run_checked(tally, f"seed {seed}", fuzz_box, argv, env, _alice(fuzz_box))
    tally.assert_clean(credentials=0.8, reached=0.45)


# ---- bootstrap kubeconfigs -------------------------------------------------------------------

def plausible_kubeconfig(box, doc: dict, rng: random.Random) -> list[str]:
    """Make the bootstrap kubeconfig `doc` as people write them: more contexts than one,
    files instead of data, fields kubectl knows that cred-helper does not use. Returns the
    flags that choose its context."""
    flags: list[str] = []
    cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]["user"]

    def ca_from_a_file() -> None:
        cluster["certificate-authority"] = str(box.ca_file)
        del cluster["certificate-authority-data"]

    def token_from_a_file() -> None:
        if "token" in user:
            ending = rng.choice(["", "\n", " \n"])
            path = private_file(box.root / "boot-token", user.pop("token") + ending)
            user["token-file"] = str(path)

    def another_context() -> None:
        doc["contexts"].append({"name": "spare", "context": {"cluster": "boot",
                                                              "user": "boot"}})
        flags.append("--bootstrap-context=spare")

    changes = [
        ca_from_a_file, token_from_a_file, another_context,
        lambda: doc["contexts"][0]["context"].update(namespace=rng.choice(TEXT_NAMES[:8])),
        lambda: doc.update(preferences={}, extensions=[{"name": "x",
                                                         "extension": hostile_value(rng)}]),
        lambda: cluster.update({"tls-server-name": "localhost"}),
        lambda: doc["clusters"].insert(0, {"name": "other", "cluster": {
            "server": "https://127.0.0.1:1"}}),
        lambda: doc["users"].append({"name": "someone", "user": {"token": "not-this"}}),
    ]
    for change in rng.sample(changes, rng.randint(1, 3)):
        change()
    return flags


def kubeconfig_case(box, rng: random.Random):
    if rng.random() < 0.5:
        user = {"token": box.token}
    else:
        cert, key = box.server.client_cert(ALICE[0], sorted(ALICE[1]))
        user = {"client-certificate-data": b64(cert), "client-key-data": b64(key)}
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "boot",
           "clusters": [{"name": "boot", "cluster": box.server.cluster_entry()}],
           "users": [{"name": "boot", "user": user}],
           "contexts": [{"name": "boot", "context": {"cluster": "boot", "user": "boot"}}]}
    flags: list[str] = []
    roll = rng.random()
    if roll < 0.5:
        flags = plausible_kubeconfig(box, doc, rng)
        text = yaml.safe_dump(doc) if rng.random() < 0.8 else json.dumps(doc)
    elif roll < 0.72:
        try:
            text = yaml.safe_dump(mutate_doc(doc, rng, rng.randint(1, 2)))
        except yaml.YAMLError:
            text = json_text(mutate_doc(doc, rng))
    elif roll < 0.88:
        text = mutate_bytes(yaml.safe_dump(doc).encode(), rng).decode("utf-8", "replace")
    elif roll < 0.95:
        text = deep_nesting(rng.choice([100, 5000]), rng)
    else:  # aliases that expand when walked ("billion laughs")
        text = "a: &a [x, x, x, x, x, x, x, x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
            f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
            f"*{chr(97 + i)}]\n" for i in range(8)) + "contexts: *i\nusers: *i\nclusters: *i\n"
    path = private_file(box.root / "boot.kubeconfig", text)
    argv = ["--issuer=csr", "--ttl=30m", f"--bootstrap-kubeconfig={path}", "--cache=none",
            *FAST, *flags]
    env = dict(box.env)
    if rng.random() < 0.5:
        env["KUBERNETES_EXEC_INFO"] = json.dumps(box.exec_info())
    return argv, env, _alice(box)


def test_bootstrap_kubeconfigs(fuzz_box):
    tally = Tally("bootstrap kubeconfigs")
    for seed, rng in seeds(4, 200):
        argv, env, ok = kubeconfig_case(fuzz_box, rng)
        run_checked(tally, f"seed {seed}", fuzz_box, argv, env, ok)
    tally.assert_clean(credentials=0.35, reached=0.4)


# ---- a misbehaving API server ------------------------------------------------------------------

CODES = [200, 201, 204, 301, 302, 307, 400, 401, 403, 404, 409, 410, 422, 429, 500, 503]
SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


class ApiTamper:
    """Spoils one (now and then two) of the answers of one issuance, chosen among the answers
    an untouched issuance gets (SelfSubjectReview, CSR create, each watch event), and keeps
    the SelfSubjectReview as it was delivered: the certificate must name whom it named."""

    def __init__(self, answers: int, rng: random.Random) -> None:
        self.targets = set(rng.sample(range(answers), 2 if rng.random() < 0.15 else 1))
        self.rng = rng
        self.seen = 0
        self.review: tuple[int, bytes] | None = None

    def __call__(self, method: str, path: str, code: int, body: bytes) -> tuple[int, bytes]:
        index, self.seen = self.seen, self.seen + 1
        if index in self.targets:
            code, body = self.spoil(code, body)
        if path.split("?")[0] == SSR:
            self.review = (code, body)
        return code, body

    def spoil(self, code: int, body: bytes) -> tuple[int, bytes]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.5:
            try:
                doc = json.loads(body)
            except ValueError:
                doc = {}
            return code, json_text(mutate_doc(doc, rng, rng.randint(1, 3))).encode()
        if roll < 0.65:
            return rng.choice(CODES), body
        if roll < 0.8:
            return code, mutate_bytes(body, rng)
        if roll < 0.9:
            return code, b"<html><body>proxy error</body></html>"
        return code, deep_nesting(rng.choice([100, 100_000]), rng).encode()

    def checker(self, box):
        """Whom the delivered SelfSubjectReview named: a credential after one that named
        nobody readable is a bad credential."""
        try:
            info = json.loads(self.review[1])["status"]["userInfo"]  # type: ignore[index]
            name, groups = info["username"], info.get("groups") or []
            assert isinstance(name, str) and all(isinstance(g, str) for g in groups)
        except Exception:
            return lambda status: "a credential after an unreadable SelfSubjectReview"
        return certificate_checker(box.server.ca.cert, name, visible(groups))


def _answers_per_issuance(box, argv, env) -> int:
    counter = ApiTamper(1, random.Random(0))
    counter.targets = set()
    box.server.tamper = counter
    try:
        assert run_case(argv, env).code == 0
    finally:
        box.server.tamper = None
    return counter.seen


def test_api_server_answers(fuzz_box):
    tally = Tally("API server answers")
    argv = fuzz_box.base_args("--cache=none", *FAST)
    env = dict(fuzz_box.env, KUBERNETES_EXEC_INFO=json.dumps(fuzz_box.exec_info()))
    answers = _answers_per_issuance(fuzz_box, argv, env)
    assert answers >= 3, "SelfSubjectReview, create and at least one watch event"
    try:
        for seed, rng in seeds(5, 150):
            tamper = ApiTamper(answers, rng)
            fuzz_box.server.tamper = tamper
            run_checked(tally, f"seed {seed}", fuzz_box, argv, env,
                        lambda status, t=tamper: t.checker(fuzz_box)(status))
    finally:
        fuzz_box.server.tamper = None
    tally.assert_clean(credentials=0.2, reached=0.95)


# ---- a misbehaving OpenID provider -------------------------------------------------------------

SECRET = "s3cret-fuzz-value"


def _token_checker(issuer: str):
    def check(status: dict) -> str | None:
        token = status.get("token")
        if not isinstance(token, str):
            return "no token"
        try:
            claims = jwt.decode(token, KEY.public_key(), algorithms=["ES256"],
                                audience=CLIENT_ID, issuer=issuer)
        except jwt.PyJWTError as exc:
            return f"token does not verify: {exc}"
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or not math.isfinite(exp) or exp <= time.time():
            return f"token with exp {exp!r} printed"
        return None

    return check


def plausible_provider(stub, rng: random.Random) -> None:
    """A provider that works, answering as others do: more fields than cred-helper reads,
    more keys in its JWKS, other claims in its tokens."""
    discovery = json.loads(stub.answers["/.well-known/openid-configuration"][2])
    jwks = json.loads(stub.answers["/jwks"][2])
    token = json.loads(stub.answers["/token"][2])
    other_key = jwt.algorithms.ECAlgorithm.to_jwk(
        ec.generate_private_key(ec.SECP256R1()).public_key(), as_dict=True) | {"kid": "k0"}
    changes = [
        lambda: discovery.update({rng.choice(["userinfo_endpoint", "grant_types_supported",
                                              "x-vendor", "scopes_supported"]):
                                  hostile_value(rng)}),
        lambda: jwks["keys"].insert(0, other_key),
        lambda: jwks["keys"][-1].update(use="sig", alg="ES256"),
        lambda: jwks.update(extra=hostile_value(rng)),
        lambda: token.update(token_type=rng.choice(["Bearer", "bearer", "N_A"]),
                             scope="openid", refresh_token=None),
        lambda: token.update(expires_in=rng.choice([300, 3600, 86400])),
        lambda: token.update(id_token=id_token(stub.issuer, **{
            rng.choice(["name", "email", "groups", "nonce_x", "amr"]): hostile_value(rng)})),
    ]
    for change in rng.sample(changes, rng.randint(1, 3)):
        change()
    stub.answers["/.well-known/openid-configuration"] = (200, "application/json",
                                                         json.dumps(discovery))
    stub.answers["/jwks"] = (200, "application/json", json.dumps(jwks))
    stub.answers["/token"] = (200, "application/json",
                              json.dumps({k: v for k, v in token.items() if v is not None}))


def provider_answers(stub, rng: random.Random) -> None:
    stub.good_answers()
    if rng.random() < 0.4:
        plausible_provider(stub, rng)
        return
    if rng.random() < 0.35:  # a signed token with hostile claims
        claims = {name: hostile_value(rng) for name in
                  rng.sample(["exp", "iat", "nbf", "aud", "iss", "sub", "azp", "email",
                              "groups"], rng.randint(1, 2))}
        token = jwt.api_jws.PyJWS().encode(
            json_text({"iss": stub.issuer, "aud": CLIENT_ID, "sub": "robot",
                       "iat": int(time.time()), "exp": int(time.time()) + 1800} | claims
                      ).encode(), KEY, algorithm="ES256", headers={"kid": "k1"})
        stub.answers["/token"] = (200, "application/json", json.dumps(
            {"access_token": "a", "id_token": token, "expires_in": 1800}))
        return
    path = rng.choice(sorted(stub.answers))
    code, kind, body = stub.answers[path]
    roll = rng.random()
    if roll < 0.55:
        body = json_text(mutate_doc(json.loads(body), rng, rng.randint(1, 3)))
    elif roll < 0.7:
        code = rng.choice(CODES)
    elif roll < 0.85:
        body = mutate_bytes(body.encode(), rng)
    elif roll < 0.92:
        kind, body = "text/html", "<html>sign in</html>"
    else:
        body = deep_nesting(rng.choice([100, 100_000]), rng)
    stub.answers[path] = (code, kind, body)


def test_provider_answers(fuzz_box):
    tally = Tally("OpenID provider answers")
    secret = private_file(fuzz_box.root / "client.secret", SECRET + "\n")
    with stub_provider() as stub:
        argv = ["--issuer=oidc", f"--oidc-issuer-url={stub.issuer}",
                f"--oidc-client-id={CLIENT_ID}", f"--oidc-client-secret-file={secret}",
                "--oidc-grant=client-credentials"]
        kept = fuzz_box.cache_dir / (hashlib.sha256(stub.issuer.encode()).hexdigest()
                                     + ".provider")
        for seed, rng in seeds(6, 100):
            provider_answers(stub, rng)
            shutil.rmtree(fuzz_box.cache_dir, ignore_errors=True)
            if rng.random() < 0.3:  # a damaged copy of the provider's documents, kept a day
                fuzz_box.cache_dir.mkdir(mode=0o700, parents=True)
                private_file(kept, rng.choice([deep_nesting(5000, rng), "\xff", "[]",
                                               json_text(hostile_value(rng))]))
            before, files = len(stub.seen), snapshot(fuzz_box.cache_dir)
            result = run_case(argv, dict(fuzz_box.env))
            check_outcome(tally, f"seed {seed}", result, (SECRET,), _token_checker(stub.issuer),
                          len(stub.seen) > before, fuzz_box.cache_dir, files)
    tally.assert_clean(credentials=0.25, reached=0.95)


# ---- the same promises from the real process ---------------------------------------------------

def test_a_sample_in_real_processes(fuzz_box):
    """The in-process runner sees what `main` does; a sample checks the installed command,
    whose stderr would show a real traceback."""
    tally = Tally("real processes")
    builders = [exec_info_case, profile_case, kubeconfig_case]
    for seed, rng in seeds(7, 30):
        argv, env, ok = rng.choice(builders)(fuzz_box, rng)
        if any(len(v) > 100_000 for v in env.values()):  # over Linux's limit for one variable
            env.pop("KUBERNETES_EXEC_INFO")
        before, files = fuzz_box.server.received, snapshot(fuzz_box.cache_dir)
        done = fuzz_box.run(*argv, extra_env={k: v for k, v in env.items()
                                              if k not in fuzz_box.env})
        check_outcome(tally, f"seed {seed}", Outcome(done.returncode, done.stdout, done.stderr),
                      (fuzz_box.token,), ok, fuzz_box.server.received > before,
                      fuzz_box.cache_dir, files)
    tally.assert_clean(credentials=0.25, reached=0.3)
