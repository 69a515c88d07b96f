"""`cred-helper ssh` with its certificate in the cache, without the CLI. Standard library only.

A run of the whole command that starts a session (no -L, a key from a file) leaves
`<warm key>.sshwarm` in the cache: the entry it used, the Host block's options, whether -t
was given, and digests of the known_hosts and Host block files. The warm key is a digest of
everything the command's settings were resolved from (fastkey.fast_key over its options,
CRED_HELPER_PKCS11_MODULE, KUBECONFIG and the identity of each kubeconfig file, whose
contexts shape the entry's key), never of the gateway command: the next run with the same
options finds it whatever it runs.

It is taken only when the entry is intact (its checksum), issued, the one named, more than
5 minutes from its end (nearer, the whole command says when the session will end), and the
files ssh reads are exactly the entry's (key, public key, certificate: a request made since
has other ones) and the run's (known_hosts, Host block). Then the gateway command is
quoted as the whole command quotes it (sshline.py) and this process becomes ssh. Anything
else, or anything unexpected: nothing is done, and the whole command does it all, explains
what is wrong, and writes the file again.
"""

from __future__ import annotations

import json
import os
import sys
import time

from ..cache.entrydoc import unseal
from ..cache.private import check_dir, read_private
from ..fastkey import cache_dir_for, fast_key, is_key, sha256
from . import sshline

TYPE_CHECKING = False  # typing itself is too slow to import on the warm path
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# With less left than this the whole command runs, and says when the session will end.
WARM_LEFT = 300
SUFFIX = ".sshwarm"
FORMAT = "sshwarm-1"


def split(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(cred-helper's options, the gateway command) of `ssh ...`, split at the first `--` as
    the whole command splits them."""
    rest = list(argv[1:])
    if "--" in rest:
        at = rest.index("--")
        return rest[:at], rest[at + 1:]
    return rest, []


def warm_key(options: Sequence[str], env: Mapping[str, str]) -> str:
    paths = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    flag = _flag(options, "--kubeconfig")
    if flag:
        paths = [flag]
    elif not paths:
        paths = [os.path.join(env.get("HOME") or os.path.expanduser("~"), ".kube", "config")]
    parts = [fast_key(["ssh", *options], env),
             f"CRED_HELPER_PKCS11_MODULE={env.get('CRED_HELPER_PKCS11_MODULE', chr(0))}",
             f"KUBECONFIG={env.get('KUBECONFIG', chr(0))}"]
    parts += [f"{path}={_identity(path)}" for path in paths]
    return sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def _flag(options: Sequence[str], name: str) -> str | None:
    """Every `--name` value given, joined: a key input, never parsed further."""
    found = [options[i + 1] for i, o in enumerate(options[:-1]) if o == name]
    found += [o[len(name) + 1:] for o in options if o.startswith(name + "=")]
    return "\0".join(found) or None


def _identity(path: str) -> str:
    try:
        st = os.stat(os.path.expanduser(path))
    except (OSError, ValueError):  # ValueError: a NUL, as in two --kubeconfig values joined
        return "absent"
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def digest(data: bytes) -> str:
    return sha256(data).hexdigest()


def warm_bytes(entry_key: str, host: str, options: Sequence[Sequence[str]], tty: bool,
               paths: Mapping[str, str], known_hosts: bytes, conf: bytes) -> bytes:
    """The file the whole command leaves: `paths` are store.Paths' (key, public,
    certificate, known_hosts, conf), and the last two files' contents are kept as digests."""
    return json.dumps({"format": FORMAT, "entry": entry_key, "host": host,
                       "options": [list(o) for o in options], "tty": tty, "paths": dict(paths),
                       "digests": {"known_hosts": digest(known_hosts), "conf": digest(conf)}},
                      sort_keys=True, ensure_ascii=True).encode("ascii")


def entry_of(data: bytes) -> str | None:
    """The entry key a warm file names (for logout), or None."""
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    entry = doc.get("entry") if isinstance(doc, dict) else None
    return entry if is_key(entry) else None


def try_session(argv: Sequence[str], env: Mapping[str, str], now: float | None = None) -> None:
    """Become ssh for a warm `cred-helper ssh`, or return having done nothing."""
    if os.name != "posix":
        return  # no process replacement there: the whole command runs ssh and waits
    try:
        found = session_argv(argv, env, time.time() if now is None else now,
                             _stdin_is_tty())
    except Exception:  # any surprise: the whole command re-checks and explains
        return
    if found is not None:
        become(found)


def _stdin_is_tty() -> bool:
    try:
        return os.isatty(0)
    except OSError:
        return False


def become(argv: list[str]) -> None:
    """exec ssh, found on PATH as the whole command finds it; return if it cannot be run
    (the whole command then says why)."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError:
        return


def session_argv(argv: Sequence[str], env: Mapping[str, str], now: float,
                 stdin_is_tty: bool) -> list[str] | None:
    """ssh's command line for a warm run, or None."""
    options, words = split(argv)
    if not argv or argv[0] != "ssh" or "--help" in options:
        return None
    cache_dir = cache_dir_for(["ssh", *options], env)
    check_dir(cache_dir)
    key = warm_key(options, env)
    warm = json.loads(read_private(os.path.join(cache_dir, key + SUFFIX)))
    if warm.get("format") != FORMAT or not is_key(warm.get("entry")):
        return None
    entry = json.loads(unseal(read_private(os.path.join(cache_dir, warm["entry"] + ".ssh"))))
    strings = ("name", "certificate", "private_openssh", "public_line")
    if (entry.get("format") != "ssh-1" or entry.get("key") != warm["entry"]
            or entry.get("state") != "issued"
            or not all(type(entry.get(f)) is str and entry[f] for f in strings)
            or type(entry.get("not_after")) not in (int, float)
            or not entry["not_after"] - now > WARM_LEFT):  # NaN too
        return None
    options_given = [tuple(o) for o in warm["options"]]
    paths = warm["paths"]  # the entry's own files: a request made since has another key
    files = {paths["key"]: entry["private_openssh"].encode(),
             paths["public"]: entry["public_line"].encode() + b"\n",
             paths["certificate"]: entry["certificate"].encode() + b"\n"}
    for path, data in files.items():
        if read_private(path) != data:
            return None
    for name in ("known_hosts", "conf"):
        if digest(read_private(paths[name])) != warm["digests"][name]:
            return None
    terminal = sshline.wants_terminal(words, warm["tty"] is True, stdin_is_tty)
    return sshline.ssh_argv("ssh", warm["host"], options_given, words, (),
                            terminal=terminal, batch=not stdin_is_tty)
