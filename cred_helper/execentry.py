"""Finding the kubeconfig `exec` entry that runs cred-helper for a profile.

`login --cluster NAME` and `doctor` need what kubectl would pass (`spec.cluster` of the context
whose user runs `cred-helper --cluster=NAME`), so that a login caches under the same key a later
`get` from kubectl looks for. Pure over parsed kubeconfig documents; `kubeconfig_paths` reads
only the environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExecEntry:
    path: str  # the kubeconfig file holding the user
    context: str  # a context that uses this user ("" if none does)
    user: str
    exec: dict[str, Any] = field(repr=False)
    cluster: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def provides_cluster_info(self) -> bool:
        return self.exec.get("provideClusterInfo") is True


def kubeconfig_paths(env: Mapping[str, str], flag: str | None = None) -> list[str]:
    """The files kubectl reads, in its order: --kubeconfig, else $KUBECONFIG's list, else
    ~/.kube/config."""
    if flag:
        return [flag]
    listed = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        return listed
    home = env.get("HOME") or os.path.expanduser("~")
    return [os.path.join(home, ".kube", "config")]


def names_profile(args: Any, profile: str) -> bool:
    """Whether exec args select `profile` (`--cluster=NAME` or `--cluster NAME`)."""
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        return False
    for i, arg in enumerate(args):
        if arg == f"--cluster={profile}":
            return True
        if arg == "--cluster" and i + 1 < len(args) and args[i + 1] == profile:
            return True
    return False


def profile_in(args: Any) -> str:
    """The profile exec args select (`--cluster=NAME` or `--cluster NAME`, the last one, as
    click reads them), or ""."""
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        return ""
    found = ""
    for i, arg in enumerate(args):
        if arg.startswith("--cluster="):
            found = arg[len("--cluster="):]
        elif arg == "--cluster" and i + 1 < len(args):
            found = args[i + 1]
    return found


def current_context(docs: list[tuple[str, Mapping[str, Any]]]) -> str:
    """kubectl's current context: the first file's that sets one, as kubectl merges them."""
    return next((doc["current-context"] for _, doc in docs if isinstance(doc, Mapping)
                 and isinstance(doc.get("current-context"), str)
                 and doc["current-context"]), "")


def current_profile(docs: list[tuple[str, Mapping[str, Any]]]) -> tuple[str, str]:
    """(context, profile) for kubectl's current context, where its user runs cred-helper with a
    profile; ("", "") otherwise. Users and contexts are looked up across the files, as kubectl
    merges them."""
    current = current_context(docs)
    contexts: dict[str, dict] = {}
    users: dict[str, dict] = {}
    for _, doc in docs:
        if isinstance(doc, Mapping):
            for name, ctx in _items(doc, "contexts", "context"):
                contexts.setdefault(name, ctx)
            for name, user in _items(doc, "users", "user"):
                users.setdefault(name, user)
    user = users.get(contexts.get(current, {}).get("user"), {}) if current else {}
    exec_ = user.get("exec") if isinstance(user, dict) else None
    if isinstance(exec_, dict) and runs_cred_helper(exec_.get("command")):
        profile = profile_in(exec_.get("args"))
        if profile:
            return current, profile
    return "", ""


@dataclass(frozen=True)
class Lookup:
    """Where kubectl finds an exec entry's command: `path` it runs, or `problem` why it cannot."""

    command: str
    path: str = ""
    problem: str = ""


def look_up(command: str, kubeconfig_path: str, path_env: str,
            unusable: Callable[[str], str]) -> Lookup:
    """Find `command` as kubectl does (client-go's exec authenticator over Go's os/exec).

    A command with a slash is a path: relative ones were made absolute against the directory
    of the kubeconfig file that holds the user (clientcmd's ResolveLocalPaths). Any other is
    looked up in the PATH kubectl itself runs with (the entry's `env` is for the plugin and
    does not take part), directory by directory, an empty entry meaning `.`. The first match
    wins, and one found through a relative directory is refused (Go's exec.ErrDot): kubectl
    then says "executable ... not found". `unusable(path)` says why a file cannot run, or "".
    """
    if not command:
        return Lookup(command, problem="the exec entry has no command")
    if "/" in command:
        # filepath.Clean, as client-go cleans the command: lexical, like normpath
        full = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(kubeconfig_path)),
                                             command))
        why = unusable(full)
        return Lookup(command, problem=f"{full} {why}") if why else Lookup(command, full)
    for directory in path_env.split(os.pathsep) if path_env else []:
        candidate = os.path.join(directory or ".", command)
        if unusable(candidate):
            continue
        if not os.path.isabs(candidate):
            return Lookup(command, problem=f"it is found only as {candidate}, through a "
                          "relative PATH entry, which kubectl refuses to run")
        return Lookup(command, candidate)
    return Lookup(command, problem="it is not on PATH")


def runs_cred_helper(command: Any) -> bool:
    if not isinstance(command, str):
        return False
    base = os.path.basename(command)
    return base in ("cred-helper", "kubectl-cred_helper") or base.startswith("cred-helper")


def _items(doc: Mapping[str, Any], section: str, inner: str) -> list[tuple[str, dict]]:
    items = doc.get(section)
    if not isinstance(items, list):
        return []
    return [(i["name"], i[inner]) for i in items
            if isinstance(i, dict) and isinstance(i.get("name"), str)
            and isinstance(i.get(inner), dict)]


def find(docs: list[tuple[str, Mapping[str, Any]]], profile: str) -> list[ExecEntry]:
    """Every (context, user) whose user's exec entry runs cred-helper for `profile`, in file
    order. Users and clusters are looked up across all files, as kubectl merges them."""
    users: dict[str, tuple[str, dict]] = {}
    clusters: dict[str, dict] = {}
    contexts: list[tuple[str, dict]] = []
    for path, doc in docs:
        if not isinstance(doc, Mapping):
            continue
        for name, user in _items(doc, "users", "user"):
            users.setdefault(name, (path, user))  # the first file that names it wins
        for name, cluster in _items(doc, "clusters", "cluster"):
            clusters.setdefault(name, cluster)
        contexts += _items(doc, "contexts", "context")
    found: list[ExecEntry] = []
    used: set[str] = set()
    for ctx_name, ctx in contexts:
        user_name = ctx.get("user")
        if not isinstance(user_name, str) or user_name not in users:
            continue
        path, user = users[user_name]
        exec_ = user.get("exec")
        if isinstance(exec_, dict) and runs_cred_helper(exec_.get("command")) \
                and names_profile(exec_.get("args"), profile):
            cluster = clusters.get(ctx.get("cluster"), {}) if isinstance(ctx.get("cluster"),
                                                                       str) else {}
            found.append(ExecEntry(path, ctx_name, user_name, exec_, cluster))
            used.add(user_name)
    for user_name, (path, user) in users.items():
        exec_ = user.get("exec")
        if user_name not in used and isinstance(exec_, dict) \
                and runs_cred_helper(exec_.get("command")) \
                and names_profile(exec_.get("args"), profile):
            found.append(ExecEntry(path, "", user_name, exec_))
    return found


def kubectls_entry(entries: list[ExecEntry], current: str, profile: str) -> ExecEntry | None:
    """Of the entries `find` gave, the one whose context kubectl uses without --context: the
    `current` context's, else the first where every context names the same cluster. None
    where no context runs the profile. Where contexts of several clusters run it and none is
    current, a UsageError asks which: the first would be a guess, and a credential for
    another cluster than the person meant."""
    from .errors import UsageError

    with_context = [e for e in entries if e.context]
    for entry in with_context:
        if entry.context == current:
            return entry
    if not with_context or all(e.cluster == with_context[0].cluster for e in with_context):
        return with_context[0] if with_context else None
    first = with_context[0].context
    names = [repr(e.context) for e in with_context]
    now = f"kubectl's current context {current!r} is none of them" if current else \
        "kubectl has no current context"
    raise UsageError(
        f"the kubeconfig contexts {', '.join(names[:-1])} and {names[-1]} run "
        f"`cred-helper --cluster={profile}` for different clusters, and {now}: which one is "
        "meant?",
        f"`cred-helper login --cluster {profile} --context {first}` logs in for one; or make "
        f"it kubectl's current context: `kubectl config use-context {first}`")


def load_all(paths: list[str]) -> list[tuple[str, Mapping[str, Any]]]:
    """The kubeconfig files that exist and parse; others are skipped (kubectl reports those
    itself)."""
    from .errors import CredHelperError
    from .kubeconfig import load

    docs = []
    for path in paths:
        if not os.path.exists(path):
            continue
        try:
            docs.append((path, load(path, "--kubeconfig")))
        except CredHelperError:
            continue
    return docs


def cluster_info(entry: ExecEntry):
    """spec.cluster as kubectl sends it for this entry (None without provideClusterInfo,
    or when no context names the user)."""
    from .execinfo import ClusterInfo
    from .kubeconfig import data_or_file, text

    if not entry.provides_cluster_info or not entry.context:
        return None
    where = f"--kubeconfig {entry.path}"
    base = os.path.dirname(os.path.abspath(entry.path))
    return ClusterInfo(
        server=text(entry.cluster, "server", where),
        tls_server_name=text(entry.cluster, "tls-server-name", where),
        ca_data=data_or_file(entry.cluster, "certificate-authority", base, "--kubeconfig"),
        insecure_skip_tls_verify=entry.cluster.get("insecure-skip-tls-verify") is True,
        proxy_url=text(entry.cluster, "proxy-url", where),
    )
