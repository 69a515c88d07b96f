"""Pure judgements for `doctor`: each takes facts gathered elsewhere and returns Checks.

Nothing here reads a file, the clock or the network, so every verdict is testable with plain
values. No value passed in is a secret, and none is printed beyond names and paths.
"""

from __future__ import annotations

import email.utils
import re
import stat as st
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"
MAX_SKEW = 60.0  # seconds; certificates are backdated 5 minutes, tokens often allow 1-5
KUBERC_POLICY_MINOR = 35  # kubectl's credential-plugin allowlist in kuberc arrived in 1.35
CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED = 0x10000, 0x20000, 0x40000


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    hint: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def failed(checks: list[Check]) -> bool:
    return any(c.status == FAIL for c in checks)


def render_text(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"{c.status:<4}  {c.name}: {c.detail}")
        if c.hint:
            lines.append(f"      hint: {c.hint}")
    return "\n".join(lines) + "\n"


# ---- profile -------------------------------------------------------------------------------

def setting_sources(flags: Mapping[str, Any], env: Mapping[str, str],
                    profile: Mapping[str, Any], keys: Mapping[str, str],
                    env_vars: Mapping[str, str]) -> dict[str, str]:
    """Where each setting came from: flag, env, profile or default (never the value)."""
    found = {}
    for key in keys:
        if flags.get(key.replace("-", "_")) not in (None, ()):
            found[key] = "flag"
        elif env_vars.get(key) and env.get(env_vars[key]):
            found[key] = f"env {env_vars[key]}"
        elif key in profile:
            found[key] = "profile"
        else:
            found[key] = "default"
    return found


def pick_profile(given: str, given_by: str, current: tuple[str, str], names: list[str],
                 path: str, file_exists: bool) -> tuple[str, str]:
    """The profile doctor checks and why: the one named (flag or CRED_HELPER_CLUSTER), else the
    one kubectl's current context runs, else the file's only profile. Never a guess among
    several: that would check one profile and let the person believe another is fine."""
    from ..config import unknown_profile
    from ..errors import UsageError

    context, current_profile = current
    if given:
        chosen, why = given, given_by
    elif current_profile:
        chosen, why = current_profile, f"the profile kubectl's current context {context!r} runs"
    elif len(names) == 1:
        return names[0], f"the only profile in {path}"
    elif names:
        raise UsageError(f"doctor checks one profile, and {path} has {', '.join(names)}",
                         f"name one: `cred-helper doctor --cluster {names[0]}` (or "
                         + ", ".join(names[1:]) + "); with no --cluster it checks the "
                         "profile kubectl's current context runs")
    else:
        where = f"{path} has none" if file_exists else f"{path} does not exist"
        raise UsageError(f"no profile to check: {where}",
                         "`cred-helper setup --cluster NAME ...` writes one and its kubeconfig "
                         "entry (`cred-helper help setup`)")
    if chosen not in names:
        raise unknown_profile(chosen, names, path, file_exists, named_by=why)
    return chosen, why


def profile_check(config_file: str, file_exists: bool, cluster: str, sources: dict[str, str],
                  why: str = "") -> Check:
    where = config_file if file_exists else f"{config_file} (missing)"
    chosen = {k: v for k, v in sources.items() if v != "default"}
    said = ", ".join(f"{k} from {v}" for k, v in chosen.items()) or "all defaults"
    because = f" ({why})" if why else ""
    return Check("profile", OK, f"[clusters.{cluster or '-'}] of {where}{because}: {said}")


# ---- kubectl and its exec entry --------------------------------------------------------------

def kubectl_minor(version_doc: Any) -> int | None:
    """The client's minor version from `kubectl version --client -o json`."""
    if not isinstance(version_doc, dict):
        return None
    client = version_doc.get("clientVersion")
    if not isinstance(client, dict):
        return None
    minor = client.get("minor")
    if isinstance(minor, str) and (m := re.match(r"\d+", minor)):
        return int(m.group())
    git = client.get("gitVersion")
    if isinstance(git, str) and (m := re.match(r"v\d+\.(\d+)", git)):
        return int(m.group(1))
    return None


def exec_entry_checks(entries: list[Any], cluster: str, profile_has_server: bool,
                      issuer: str) -> list[Check]:
    """The kubeconfig user that runs `cred-helper --cluster=NAME`: its apiVersion,
    interactiveMode and provideClusterInfo."""
    if not cluster:
        return [Check("exec entry", SKIP, "no profile named, so no entry to look for")]
    if not entries:
        return [Check("exec entry", FAIL,
                      f"no kubeconfig user runs `cred-helper --cluster={cluster}`",
                      f"run `cred-helper setup --cluster {cluster}`, or add an exec entry "
                      "(docs/setup.md: A kubeconfig entry by hand)")]
    entry = entries[0]
    exec_ = entry.exec
    where = f"user {entry.user!r} of {entry.path}"
    problems: list[tuple[str, str, str]] = []
    api = exec_.get("apiVersion")
    if api == "client.authentication.k8s.io/v1beta1":
        problems.append((WARN, "apiVersion v1beta1", "use client.authentication.k8s.io/v1"))
    elif api != "client.authentication.k8s.io/v1":
        problems.append((FAIL, f"apiVersion {api!r}", "use client.authentication.k8s.io/v1"))
    mode = exec_.get("interactiveMode")
    if mode is None and api == "client.authentication.k8s.io/v1":
        problems.append((FAIL, "no interactiveMode (v1 requires it)",
                         "add interactiveMode: IfAvailable"))
    elif mode == "Never" and issuer == "oidc":
        problems.append((WARN, "interactiveMode Never: an OIDC login can never prompt",
                         "use IfAvailable, or log in with `cred-helper login` first"))
    elif mode not in (None, "IfAvailable", "Always", "Never"):
        problems.append((FAIL, f"interactiveMode {mode!r}", "use IfAvailable"))
    if not entry.provides_cluster_info:
        status = WARN if profile_has_server else FAIL
        problems.append((status, "provideClusterInfo is not true: cred-helper gets no server "
                         "or CA from kubectl",
                         "set provideClusterInfo: true (or server and certificate-authority "
                         "in the profile)"))
    if not entry.context:
        problems.append((WARN, "no context uses this user", "add a context for it"))
    if not problems:
        detail = (f"{where}, context {entry.context!r}: {api}, interactiveMode {mode}, "
                  "provideClusterInfo true")
        return [Check("exec entry", OK, detail)]
    worst = FAIL if any(p[0] == FAIL for p in problems) else WARN
    return [Check("exec entry", worst, f"{where}: " + "; ".join(p[1] for p in problems),
                  "; ".join(p[2] for p in problems))]


def exec_command_check(lookup: Any, said: str, own_version: str) -> Check:
    """Whether kubectl can start the exec entry's command: found as kubectl looks (a
    execentry.Lookup), and answering `--version` (a pipx venv whose Python went away is found,
    yet cannot start). `said` is that answer's first line, or why it failed."""
    name = "exec command"
    if lookup.problem:
        return Check(name, FAIL, f"kubectl cannot run `{lookup.command}`: {lookup.problem}",
                     "put cred-helper on the PATH kubectl runs with (pipx: `pipx ensurepath`, "
                     "then a new shell), or write its absolute path as the exec entry's "
                     "command (`cred-helper setup --command PATH ...`)")
    if not said.startswith("cred-helper, version "):
        return Check(name, FAIL, f"{lookup.path} does not start as cred-helper: "
                     f"{said or 'no answer to --version'}",
                     "reinstall it (pipx reinstall cred-helper), or fix the exec entry's "
                     "command")
    version = said[len("cred-helper, version "):].strip()
    if version != own_version:
        return Check(name, WARN, f"kubectl runs {lookup.path}, version {version}; this doctor "
                     f"is {own_version}",
                     "two installs: remove the one you do not use, or point the exec entry "
                     "at the other")
    return Check(name, OK, f"`{lookup.command}` is {lookup.path} ({said})")


def kuberc_check(minor: int | None, kuberc: Any, path: str, command: str,
                 resolved: str) -> Check:
    """kubectl 1.35+'s credentialPluginPolicy / credentialPluginAllowlist in kuberc."""
    if minor is None or minor < KUBERC_POLICY_MINOR:
        return Check("kuberc plugin policy", SKIP,
                     "this kubectl has no credential-plugin policy (it arrived in 1.35)")
    if kuberc is None:
        return Check("kuberc plugin policy", OK, f"no kuberc at {path}: every plugin may run")
    if kuberc == "missing":
        return Check("kuberc plugin policy", FAIL, f"$KUBERC names {path}, which does not "
                     "exist: kubectl stops with an error before it runs any command",
                     "create the file, or unset KUBERC")
    if not isinstance(kuberc, dict):
        return Check("kuberc plugin policy", FAIL, f"{path} is not a kuberc document",
                     "fix the file (kind: Preference)")
    policy = kuberc.get("credentialPluginPolicy") or "AllowAll"
    allow = kuberc.get("credentialPluginAllowlist") or []
    if policy == "AllowAll":
        return Check("kuberc plugin policy", OK, f"{path}: AllowAll")
    if policy == "DenyAll":
        return Check("kuberc plugin policy", FAIL, f"{path}: DenyAll: kubectl will not run "
                     "cred-helper", "set credentialPluginPolicy: Allowlist with "
                     f"credentialPluginAllowlist: [{{name: {resolved or command}}}]")
    names = {e.get("name") for e in allow if isinstance(e, dict)} if isinstance(allow,
                                                                               list) else set()
    if command in names or (resolved and resolved in names):
        return Check("kuberc plugin policy", OK, f"{path}: Allowlist names {command}")
    return Check("kuberc plugin policy", FAIL,
                 f"{path}: policy {policy} and cred-helper is not in credentialPluginAllowlist",
                 f"add `- name: {resolved or command}` to credentialPluginAllowlist")


# ---- the API server -----------------------------------------------------------------------

def clock_skew(date_header: str | None, now: float, max_skew: float = MAX_SKEW) -> Check:
    if not date_header:
        return Check("clock", WARN, "the API server sent no Date header", "")
    try:
        server = email.utils.parsedate_to_datetime(date_header).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return Check("clock", WARN, "the API server's Date header cannot be read")
    skew = now - server
    if abs(skew) <= max_skew:
        return Check("clock", OK, f"within {abs(skew):.0f}s of the API server")
    ahead = "ahead of" if skew > 0 else "behind"
    return Check("clock", FAIL, f"this machine's clock is {abs(skew):.0f}s {ahead} the API "
                 "server's", "sync the clock (timedatectl set-ntp true, or chronyd/ntpd): "
                 "certificates and tokens are judged by it")


def access_review_check(review: Any) -> Check:
    status = review.get("status") if isinstance(review, dict) else None
    if not isinstance(status, dict):
        return Check("may create CSRs", FAIL, "the API server's review has no status")
    if status.get("allowed") is True:
        return Check("may create CSRs", OK,
                     "SelfSubjectAccessReview: create certificatesigningrequests allowed")
    reason = status.get("reason") if isinstance(status.get("reason"), str) else ""
    return Check("may create CSRs", FAIL,
                 "the bootstrap identity may not create certificatesigningrequests"
                 + (f" ({reason[:200]})" if reason else ""),
                 "bind it to the requester ClusterRole: `cred-helper setup --print-rbac`")


# ---- the OS keyring -------------------------------------------------------------------------

def keyring_use(cache: str, issuer: str, bootstrap: str, client_auth: str,
                client_secret_file: str) -> tuple[str, str]:
    """What this profile keeps in the OS keyring: ("needs" | "prefers" | "", what). A profile
    that never touches it gets no verdict on it."""
    oidc = issuer == "oidc" or bootstrap == "oidc"
    if cache == "keyring":
        return "needs", "its credentials (cache keyring)"
    if oidc and client_auth in ("client-secret", "client-secret-post") \
            and not client_secret_file:
        return "needs", "the OIDC client secret (no oidc-client-secret-file)"
    if oidc and cache != "none":
        return "prefers", "OIDC refresh tokens (else a 0600 file in the cache directory)"
    return "", ""


# ---- the PKCS#11 token ----------------------------------------------------------------------

def token_pin_check(describe: str, flags: int) -> Check:
    if flags & CKF_USER_PIN_LOCKED:
        return Check("PIN", FAIL, f"{describe}: the user PIN is locked",
                     "unblock it with the PUK (ykman piv access unblock-pin) or reset the "
                     "token; cred-helper never retries a PIN")
    if flags & CKF_USER_PIN_FINAL_TRY:
        return Check("PIN", WARN, f"{describe}: one PIN try is left before it locks",
                     "check the PIN source before the next login")
    if flags & CKF_USER_PIN_COUNT_LOW:
        return Check("PIN", WARN, f"{describe}: the token says few PIN tries are left",
                     "check the PIN source before the next login")
    return Check("PIN", OK, f"{describe}: no failed PIN tries reported")


# ---- the cache directory --------------------------------------------------------------------

def cache_dir_check(path: str, lstat: Any, uid: int, parent_ok: bool) -> Check:
    """`lstat` is os.lstat(path) or None when it does not exist."""
    if lstat is None:
        if parent_ok:
            return Check("cache directory", OK, f"{path} does not exist yet; it is made 0700 "
                         "on first use")
        return Check("cache directory", FAIL, f"{path} does not exist and cannot be made",
                     "create it: mkdir -p -m 700 " + path)
    if st.S_ISLNK(lstat.st_mode):
        return Check("cache directory", FAIL, f"{path} is a symlink",
                     "replace it with a real directory: cred-helper refuses symlinks")
    if not st.S_ISDIR(lstat.st_mode):
        return Check("cache directory", FAIL, f"{path} is not a directory",
                     "move it away, or pass --cache-dir")
    mode = st.S_IMODE(lstat.st_mode)
    if lstat.st_uid != uid:
        return Check("cache directory", FAIL, f"{path} is owned by uid {lstat.st_uid}, not "
                     f"you ({uid})", "chown it, or pass another --cache-dir")
    if mode & 0o077:
        return Check("cache directory", FAIL, f"{path} is mode {mode:04o}: others may read it",
                     f"chmod 700 {path}")
    if mode & 0o700 != 0o700:
        return Check("cache directory", FAIL, f"{path} is mode {mode:04o}: you cannot read, "
                     "write or enter it", f"chmod 700 {path}")
    return Check("cache directory", OK, f"{path}: mode 0700, yours")


# ---- the SSH gateway -----------------------------------------------------------------------

def ssh_gateway_check(keys_set: list[str], problem: tuple[str, str] | None,
                      gateway: str, pinned: str, ssh_path: str | None) -> list[Check]:
    """The profile's access-request keys (`keys_set`: which it sets), read as `ssh-config`
    and `ssh` read them: `problem` is (message, hint) where they do not read, else
    `gateway` (host:port, "" without one) and how its host key is `pinned`; `ssh_path`
    is the ssh those commands would run (None: none on PATH)."""
    if not keys_set:
        return [Check("SSH gateway", SKIP, "no access-request keys in this profile")]
    if problem is not None:
        message, hint = problem
        return [Check("SSH gateway", FAIL, message, hint or "fix the profile's "
                      f"{', '.join(keys_set)} (docs/access-requests.md: For the engineer)")]
    if not gateway:
        found = [Check("SSH gateway", WARN, f"the profile sets {', '.join(keys_set)} but no "
                       "gateway: ssh-config and ssh need one",
                       "set gateway (host:port) and gateway-host-key in the profile")]
    else:
        found = [Check("SSH gateway", OK, f"{gateway}, its host key pinned ({pinned}); the "
                       "certificate is checked against ssh-user-ca")]
    if ssh_path is None:
        found.append(Check("ssh", FAIL if gateway else WARN, "no ssh on PATH: cred-helper ssh "
                           "runs the system's ssh", "install OpenSSH's client (Debian and "
                           "Ubuntu: apt-get install openssh-client)"))
    else:
        found.append(Check("ssh", OK, ssh_path))
    return found
