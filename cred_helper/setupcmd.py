"""`cred-helper setup`: the profile, the kubeconfig cluster, user and context, then one check
with the bootstrap identity (SelfSubjectReview and a SelfSubjectAccessReview for creating
CSRs: never a CSR, which would wait for a person). `--print-rbac`: the team's manifests.

Everything is checked before anything is written: the options as `get` will read them, the
secret files they name, every file to be written (a regular file, its owner and group kept).
Then, holding kubectl's lock on each file (kubelock.py), the files are read again, changed and
replaced together (atomicfile.write_all): the profile and the kubeconfig are written both or
neither. The decisions are in profilewrite.py, kubeconfigwrite.py and rbac.py; this module
reads, asks them, writes, and reports on stderr (`say`), never printing a secret.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import atomicfile, kubeconfig, kubelock, profilewrite
from . import kubeconfigwrite as kw
from .errors import CredHelperError, ServerError, UsageError, os_reason
from .execinfo import ClusterInfo
from .sshaccess.settings import PROFILE_KEYS as PERSONS_KEYS  # no setup option writes them

EXEC_API = "client.authentication.k8s.io/v1"
KREW_COMMAND = "kubectl-cred_helper"  # the name krew links the plugin under, on PATH
OUR_COMMANDS = ("cred-helper", KREW_COMMAND)
# after writing the kubeconfig, how long to let a kubectl that read it first finish, and
# how many times to write the entries again if one removed them (_recheck_kubeconfig)
SETTLE = 0.3
RECHECKS = 3
SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SSR_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
# profile keys setup writes from its own options, in the order they are written
PROFILE_OPTIONS = ("issuer", "ttl", "bootstrap", "bootstrap-token-file", "bootstrap-kubeconfig",
                   "bootstrap-context", "subject-cn", "subject-o", "oidc-issuer-url",
                   "oidc-client-id", "oidc-client-secret-file", "oidc-scope", "oidc-grant",
                   "oidc-client-auth", "oidc-client-key", "oidc-certificate-authority",
                   "oidc-use-access-token")
PATH_KEYS = ("bootstrap-token-file", "bootstrap-kubeconfig", "oidc-client-secret-file",
             "oidc-certificate-authority")
# kubectl prints this when it cannot find the exec entry's command
INSTALL_HINT = ("cred-helper, the credential plugin of this kubeconfig user, was not found.\n"
                "Install it (pipx install cred-helper) and put it on PATH, then run\n"
                "`cred-helper setup --cluster {cluster} ...` again to point this entry at it.")


@dataclass(frozen=True)
class SetupOptions:
    cluster: str
    profile: dict[str, Any]  # profile key -> value (None / () where not given)
    config: str | None = None
    server: str | None = None
    certificate_authority: str | None = None
    from_context: str | None = None
    kubeconfig: str | None = None
    context_name: str | None = None
    command: str | None = None  # None: the fast launcher where it helps, else cred-helper
    fast_launcher: bool | None = None  # None: the default (see launcher_wanted)
    run_as: str = "cred-helper"  # the name setup itself was run by (argv[0])
    overwrite: bool = False
    print_only: bool = False
    verify: bool = True


@dataclass
class Outcome:
    notes: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)


def profile_values(given: Mapping[str, Any]) -> dict[str, Any]:
    """The profile to write: the options given, paths made absolute (the profile is read from
    anywhere), in a fixed order so that the same options write the same text."""
    profile: dict[str, Any] = {}
    for key in PROFILE_OPTIONS:
        value = given.get(key)
        if value in (None, (), ""):
            continue
        if key in PATH_KEYS or (key == "oidc-client-key" and not value.startswith("pkcs11:")):
            value = os.path.abspath(os.path.expanduser(value))
        profile[key] = list(value) if isinstance(value, tuple) else value
    if "issuer" not in profile:
        raise UsageError("setup needs --issuer csr or --issuer oidc")
    return profile


def check_profile(name: str, profile: dict[str, Any], env: Mapping[str, str]):
    """Settings as `get --cluster=NAME` will resolve them from this profile: every check the
    plugin makes, before anything is written. The values are passed as the flags they came
    from, so that an error names what the user typed (`--ttl`), not the file setup writes."""
    from . import config

    with tempfile.TemporaryDirectory(prefix="cred-helper-setup-") as tmp:
        path = os.path.join(tmp, "config.toml")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(profilewrite.table(name, profile))
        quiet = {k: v for k, v in env.items() if not k.startswith("CRED_HELPER_")}
        flags = {key.replace("-", "_"): tuple(value) if isinstance(value, list) else value
                 for key, value in profile.items()}
        return config.resolve({**flags, "cluster": name, "config": path}, quiet)


def preflight(settings) -> None:
    """Read every file the profile names as `get` will (secret files refused unless private),
    so that a 0644 token fails now, not after the files are written."""
    from . import bootstrap

    if settings.bootstrap_token_file:
        bootstrap.read_token(settings.bootstrap_token_file, "--bootstrap-token-file")
    if settings.bootstrap_kubeconfig:
        doc = kubeconfig.load(settings.bootstrap_kubeconfig, "--bootstrap-kubeconfig",
                              secret=True)
        context = settings.bootstrap_context or doc.get("current-context") or ""
        if kubeconfig.named(doc, "contexts", context, "context") is None:
            raise UsageError(f"--bootstrap-context: no context {context!r} in "
                             f"{settings.bootstrap_kubeconfig}",
                             "name one of its contexts with --bootstrap-context")
    if settings.oidc_client_secret_file:
        kubeconfig.read_file(settings.oidc_client_secret_file, "client secret",
                             "--oidc-client-secret-file", secret=True)
    if settings.oidc_client_key and not settings.oidc_client_key.startswith("pkcs11:"):
        kubeconfig.read_file(settings.oidc_client_key, "client key", "--oidc-client-key",
                             secret=True)
    if settings.oidc_certificate_authority:
        kubeconfig.read_file(settings.oidc_certificate_authority, "CA bundle",
                             "--oidc-certificate-authority")


def _exec_entry(opts: SetupOptions, command: str, config_file: str) -> dict[str, Any]:
    args = [f"--cluster={opts.cluster}"]
    if opts.config:
        args.append(f"--config={config_file}")
    return {"apiVersion": EXEC_API, "command": command, "args": args,
            "provideClusterInfo": True, "interactiveMode": "IfAvailable",
            "installHint": INSTALL_HINT.format(cluster=opts.cluster)}


def _is_ours(item: dict | None, section: str, user_name: str) -> bool:
    if not isinstance(item, dict):
        return False
    body = item.get(kw.SECTIONS[section])
    if not isinstance(body, dict):
        return False
    if section == "users":
        exec_entry = body.get("exec")
        command = exec_entry.get("command") if isinstance(exec_entry, dict) else None
        return isinstance(command, str) and os.path.basename(command) in OUR_COMMANDS
    if section == "contexts":
        return body.get("user") == user_name
    return False


def _cluster_from_context(files: list[kw.KubeFile], name: str
                          ) -> tuple[str, dict[str, Any], ClusterInfo]:
    """(cluster name, extra context fields, spec.cluster) of an existing context."""
    found = kw.find(files, "contexts", name)
    if found is None:
        paths = ", ".join(kf.path for kf in files)
        raise UsageError(f"--from-context: no context {name!r} in {paths}",
                         "kubectl config get-contexts lists them")
    context = found[2].get("context")
    if not isinstance(context, dict) or not isinstance(context.get("cluster"), str):
        raise UsageError(f"--from-context: context {name!r} names no cluster")
    cluster_name = context["cluster"]
    where = kw.find(files, "clusters", cluster_name)
    if where is None:
        raise UsageError(f"--from-context: context {name!r} names cluster {cluster_name!r}, "
                         "which no kubeconfig file defines")
    kf, _, item = where
    cluster = item.get("cluster")
    if not isinstance(cluster, dict):
        raise UsageError(f"{kf.path}: cluster {cluster_name!r} is not a mapping")
    flag = f"--from-context {name}"
    base = os.path.dirname(kf.path)
    insecure = cluster.get("insecure-skip-tls-verify", False)
    info = ClusterInfo(
        server=kubeconfig.text(cluster, "server", flag),
        tls_server_name=kubeconfig.text(cluster, "tls-server-name", flag),
        ca_data=kubeconfig.data_or_file(cluster, "certificate-authority", base, flag),
        insecure_skip_tls_verify=insecure if isinstance(insecure, bool) else False,
        proxy_url=kubeconfig.text(cluster, "proxy-url", flag))
    extra = {k: context[k] for k in ("namespace",) if isinstance(context.get(k), str)}
    return cluster_name, extra, info


def _new_cluster(opts: SetupOptions) -> tuple[dict[str, Any], ClusterInfo]:
    server = opts.server or ""
    if not server.startswith("https://"):
        raise UsageError(f"--server: {server!r} is not an https:// URL",
                         "cred-helper only talks to API servers over verified TLS")
    if not opts.certificate_authority:
        raise UsageError("--server needs --certificate-authority",
                         "name the API server's CA bundle (kubectl needs it too)")
    ca = kubeconfig.read_file(os.path.expanduser(opts.certificate_authority), "CA bundle",
                              "--certificate-authority")
    if b"-----BEGIN CERTIFICATE-----" not in ca:
        raise UsageError(f"--certificate-authority: {opts.certificate_authority} holds no "
                         "PEM certificate")
    body = {"server": server, "certificate-authority-data": base64.b64encode(ca).decode()}
    return body, ClusterInfo(server=server, ca_data=ca)


def launcher_wanted(opts: SetupOptions) -> bool:
    """The fast launcher is the default: kubectl starts the plugin on every command, and the
    launcher's `-IS` start is the quickest a venv or pipx install can give. Not where the
    entry's command is chosen (--command), nor where setup itself was started that way
    already (the single file and krew's link run -IS through the single file's header)."""
    if opts.fast_launcher is not None:
        return opts.fast_launcher
    if opts.command is not None or os.path.basename(opts.run_as) == KREW_COMMAND:
        return False
    return not sys.flags.no_site


@dataclass
class _Kubeconfig:
    files: list[kw.KubeFile]
    plan: kw.Plan
    cluster: ClusterInfo
    context_name: str


def _kubeconfig_plan(opts: SetupOptions, command: str, config_file: str,
                     new_cluster: tuple[dict[str, Any], ClusterInfo] | None,
                     paths: list[str], default_path: str) -> _Kubeconfig:
    files = kw.load_files(paths)
    user_name = f"cred-helper-{opts.cluster}"
    context_name = opts.context_name or opts.cluster
    entries = []
    if new_cluster is None:
        assert opts.from_context
        cluster_name, extra, cluster = _cluster_from_context(files, opts.from_context)
    else:
        cluster_name, extra = opts.cluster, {}
        body, cluster = new_cluster
        entries.append(kw.Entry("clusters", cluster_name, body, ours=False))
    for section, name, body in (
            ("users", user_name, {"exec": _exec_entry(opts, command, config_file)}),
            ("contexts", context_name, {"cluster": cluster_name, "user": user_name, **extra})):
        found = kw.find(files, section, name)
        ours = found is None or _is_ours(found[2], section, user_name)
        entries.append(kw.Entry(section, name, body, ours=ours))
    plan = kw.plan(files, default_path, entries, overwrite=opts.overwrite)
    return _Kubeconfig(files, plan, cluster, context_name)


def _read_profile(config_file: str) -> tuple[atomicfile.Existing | None, str]:
    old = atomicfile.read_or_refuse(config_file, "config file",
                                    "name a profile file with --config FILE", 1 << 20)
    if old is None:
        return None, ""
    try:
        return old, old.data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"config file {config_file} is not UTF-8 text") from None


def run_setup(opts: SetupOptions, env: Mapping[str, str], say: Callable[[str], None],
              out: Callable[[str], None], now: float | None = None) -> Outcome:
    from . import launcher
    from .paths import default_config_file

    # 1. everything that can be checked without the files: the options, the files they name
    if bool(opts.server) == bool(opts.from_context):
        raise UsageError("setup needs a cluster: --server URL --certificate-authority FILE, "
                         "or --from-context NAME", "choose one")
    launcher_path = launcher_text = None
    command = opts.command or default_command(opts.run_as)
    if launcher_wanted(opts):
        if opts.command is not None:
            raise UsageError("--fast-launcher writes its own command: drop --command")
        launcher_path = launcher.default_path(env)
        launcher_text = launcher.launcher_text(sys.executable, launcher.site_dir())
        command = launcher_path
    config_file = os.path.abspath(os.path.expanduser(
        opts.config or env.get("CRED_HELPER_CONFIG") or default_config_file(env)))
    profile = profile_values(opts.profile)
    settings = check_profile(opts.cluster, profile, env)
    preflight(settings)
    new_cluster = _new_cluster(opts) if opts.server else None
    paths, default_path = kw.file_list(opts.kubeconfig, env)

    if opts.print_only:  # read, decide, show; no lock, nothing written
        old_profile, old_text = _read_profile(config_file)
        new_profile = profilewrite.updated_text(old_text, config_file, opts.cluster, profile,
                                                opts.overwrite, PERSONS_KEYS)
        kube = _kubeconfig_plan(opts, command, config_file, new_cluster, paths, default_path)
        launcher_new = bool(launcher_path and launcher_text and
                            _launcher_change(launcher_path, launcher_text))
        _show(opts, config_file, profile, new_profile, kube.plan,
              launcher_path if launcher_new else None, say, out)
        return Outcome()

    # 2. under kubectl's locks: read again, decide, write both or neither
    outcome = Outcome()
    locked = [*paths, config_file, *([launcher_path] if launcher_path else [])]
    for path, what in zip(locked, [*["KUBECONFIG"] * len(paths), "config file", "launcher"],
                          strict=False):
        why = atomicfile.not_a_file(path)
        if why:
            raise UsageError(f"{what}: {why}", "name a regular file")
    with kubelock.holding(locked):
        old_profile, old_text = _read_profile(config_file)
        new_profile = profilewrite.updated_text(old_text, config_file, opts.cluster, profile,
                                                opts.overwrite, PERSONS_KEYS)
        kube = _kubeconfig_plan(opts, command, config_file, new_cluster, paths, default_path)
        changes = []
        if launcher_path and launcher_text:
            changes += _launcher_change(launcher_path, launcher_text)
        if new_profile is not None:
            target = old_profile.target if old_profile else os.path.realpath(config_file)
            changes.append(atomicfile.Change(target, new_profile.encode(), 0o600, old_profile))
        changes += _kubeconfig_changes(kube)
        try:
            outcome.backups = atomicfile.write_all(changes, time.time() if now is None else now)
        except atomicfile.Refused as exc:
            raise UsageError(str(exc), "nothing was written: run setup as the file's owner, "
                             "or name another file") from None
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            raise UsageError(f"cannot write{where}: {os_reason(exc)}",
                             "nothing was written: check the directory, its permissions and "
                             "free space") from None
    outcome.written = [c.target for c in changes]
    if kube.plan.edits:
        _recheck_kubeconfig(opts, command, config_file, new_cluster, paths, default_path,
                            outcome, say, now)

    # 3. say what happened
    if launcher_path and any(c.target == os.path.realpath(launcher_path) for c in changes):
        say(f"wrote the fast launcher {launcher_path} (starts {sys.executable} -IS)")
    if new_profile is not None:
        say(f"wrote profile [clusters.{opts.cluster}] to {config_file}")
    for note in kube.plan.notes:
        say(note)
    for backup in outcome.backups:
        say(f"backed up the previous file as {backup}")
    if not outcome.written:
        say("nothing to change: the profile and kubeconfig entries are already set")
    _warn_command(command, env, say)

    # 4. prove it
    if opts.verify:
        verify(settings, kube.cluster, say)
    say(f"done: kubectl --context {kube.context_name} get pods"
        + ("" if opts.verify else " (not checked: --no-verify)"))
    return outcome


def _kubeconfig_changes(kube: _Kubeconfig) -> list[atomicfile.Change]:
    by_path = {kf.path: kf for kf in kube.files}
    changes = []
    for path, edits in kube.plan.edits.items():
        kf = by_path.get(path) or kw.KubeFile(path, None)
        target = kf.old.target if kf.old else os.path.realpath(path)
        changes.append(atomicfile.Change(target, kw.new_text(kf, edits), 0o600, kf.old))
    return changes


def _recheck_kubeconfig(opts: SetupOptions, command: str, config_file: str,
                        new_cluster: tuple[dict[str, Any], ClusterInfo] | None,
                        paths: list[str], default_path: str, outcome: Outcome,
                        say: Callable[[str], None], now: float | None) -> None:
    """Write the kubeconfig entries again if a kubectl removed them. `kubectl config set-*`
    reads the file before it takes the lock and, under it, deletes every entry its copy lacks
    (client-go's ModifyConfig): a kubectl that read the file before setup's write and locked
    it after setup let go removes setup's entries, as it would another kubectl's. Such a kubectl
    is milliseconds from its lock, so a look after SETTLE finds it done (the lock waits for
    one still writing)."""
    for _ in range(RECHECKS):
        time.sleep(SETTLE)
        with kubelock.holding(paths):
            try:
                kube = _kubeconfig_plan(opts, command, config_file, new_cluster, paths,
                                        default_path)
            except CredHelperError as exc:  # someone else's entry under our name since
                say(f"warning: the kubeconfig changed after setup wrote it: {exc}")
                return
            if not kube.plan.edits:
                return
            try:
                outcome.backups += atomicfile.write_all(_kubeconfig_changes(kube),
                                                        time.time() if now is None else now)
            except (atomicfile.Refused, OSError) as exc:
                why = os_reason(exc) if isinstance(exc, OSError) else str(exc)
                raise UsageError(f"a kubectl removed setup's entries and they cannot be "
                                 f"written again: {why}", "run setup again") from None
        say("a kubectl config command running at the same time removed setup's entries (it "
            "wrote from a copy read before setup's write); setup wrote them again")
    raise UsageError("setup's kubeconfig entries keep being removed by another writer",
                     "run setup again once no kubectl config command or script is running")


def _launcher_change(path: str, text: str) -> list[atomicfile.Change]:
    try:
        old = atomicfile.read_regular(path, max_size=1 << 16)
    except (atomicfile.Refused, OSError) as exc:
        raise UsageError(f"cannot write the fast launcher: {exc}",
                         "remove it, or pass --no-fast-launcher") from None
    if old is not None and old.data == text.encode():
        return []
    target = old.target if old else os.path.realpath(path)
    return [atomicfile.Change(target, text.encode(), 0o755, old, backup=False)]


def _show(opts: SetupOptions, config_file: str, profile: dict[str, Any],
          new_profile: str | None, plan: kw.Plan, launcher_path: str | None,
          say: Callable[[str], None], out: Callable[[str], None]) -> None:
    """--print: what setup would change, and nothing else of the files (no secret of theirs)."""
    if launcher_path:
        out(f"# {launcher_path}: the fast launcher (starts {sys.executable} -IS)")
    if new_profile is not None:
        out(f"# {config_file}\n{profilewrite.table(opts.cluster, profile)}")
    for path, changes in plan.shown.items():
        out(kw.shown(path, changes))
    if new_profile is None and not plan.edits and not launcher_path:
        say("nothing to change: the profile and kubeconfig entries are already set")


def default_command(argv0: str) -> str:
    """The exec entry's command: `kubectl-cred_helper` when run as `kubectl cred-helper`.

    A krew install puts only that name on PATH, and an entry naming it still starts the plugin
    directly, without kubectl's own start-up. (The single file's argv[0] is the name it was
    run by: see __main__.py.)
    """
    return KREW_COMMAND if os.path.basename(argv0) == KREW_COMMAND else "cred-helper"


def _warn_command(command: str, env: Mapping[str, str], say: Callable[[str], None]) -> None:
    import shutil

    if os.path.isabs(command):
        found = os.access(command, os.X_OK)
    else:
        found = shutil.which(command, path=env.get("PATH")) is not None
    if not found:
        say(f"note: {command} is not on PATH, and kubectl runs it by that name: put it on PATH "
            "(pipx does), or run setup again with --command /full/path/to/cred-helper")


def verify(settings, cluster: ClusterInfo, say: Callable[[str], None]) -> None:
    """SelfSubjectReview and a SelfSubjectAccessReview for creating CSRs, as the bootstrap
    identity. An OIDC login would need a person here: that is left to `login`."""
    if settings.issuer == "oidc" or settings.bootstrap == "oidc":
        say(f"not checked here: an OIDC login proves it; run `cred-helper login --cluster "
            f"{settings.cluster}`")
        return
    from . import bootstrap
    from .kube import KubeClient

    endpoint, auth = bootstrap.resolve(settings, cluster)
    client = KubeClient(endpoint, auth)
    review = client.post(SSR_PATH, {"apiVersion": "authentication.k8s.io/v1",
                                    "kind": "SelfSubjectReview"})
    username, groups = _user_info(review, endpoint.server)
    access = client.post(SSAR_PATH, {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"group": "certificates.k8s.io",
                                        "resource": "certificatesigningrequests",
                                        "verb": "create"}}})
    status = access.get("status")
    allowed = status.get("allowed") if isinstance(status, dict) else None
    if not isinstance(allowed, bool):
        raise ServerError(f"the API server at {endpoint.server} sent a SelfSubjectAccessReview "
                          "of the wrong shape (no status.allowed)")
    if not allowed:
        group = next((g for g in groups if not g.startswith("system:")), "GROUP")
        raise CredHelperError(
            f"the setup is written, but the bootstrap identity {username} may not create "
            "certificate signing requests",
            f"an admin can grant it: cred-helper setup --print-rbac --bootstrap-group {group} "
            "--apply")
    shown = ", ".join(groups) or "no groups"
    say(f"checked: the bootstrap identity is {username} ({shown}) and may create certificate "
        "signing requests")


def _user_info(review: dict, server: str) -> tuple[str, list[str]]:
    status = review.get("status")
    info = status.get("userInfo") if isinstance(status, dict) else None
    username = info.get("username") if isinstance(info, dict) else None
    groups = info.get("groups", []) if isinstance(info, dict) else None
    if not isinstance(username, str) or not isinstance(groups, list) or \
            not all(isinstance(g, str) for g in groups):
        raise ServerError(f"the API server at {server} sent a SelfSubjectReview of the wrong "
                          "shape (no status.userInfo username and groups)")
    return username, groups


# ---- --print-rbac ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RbacOptions:
    group: str = "oncall"
    namespaces: tuple[str, ...] = ("debug",)
    bootstrap_group: str = ""
    audit_policy: str = "cred-helper-audit-policy.yaml"
    approver_group: str = ""
    apply: bool = False
    kubectl: str = "kubectl"
    kubectl_context: str | None = None


def print_rbac(opts: RbacOptions, say: Callable[[str], None], out: Callable[[str], None],
               run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> None:
    from . import rbac

    team = rbac.Team(opts.group, opts.namespaces, opts.bootstrap_group, opts.approver_group)
    manifests = rbac.api_objects(team)
    policy = rbac.audit_policy()
    path = os.path.abspath(os.path.expanduser(opts.audit_policy))
    _write_audit_policy(path, policy)
    if not opts.apply:
        out(manifests)
        say(rbac.audit_howto(path))
        return
    context = [f"--context={opts.kubectl_context}"] if opts.kubectl_context else []
    # The approver's Namespace first (its Roles' dry run needs it), then the rest: each
    # through a server-side dry run before it is applied.
    for part in rbac.api_parts(team):
        for extra in (["--dry-run=server"], []):
            _kubectl_apply(opts.kubectl, context, extra, part, run, say)
    say(rbac.audit_howto(path))


def _kubectl_apply(kubectl: str, context: list[str], extra: list[str], manifests: str,
                   run: Callable[..., subprocess.CompletedProcess],
                   say: Callable[[str], None]) -> None:
    step = "server-side dry run" if extra else "apply"
    try:
        done = run([kubectl, *context, "apply", *extra, "-f", "-"], input=manifests,
                   capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CredHelperError(f"cannot run {kubectl}: {os_reason(exc)}",
                              "put kubectl on PATH, or pass --kubectl PATH") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1][:300]
        raise CredHelperError(f"kubectl apply ({step}) failed: {last}",
                              "these objects were not applied" if extra else
                              "the dry run passed; fix it and run again (apply is idempotent)")
    if not extra:
        for line in done.stdout.splitlines():
            say(line)


def _write_audit_policy(path: str, policy: str) -> None:
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read(1 << 20) == policy:
                return
        exists = True
    except FileNotFoundError:
        exists = False
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--audit-policy: cannot read {path}: {os_reason(exc)}") from None
    if exists:
        raise UsageError(f"--audit-policy: {path} exists and differs from the audit policy",
                         "name another file with --audit-policy FILE")
    try:
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(policy)
    except OSError as exc:
        raise UsageError(f"--audit-policy: cannot write {path}: {os_reason(exc)}") from None
