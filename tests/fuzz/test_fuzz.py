"""The seeded fuzz suite: over a thousand hostile inputs, each held to the same promises.

For every input, whatever it is: no traceback, no secret on any stream, no bad credential
printed; exit 0 with a good credential (the cluster CA's certificate for the printed key and
for alice, or a token the provider really signed), or exit 1 (2 for usage) with one error line
and an optional hint. Inputs: KUBERNETES_EXEC_INFO, profiles, cache files, bootstrap
kubeconfigs, and the answers of a misbehaving API server and OpenID provider.

A failure names its seed; `FUZZ_SEED=N` changes the whole run's seeds.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import time
from pathlib import Path

import jwt
import pytest
import yaml

from cred_helper.config import PROFILE_KEYS
from tests.support.fuzz import (
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
    run_case,
    seeds,
)
from tests.support.oidc_stub import CLIENT_ID, KEY, stub_provider

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"
ALICE = ("alice@example.com", {"oncall", "sre"})
FAST = ["--approval-timeout=2s"]


def _checker(sandbox, subject_from_input: bool = False):
    """Where the input may choose the subject (a profile's subject-cn, a SelfSubjectReview
    answer), a certificate for another name is no finding; the rest is checked all the same."""
    if subject_from_input:
        return certificate_checker(sandbox.server.ca.cert)
    return certificate_checker(sandbox.server.ca.cert, ALICE[0], ALICE[1])


def _env_text(text: str) -> str:
    return text.replace("\0", "")  # the one thing an environment variable cannot hold


def _private(path: Path, data: bytes | str) -> Path:
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


@pytest.fixture
def fuzz_box(sandbox):
    os.chmod(sandbox.token_file, 0o600)
    os.chmod(sandbox.root, 0o700)
    return sandbox


# ---- KUBERNETES_EXEC_INFO ---------------------------------------------------------------------

CLUSTER_VALUES = {
    "server": ["https://127.0.0.1:99999", "https://", "https://[::1", "https://a b",
               "https://127.0.0.1:1\n", "http://127.0.0.1:1", "https://127.0.0.1:0", "", 7,
               "https://user@127.0.0.1:1", "https://127.0.0.1:1/" + "x" * 5000],
    "certificate-authority-data": ["not base64", b64(b"\0" * 64), b64(b"-----BEGIN CERT"),
                                   "", 12, b64(os.urandom(300))],
    "tls-server-name": ["", "\0", "a" * 300, "xn--", "*.example.com", 1],
    "insecure-skip-tls-verify": [True, "true", 1, None],
    "proxy-url": ["http://127.0.0.1:1", "socks5://127.0.0.1:1", "ftp://x", "://", 5],
}


def exec_info_case(box, rng: random.Random) -> tuple[list[str], dict[str, str]]:
    base = box.exec_info(api_version=rng.choice([V1, V1BETA1]))
    values = dict(CLUSTER_VALUES)
    values["certificate-authority-data"] = [*values["certificate-authority-data"],
                                            b64(box.server.ca.cert_pem + b"\0")]
    roll = rng.random()
    if roll < 0.35:
        raw = json_text(mutate_doc(base, rng, rng.randint(1, 3)))
    elif roll < 0.65:
        cluster = base["spec"]["cluster"]
        for name in rng.sample(sorted(values), rng.randint(1, 2)):
            cluster[name] = rng.choice(values[name])
        raw = json_text(base)
    elif roll < 0.9:
        raw = mutate_bytes(json.dumps(base).encode(), rng).decode("utf-8", "replace")
    else:
        raw = deep_nesting(rng.choice([50, 1000, 100_000]), rng)
    cache = rng.choice(["--cache=none", "--cache=file"])
    return box.base_args(cache, *FAST), dict(box.env, KUBERNETES_EXEC_INFO=_env_text(raw))


def test_exec_info(fuzz_box):
    tally = Tally("exec info")
    for seed, rng in seeds(1, 250):
        argv, env = exec_info_case(fuzz_box, rng)
        check_outcome(tally, f"seed {seed}", run_case(argv, env), (fuzz_box.token,),
                      _checker(fuzz_box))
    tally.assert_clean()


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


def profile_case(box, rng: random.Random) -> tuple[list[str], dict[str, str]]:
    profile = {"issuer": "csr", "bootstrap-token-file": str(box.token_file),
               "server": box.server.url, "certificate-authority": str(box.ca_file),
               "ttl": "30m", "approval-timeout": "2s", "cache": "none"}
    paths = ["/dev/null", "/dev/zero", str(box.root), str(box.root / "missing"), "~", "",
             str(box.token_file), str(box.ca_file), "/etc/passwd"]
    for key in rng.sample(sorted(PROFILE_KEYS), rng.randint(1, 3)):
        profile[key] = rng.choice(paths) if rng.random() < 0.3 else hostile_value(rng)
    if rng.random() < 0.1:
        profile[rng.choice(["colour", "ttl ", "Issuer"])] = "x"
    lines = ["[clusters.prod]"] + [f"{json.dumps(k)} = {_toml(v)}" for k, v in profile.items()
                                   if v is not None]
    text = "\n".join(lines) + "\n"
    if rng.random() < 0.2:
        text = mutate_bytes(text.encode("utf-8", "surrogatepass"), rng).decode("utf-8",
                                                                               "replace")
    if rng.random() < 0.05:
        text = "[clusters.prod]\nx = " + "[" * 5000 + "]" * 5000 + "\n"
    config = _private(box.root / "fuzz.toml", text)
    return ["--cluster=prod", f"--config={config}"], dict(
        box.env, KUBERNETES_EXEC_INFO=json.dumps(box.exec_info()))


def test_profiles(fuzz_box):
    tally = Tally("profiles")
    for seed, rng in seeds(2, 200):
        argv, env = profile_case(fuzz_box, rng)
        check_outcome(tally, f"seed {seed}", run_case(argv, env), (fuzz_box.token,),
                      _checker(fuzz_box, subject_from_input=True))
    tally.assert_clean()


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
            _private(path, data)


def damage(files: CacheFiles, rng: random.Random) -> None:
    if rng.random() < 0.25:  # the entry's neighbours: its served log, a pending CSR record
        key = files.entry.name[:-len(".json")]
        junk = rng.choice([b"", b"\xff\xfe", deep_nesting(5000, rng).encode(),
                           mutate_bytes(b'{"format": 1, "name": "x"}', rng),
                           mutate_bytes(b'{"format": 1, "name": "x", "why": "no", "at": 1.5}',
                                        rng)])
        kind = rng.choice(["served", "pending", "pending-refused"])
        _private(files.dir / f"{key}.{kind}", junk)
    roll = rng.random()
    target = files.entry if rng.random() < 0.75 else files.alias
    data = files.pristine[target]
    if roll < 0.4:
        _private(target, mutate_bytes(data, rng))
    elif roll < 0.75 and target is files.entry:
        doc = json.loads(data)
        if rng.random() < 0.6:
            for name in rng.sample(sorted(ENTRY_VALUES), rng.randint(1, 2)):
                doc[name] = rng.choice(ENTRY_VALUES[name])
        else:
            doc = mutate_doc(doc, rng, rng.randint(1, 3))
        _private(target, json_text(doc))
    elif roll < 0.75:
        key, version = data.decode().split("\n")[:2]
        _private(target, rng.choice([f"{key}\n", f"{key}\n{version}\nextra\n", f"../{key}\n"
                                     f"{version}\n", f"{key}\nv2\n", f"{key[:-1]}\n{version}\n",
                                     "\n\n", f"{key}\n{version}"]))
    elif roll < 0.85:
        target.unlink()
        target.mkdir(mode=0o700)
    elif roll < 0.93:
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
        check_outcome(tally, f"seed {seed}", run_case(argv, env), (fuzz_box.token,),
                      _checker(fuzz_box))
    tally.assert_clean()


# ---- bootstrap kubeconfigs -------------------------------------------------------------------

def kubeconfig_case(box, rng: random.Random) -> tuple[list[str], dict[str, str]]:
    if rng.random() < 0.5:
        user = {"token": box.token}
    else:
        cert, key = box.server.client_cert(ALICE[0], sorted(ALICE[1]))
        user = {"client-certificate-data": b64(cert), "client-key-data": b64(key)}
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "boot",
           "clusters": [{"name": "boot", "cluster": box.server.cluster_entry()}],
           "users": [{"name": "boot", "user": user}],
           "contexts": [{"name": "boot", "context": {"cluster": "boot", "user": "boot"}}]}
    roll = rng.random()
    if roll < 0.55:
        try:
            text = yaml.safe_dump(mutate_doc(doc, rng, rng.randint(1, 3)))
        except yaml.YAMLError:
            text = json_text(mutate_doc(doc, rng))
    elif roll < 0.85:
        text = mutate_bytes(yaml.safe_dump(doc).encode(), rng).decode("utf-8", "replace")
    elif roll < 0.93:
        text = deep_nesting(rng.choice([100, 5000]), rng)
    else:  # aliases that expand when walked ("billion laughs")
        text = "a: &a [x, x, x, x, x, x, x, x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
            f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
            f"*{chr(97 + i)}]\n" for i in range(8)) + "contexts: *i\nusers: *i\nclusters: *i\n"
    path = _private(box.root / "boot.kubeconfig", text)
    argv = ["--issuer=csr", "--ttl=30m", f"--bootstrap-kubeconfig={path}", "--cache=none",
            *FAST]
    env = dict(box.env)
    if rng.random() < 0.5:
        env["KUBERNETES_EXEC_INFO"] = json.dumps(box.exec_info())
    return argv, env


def test_bootstrap_kubeconfigs(fuzz_box):
    tally = Tally("bootstrap kubeconfigs")
    for seed, rng in seeds(4, 200):
        argv, env = kubeconfig_case(fuzz_box, rng)
        check_outcome(tally, f"seed {seed}", run_case(argv, env), (fuzz_box.token,),
                      _checker(fuzz_box))
    tally.assert_clean()


# ---- a misbehaving API server ------------------------------------------------------------------

CODES = [200, 201, 204, 301, 302, 307, 400, 401, 403, 404, 409, 410, 422, 429, 500, 503]


def api_tamper(rng: random.Random):
    """Spoil the k-th answer of the exchange (SelfSubjectReview, CSR create, get, watch)."""
    target = rng.randrange(5)
    seen = [0]

    def tamper(method: str, path: str, code: int, body: bytes) -> tuple[int, bytes]:
        index, seen[0] = seen[0], seen[0] + 1
        if index != target:
            return code, body
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

    return tamper


def test_api_server_answers(fuzz_box):
    tally = Tally("API server answers")
    argv = fuzz_box.base_args("--cache=none", *FAST)
    env = dict(fuzz_box.env, KUBERNETES_EXEC_INFO=json.dumps(fuzz_box.exec_info()))
    try:
        for seed, rng in seeds(5, 150):
            fuzz_box.server.tamper = api_tamper(rng)
            check_outcome(tally, f"seed {seed}", run_case(argv, env), (fuzz_box.token,),
                          _checker(fuzz_box, subject_from_input=True))
    finally:
        fuzz_box.server.tamper = None
    tally.assert_clean()


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


def provider_answers(stub, rng: random.Random) -> None:
    stub.good_answers()
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
    secret = _private(fuzz_box.root / "client.secret", SECRET + "\n")
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
                _private(kept, rng.choice([deep_nesting(5000, rng), "\xff", "[]",
                                           json_text(hostile_value(rng))]))
            check_outcome(tally, f"seed {seed}", run_case(argv, dict(fuzz_box.env)),
                          (SECRET,), _token_checker(stub.issuer))
    tally.assert_clean()


# ---- the same promises from the real process ---------------------------------------------------

def test_a_sample_in_real_processes(fuzz_box):
    """The in-process runner sees what `main` does; a sample checks the installed command,
    whose stderr would show a real traceback."""
    tally = Tally("real processes")
    builders = [exec_info_case, profile_case, kubeconfig_case]
    for seed, rng in seeds(7, 30):
        argv, env = rng.choice(builders)(fuzz_box, rng)
        if any(len(v) > 100_000 for v in env.values()):  # over Linux's limit for one variable
            env.pop("KUBERNETES_EXEC_INFO")
        done = fuzz_box.run(*argv, extra_env={k: v for k, v in env.items()
                                              if k not in fuzz_box.env})
        check_outcome(tally, f"seed {seed}", Outcome(done.returncode, done.stdout, done.stderr),
                      (fuzz_box.token,), _checker(fuzz_box, subject_from_input=True))
    tally.assert_clean()

