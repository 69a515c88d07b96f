"""Seeded hostile inputs, an in-process runner, and the checks every fuzz case must pass.

Each case runs `cred_helper.__main__.main` in this process (a subprocess per case would cost
the suite ten minutes; the same `main` runs either way, and a subprocess sample in the suite
checks the real process too). An exception that escapes, or an "unexpected ..." error line
(which is what the CLI prints where a traceback would otherwise be), counts as a traceback.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import io
import itertools
import json
import os
import random
import signal
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cred_helper.x509names import subject_of, text_problem

from .harness import SECRET_MARKERS

BASE_SEED = int(os.environ.get("FUZZ_SEED", "9009"))
CASE_TIMEOUT = 30  # seconds: far beyond any honest case; a hang is a finding, not a wait

# ---- hostile values --------------------------------------------------------------------------

STRINGS = [
    "", " ", "\n", "\0", "a\0b", "\r\nX-Injected: 1", "é", "日本語", "\ud800", "💥",
    "x" * 70, "x" * 5000, "-1", "0", "1e309", "NaN", "true", "null", "[]", "{}", "%00", "%zz",
    "../../etc/passwd", "/etc/passwd", "/dev/null", "/", "~", "~nobody/x", "$HOME",
    "https://", "https://127.0.0.1:99999", "https://127.0.0.1:-1", "https://[::1", "https://a b",
    "https://127.0.0.1\n", "http://127.0.0.1:1", "https://user:pw@127.0.0.1:1/x", "ftp://x",
    "https://127.0.0.1:1/", "unix:///var/run/x.sock", "pkcs11:token=x", "env:", "file:", "cmd:",
    "cmd:/bin/false", "30m", "1h30m", "0s", "-5m", "99999999999999999999h", "1e3",
    "client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1", "ExecCredential",
    "system:masters", "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t", "not base64!!", "QUJD",
]
NUMBERS: list[Any] = [0, -1, 1, 2**31, 2**63, 10**400, -(10**400), 0.5, -0.0, 1e308,
                      float("nan"), float("inf"), float("-inf"), True, False]


def hostile_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if roll < 0.35:
        return rng.choice(STRINGS)
    if roll < 0.6:
        return rng.choice(NUMBERS)
    if roll < 0.68:
        return None
    if depth > 2 or roll < 0.8:
        return [hostile_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(STRINGS[:20]) or "k": hostile_value(rng, depth + 1)
            for _ in range(rng.randint(0, 3))}


def _paths(doc: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


def mutate_doc(doc: Any, rng: random.Random, mutations: int = 1) -> Any:
    """A deep copy of `doc` with a few nodes replaced, deleted, retyped or added."""
    doc = copy.deepcopy(doc)
    for _ in range(mutations):
        paths = list(_paths(doc))
        path = rng.choice(paths)
        op = rng.choice(("replace", "replace", "delete", "wrap", "add", "nest"))
        if not path:
            if op in ("replace", "wrap"):
                doc = hostile_value(rng) if op == "replace" else [doc]
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if op == "delete":
            del parent[last]
        elif op == "wrap":
            parent[last] = [parent[last]]
        elif op == "nest":
            parent[last] = {"x": parent[last]}
        elif op == "add" and isinstance(parent[last], dict):
            parent[last][rng.choice(STRINGS[:25]) or "k"] = hostile_value(rng)
        else:
            parent[last] = hostile_value(rng)
    return doc


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """Bit flips, truncation, insertion or duplication: what a torn or damaged file holds."""
    if not data:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    data = bytearray(data)
    op = rng.choice(("flip", "flip", "truncate", "insert", "duplicate", "zero"))
    if op == "flip":
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif op == "truncate":
        del data[rng.randrange(len(data)):]
    elif op == "insert":
        at = rng.randrange(len(data) + 1)
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    elif op == "duplicate":
        a = rng.randrange(len(data))
        data[a:a] = data[a:a + rng.randint(1, 64)]
    else:
        a = rng.randrange(len(data))
        data[a:a + rng.randint(1, 32)] = b"\0" * min(32, len(data) - a)
    return bytes(data)


YAML_NOISE = ["&a ", "*a", "!!binary ", "{", "]", ":", "- ", "\t", "'", "\x00", "\ufeff", "-1",
              "?", "%YAML 1.1\n", "---\n", "**", "[[", "99999", "true"]


def damaged_yaml(text: str, rng: random.Random, first_line: int = 0) -> str:
    """`text` with one to three lines (from `first_line` on) deleted, repeated, indented
    afresh or given a piece of YAML syntax: a policy file an editor or a merge broke."""
    damaged = text.splitlines(keepends=True)
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(min(first_line, len(damaged) - 1), len(damaged))
        action = rng.randrange(4)
        if action == 0:
            del damaged[i]
        elif action == 1:
            damaged.insert(i, damaged[rng.randrange(len(damaged))])
        elif action == 2:
            at = rng.randrange(len(damaged[i]) + 1)
            damaged[i] = damaged[i][:at] + rng.choice(YAML_NOISE) + damaged[i][at:]
        else:
            damaged[i] = " " * rng.randrange(12) + damaged[i].lstrip()
        if not damaged:
            break
    return "".join(damaged)


def json_text(doc: Any) -> str:
    """JSON as a hostile writer would produce it: NaN and Infinity allowed."""
    return json.dumps(doc, allow_nan=True)


def deep_nesting(depth: int, rng: random.Random) -> str:
    return "[" * depth + "]" * depth if rng.random() < 0.5 else '{"a":' * depth + "1" + \
        "}" * depth


# ---- running cred-helper in this process ----------------------------------------------------

class CaseTimeout(BaseException):
    """Raised in the main thread when a case hangs (a BaseException, so the CLI's catch-all
    does not turn it into an error line)."""


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    escaped: str = ""  # an exception that got out of main(), as text


_fake_ppid = itertools.count(4_000_000)


@contextlib.contextmanager
def _process_state(env: dict[str, str]) -> Iterator[None]:
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    real_getppid = os.getppid
    fake = next(_fake_ppid)  # each case is a different kubectl process (the 401 rule)
    os.environ.clear()
    os.environ.update(env)
    os.getppid = lambda: fake  # type: ignore[assignment]
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        os.getppid = real_getppid  # type: ignore[assignment]
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)


def _alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout


def run_case(argv: list[str], env: dict[str, str]) -> Outcome:
    from cred_helper.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    escaped = ""
    code = -1
    with _process_state(env):
        sys.stdin, sys.stdout, sys.stderr = io.StringIO(""), out, err
        try:
            code = main(list(argv))
        except CaseTimeout:
            escaped = f"hung for more than {CASE_TIMEOUT}s"
        except BaseException as exc:  # what escapes is the finding
            escaped = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved
    return Outcome(code, out.getvalue(), err.getvalue(), escaped)


# ---- what every case must show -----------------------------------------------------------------

@dataclass
class Tally:
    """Inputs run, how deep they got (the server reached, a credential printed), and the
    findings: tracebacks, secrets shown or kept, bad credentials printed."""

    name: str
    inputs: int = 0
    succeeded: int = 0
    reached: int = 0  # cases during which the API server (or provider) got a request
    failures: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {
        "traceback": 0, "secret": 0, "bad credential": 0, "shape": 0})

    def finding(self, kind: str, case: str, detail: str) -> None:
        self.counts[kind] += 1
        self.failures.append(f"[{kind}] {case}: {detail[:400]}")

    def summary(self) -> str:
        c = self.counts
        return (f"fuzz {self.name}: {self.inputs} inputs, {self.reached} reached the server, "
                f"{self.succeeded} credentials, {c['traceback']} tracebacks, "
                f"{c['secret']} secrets shown or kept, {c['bad credential']} bad credentials, "
                f"{c['shape']} malformed outcomes")

    def assert_clean(self, credentials: float, reached: float) -> None:
        """No finding, and the cases went deep: at least these shares of them ended with a
        credential and reached the server. A generator whose inputs all stop at the first
        check (an unknown flag, a missing server) passes no finding and proves nothing."""
        print(self.summary())
        assert not self.failures, self.summary() + "\n" + "\n".join(self.failures[:15])
        assert self.succeeded >= credentials * self.inputs, \
            f"too shallow: {self.summary()} (floor: {credentials:.0%} credentials)"
        assert self.reached >= reached * self.inputs, \
            f"too shallow: {self.summary()} (floor: {reached:.0%} reaching the server)"


def snapshot(cache_dir: Path | None) -> dict[Path, tuple[int, int, int]]:
    """What each file in the cache is (inode, mtime, mode), to tell what a case wrote."""
    if cache_dir is None or not cache_dir.is_dir():
        return {}
    found = {}
    for path in cache_dir.rglob("*"):
        try:
            st = path.lstat()
        except OSError:
            continue
        found[path] = (st.st_ino, st.st_mtime_ns, st.st_mode)
    return found


def kept_secret(cache_dir: Path | None, secrets: tuple[str, ...],
                before: dict[Path, tuple[int, int, int]]) -> str | None:
    """What in the cache holds a secret it must not: a secret of the input (a bootstrap
    token, a client secret) anywhere, or key material in a file open to others that the case
    wrote (one the input planted so is the input's: cred-helper refuses to use it)."""
    for path, identity in snapshot(cache_dir).items():
        if stat.S_ISLNK(identity[2]) or not stat.S_ISREG(identity[2]):
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for secret in secrets:
            if secret and secret.encode() in data:
                return f"{secret[:6]}... kept in {path.name}"
        if b"PRIVATE KEY" in data and identity[2] & 0o077 and before.get(path) != identity:
            return f"key material written to {path.name}, open to others"
    return None


def check_outcome(tally: Tally, case: str, result: Outcome, secrets: tuple[str, ...],
                  credential_ok: Callable[[dict], str | None], reached: bool = False,
                  cache_dir: Path | None = None,
                  cache_before: dict[Path, tuple[int, int, int]] | None = None) -> None:
    """No traceback; no secret on stderr, none of the input's on stdout, none kept in the
    cache; stdout empty or exactly one good ExecCredential; exit 0 with a credential, else
    1 (2 for usage) with one error line and an optional hint. `reached`: the server got a
    request during the case; `cache_before`: the cache's snapshot before it."""
    tally.inputs += 1
    tally.reached += reached
    streams = result.stderr
    if result.escaped or "Traceback" in streams or "cred-helper: error: unexpected " in streams:
        tally.finding("traceback", case, result.escaped or streams)
        return
    for secret in (*SECRET_MARKERS, *secrets):
        if secret and secret in streams:
            tally.finding("secret", case, f"{secret[:6]}... on stderr")
            return
    for secret in secrets:  # a credential's own key belongs on stdout; the input's never
        if secret and secret in result.stdout:
            tally.finding("secret", case, f"{secret[:6]}... on stdout")
            return
    kept = kept_secret(cache_dir, secrets, cache_before or {})
    if kept:
        tally.finding("secret", case, kept)
        return
    if result.code == 0:
        problem = _credential_problem(result.stdout, credential_ok)
        if problem:
            tally.finding("bad credential", case, problem)
        else:
            tally.succeeded += 1
        return
    if result.stdout:
        tally.finding("bad credential", case, f"exit {result.code} with stdout")
        return
    lines = [ln for ln in result.stderr.splitlines()
             if not ln.startswith(("cred-helper: warning:", "cred-helper: waiting"))]
    if result.code not in (1, 2) or not lines or not lines[0].startswith(
            "cred-helper: error: ") or len(lines) > 2 or (
            len(lines) == 2 and not lines[1].startswith("hint: ")):
        tally.finding("shape", case, f"exit {result.code}: {result.stderr!r}")


def run_checked(tally: Tally, case: str, box, argv: list[str], env: dict[str, str],
                credential_ok: Callable[[dict], str | None],
                servers: tuple = ()) -> Outcome:
    """Run one case in this process against the sandbox `box` and hold it to every promise
    (check_outcome), counting whether its API server (or one of `servers`) got a request."""
    watched = (box.server, *servers)
    requests, files = sum(s.received for s in watched), snapshot(box.cache_dir)
    result = run_case(argv, env)
    check_outcome(tally, case, result, (box.token,), credential_ok,
                  sum(s.received for s in watched) > requests, box.cache_dir, files)
    return result


def _credential_problem(stdout: str, credential_ok: Callable[[dict], str | None]) -> str | None:
    if not stdout.endswith("\n") or stdout.count("\n") != 1:
        return "stdout is not one line"
    try:
        doc = json.loads(stdout)
    except ValueError:
        return "stdout is not JSON"
    if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential" or doc.get(
            "apiVersion") not in ("client.authentication.k8s.io/v1",
                                  "client.authentication.k8s.io/v1beta1"):
        return "not an ExecCredential"
    status = doc.get("status")
    if not isinstance(status, dict):
        return "no status"
    try:
        end = datetime.datetime.strptime(status["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    except (KeyError, TypeError, ValueError):
        return "no valid expirationTimestamp"
    if end.replace(tzinfo=datetime.timezone.utc) <= datetime.datetime.now(datetime.timezone.utc):
        return "expirationTimestamp in the past"
    return credential_ok(status)


def certificate_checker(ca_cert: x509.Certificate, username: str | None = None,
                        groups: set[str] | None = None) -> Callable[[dict], str | None]:
    """A printed certificate must be the cluster CA's, for the printed key, and, where the
    case knows whom it asked for, for exactly that name and those groups."""

    def check(status: dict) -> str | None:
        try:
            cert = x509.load_pem_x509_certificate(status["clientCertificateData"].encode())
            key = load_pem_private_key(status["clientKeyData"].encode(), None)
        except (KeyError, ValueError, TypeError, AttributeError):
            return "certificate or key does not parse"
        try:
            cert.verify_directly_issued_by(ca_cert)
        except (ValueError, TypeError, Exception):  # InvalidSignature is an Exception
            return "certificate not signed by the cluster CA"
        if cert.public_key().public_bytes(*_SPKI) != key.public_key().public_bytes(*_SPKI):
            return "certificate is for another key"
        now = datetime.datetime.now(datetime.timezone.utc)
        if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
            return "certificate not valid now"
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            return "no extended key usage"
        if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
            return "not a client certificate"
        subject = subject_of(cert)
        cns = [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        orgs = {a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)}
        if username is not None and (cns != [username] or orgs != (groups or set())):
            return f"certificate names {[c[:80] for c in cns]} {sorted(orgs)[:5]}, " \
                   f"not {username[:80]!r}"
        return None

    return check


def _spki() -> tuple:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return Encoding.DER, PublicFormat.SubjectPublicKeyInfo


_SPKI = _spki()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def private_file(path: Path, data: bytes | str) -> Path:
    """Write a file only its owner may read (secret files must be), replacing what was there."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


# Names as authenticators give them: X.509's 64-byte bound on each side of the boundary
# (in characters and in UTF-8 bytes), far past it, scripts and emoji, the characters RFC 4514
# escapes, spaces at the ends, and the text a JSON escape can hold that UTF-8 cannot.
NAMES = [
    "alice@example.com", "a", "x" * 63, "x" * 64, "x" * 65, "é" * 32, "é" * 33,
    "oidc:https://login.example.com/tenant#4f6b2c0e-9d8a-4b1e-8f3c-2a7d5e6f1b09",
    "oidc:https://login.example.com/tenant-" + "0123456789" * 6 + "#ab", "n" * 255,
    "m" * 1000, "日本語のユーザー" * 10, "💥" * 20, "CN=root,O=system:masters", "a+b=c;d<e>f",
    " padded ", "#hash", "tab\there", "back\\slash", "\ud800broken", "ok\udcffno",
]


# The names a certificate can carry (the last two are not text: one clear error each).
TEXT_NAMES = [n for n in NAMES if text_problem(n) is None]


def visible(groups) -> set[str]:
    """The groups a certificate carries from a SelfSubjectReview (csr.visible_groups)."""
    return {g for g in groups if not g.startswith("system:")}


def seeds(category: int, count: int) -> list[tuple[int, random.Random]]:
    """(seed, generator) per case, so a failure names the seed that reproduces it."""
    return [(s, random.Random(s)) for s in
            (BASE_SEED * 100_000 + category * 10_000 + i for i in range(count))]
