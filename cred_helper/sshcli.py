"""The access-request commands: `ssh-config` (the engineer) and `approve` / `deny` (another
person). The work is in sshaccess/; this module parses and prints."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import click

from .cli import _credential_options, _stdin_is_tty, ask_pin, complete_profiles, say, warn
from .errors import UsageError


def _ssh_options(fn):
    options = [
        click.option("--namespace", metavar="NS",
                     help="The namespace to ask for.  [profile key: namespace]"),
        click.option("--pod", multiple=True, metavar="NAME|GLOB",
                     help="A pod (or glob of pods) to ask for, repeatable.  [default: what the "
                          "broker's rule allows]"),
        click.option("--session-ttl", metavar="DURATION",
                     help="How long the SSH certificate lives (10m to 24h).  [default: 30m]"),
        click.option("--ssh-key", metavar="ed25519|pkcs11:URI",
                     help="The request's key: a fresh Ed25519 key (default), or a P-256 key on "
                          "a token, which ssh uses through an agent (ssh-add -s MODULE)."),
        click.option("--host-alias", metavar="NAME",
                     help="The Host block's name.  [default: PROFILE-NAMESPACE]"),
        click.option("--kubeconfig", metavar="FILE",
                     help="With --context: the kubeconfig whose cluster kubectl uses for this "
                          "profile.  [default: $KUBECONFIG or ~/.kube/config]"),
        click.option("--context", "context_name", metavar="NAME",
                     help="The kubeconfig context whose cluster kubectl uses for this profile. "
                          " [default: the context whose user runs cred-helper --cluster=NAME]"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _profile_table(settings: Any) -> dict[str, Any]:
    from .config import load_config_file

    if not settings.cluster:
        return {}
    doc = load_config_file(settings.config_file, named=False)
    clusters = doc.get("clusters") or {}
    table = clusters.get(settings.cluster, {}) if isinstance(clusters, dict) else {}
    return table if isinstance(table, dict) else {}


def _cluster_info(kubeconfig: str | None, context: str | None, flags: dict[str, Any]):
    from .cli import _cluster_of_profile

    if context:
        from .kubeconfig import cluster_info
        from .sshaccess.cluster import default_kubeconfig

        return cluster_info(kubeconfig or default_kubeconfig(os.environ), context)
    cluster, _ = _cluster_of_profile(kubeconfig, flags)  # and the exec entries found for it
    return cluster


def _connector(flags: dict[str, Any], cluster: Any, settings: Any):
    """connect() -> a KubeClient as the person, with the profile's cluster credential."""
    def connect():
        from .execinfo import ExecInfo
        from .kube import KubeClient
        from .sshaccess.cluster import auth_of, endpoint_for
        from .wiring import Console, obtain

        _, entry = obtain(flags, ExecInfo(interactive=_stdin_is_tty(), cluster=cluster),
                          Console(say=say, warn=warn, ask_pin=ask_pin), "login")
        endpoint = endpoint_for(settings, cluster, entry.server)
        return KubeClient(endpoint, auth_of(entry.status, settings.profile_label,
                                            settings.cache_dir))

    return connect


@dataclass(frozen=True)
class _Ready:
    """A request's checked certificate, and the files ssh reads for it, in place."""

    ssh: Any  # sshaccess.settings.SshSettings
    entry: Any  # sshaccess.store.SshEntry
    paths: Any  # sshaccess.store.Paths
    options: list[tuple[str, str]]  # the Host block's ssh_config options
    block: str
    reused: bool  # the certificate was in the cache already
    pkcs11_module: str
    cache_dir: str
    files: dict[str, bytes]  # what ssh reads, path -> content


def _ready(kubeconfig: str | None, context_name: str | None, flags: dict[str, Any]) -> _Ready:
    """What `ssh-config` and `ssh` share: the same settings, cache entry, lock and request
    (made, taken up or reused), and the same files under ssh/<alias>/ with the Host block,
    so that either command, and plain ssh through the block, uses the newest request."""
    from . import config
    from .cache.lock import exclusive
    from .cache.sidefile import SideFiles
    from .sshaccess import flow, hostblock
    from .sshaccess import settings as sshsettings
    from .sshaccess.store import SshStore, marker

    settings = config.resolve(flags, os.environ)
    ssh = sshsettings.resolve(flags, _profile_table(settings), settings.cluster)
    if ssh.gateway is None:
        raise UsageError("no SSH gateway to connect to",
                         "set gateway (host:port) and gateway-host-key in the profile")
    if settings.cache == "none":
        raise UsageError("access requests need the cache: ssh reads the key and certificate "
                         "from files", "leave --cache as file (or keyring)")
    if not ssh.reason:
        raise UsageError("an access request needs --reason TEXT",
                         "say why, e.g. --reason 'INC-42: payments timeouts'")
    cluster = _cluster_info(kubeconfig, context_name, flags)
    key = flow.entry_key(settings.cache_key(cluster), ssh)
    store = SshStore(settings.cache_dir, warn)
    with contextlib.ExitStack() as held:
        def make_key():
            from .sshaccess.sshkey import fresh, on_token

            if ssh.ssh_key == "ed25519":
                return fresh()
            return on_token(ssh.ssh_key, settings.pkcs11_module, settings.pin_source,
                            os.environ, ask_pin, say)

        prove = None
        if settings.attest_with:
            from .keys.attest import Prover

            prove = Prover(settings.attest_with, settings.pkcs11_module, settings.pin_source,
                           _stdin_is_tty(), os.environ, ask_pin, say, held, time.time)
        requester = flow.Requester(
            ssh, key, settings.profile_label, store,
            connect=_connector(flags, cluster, settings),
            lock=lambda: exclusive(settings.cache_dir, key, settings.approval_timeout + 120,
                                   SideFiles(warn)),
            make_key=make_key, prove=prove, approval_timeout=settings.approval_timeout,
            say=say)
        started = time.time()
        entry = requester.session()
    paths = store.paths(ssh.alias)
    on_token_key = not entry.private_openssh
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.not_after))
    identity = paths.public if on_token_key else paths.key
    options = hostblock.options(ssh.gateway, entry.name, identity, paths.certificate,
                                paths.known_hosts, agent=on_token_key)
    block = hostblock.host_block(
        ssh.alias, ssh.gateway, entry.name, identity, paths.certificate, paths.known_hosts,
        agent=on_token_key,
        comments=(f"cred-helper: access request {entry.name} ({settings.profile_label}, "
                  f"namespace {entry.namespace}), valid until {until}",))
    files = {paths.certificate: entry.certificate.encode() + b"\n",
             paths.public: entry.public_line.encode() + b"\n",
             paths.known_hosts: hostblock.known_hosts(ssh.gateway, ssh.host_keys,
                                                      ssh.host_ca).encode(),
             paths.conf: (marker(entry.key) + "\n" + block).encode()}
    if not on_token_key:
        files[paths.key] = entry.private_openssh.encode()
    store.put_files(paths, files)
    return _Ready(ssh, entry, paths, options, block, entry.issued_at < started,
                  settings.pkcs11_module, settings.cache_dir, files)


@click.command("ssh-config")
@_credential_options
@_ssh_options
def ssh_config(kubeconfig: str | None, context_name: str | None, **flags: Any) -> None:
    """Make (or reuse) an access request for the SSH gateway, wait for its certificate, and
    print an OpenSSH Host block for it (also kept in the cache, for an Include line).

    \b
    Example:
      cred-helper ssh-config --cluster prod --namespace payments --reason "INC-42"
      ssh prod-payments pods
    """
    ready = _ready(kubeconfig, context_name, flags)
    entry, paths = ready.entry, ready.paths
    if ready.reused:
        from .durations import format_duration

        say(f"using access request {entry.name} (made for: {entry.reason}), still valid for "
            f"{format_duration(int(entry.not_after - time.time()))}")
    sys.stdout.write(ready.block)
    sys.stdout.flush()
    say(f"kept in {paths.conf}: with `Include {os.path.dirname(paths.conf)}/*.conf` in "
        f"~/.ssh/config, `ssh {ready.ssh.alias}` uses the newest request")
    if not entry.private_openssh:
        say("the key is on the token: ssh uses it through your agent; add it once with "
            "`ssh-add -s PKCS11_MODULE`")


class _GatewayCommand(click.Command):
    """`--` ends cred-helper's options: every word after it is the gateway command, passed
    on as typed (a second `--`, as in `exec POD -- ARGV`, included)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            at = args.index("--")
            ctx.meta["gateway_words"] = tuple(args[at + 1:])
            args = args[:at]
        return super().parse_args(ctx, args)


@click.command("ssh", cls=_GatewayCommand,
               context_settings={"allow_interspersed_args": False})
@_credential_options
@_ssh_options
@click.option("-L", "--local-forward", "forwards", multiple=True,
              metavar="[BIND:]PORT:POD:PORT",
              help="Forward this machine's PORT to the pod's PORT through the gateway, as "
                   "`ssh -L` (repeatable; POD:PORT for the same port). Without a gateway "
                   "command, forward until interrupted.")
@click.option("-t", "--tty", is_flag=True,
              help="Ask for a terminal.  [default: for `shell`, when run from one]")
@click.argument("stray", nargs=-1, type=click.UNPROCESSED, metavar="[-- GATEWAY-COMMAND...]")
@click.pass_context
def ssh_command(ctx: click.Context, kubeconfig: str | None, context_name: str | None,
                forwards: tuple[str, ...], tty: bool, stray: tuple[str, ...],
                **flags: Any) -> None:
    """A session through the SSH gateway: the access request and certificate of `ssh-config`
    (made, or reused from the cache), then the system's ssh with the gateway's host key
    pinned. The gateway command's words reach the gateway unchanged; its exit code is this
    command's.

    \b
    Examples:
      cred-helper ssh --cluster prod --namespace payments --reason "INC-42" \\
        -- exec payment-api-7d4f -- ps aux
      cred-helper ssh --cluster prod --reason "INC-42" -- shell payment-api-7d4f
      cred-helper ssh --cluster prod --reason "INC-42" -L 8080:payment-api-7d4f:8080
    """
    from .sshaccess import launch, sshargv, warm

    if stray:
        raise UsageError(f"the word {stray[0]!r} is not an option of cred-helper ssh: the "
                         "gateway command comes after `--`",
                         "cred-helper ssh --cluster NAME --reason TEXT -- exec POD -- ARGV...")
    words = ctx.meta.get("gateway_words", ())
    parsed = [sshargv.parse_forward(f) for f in forwards]
    sshargv.remote_command(words)  # refuses what the gateway would, before any request
    program = launch.find_ssh(os.environ)
    ready = _ready(kubeconfig, context_name, flags)
    if not ready.entry.private_openssh:
        launch.check_agent(ready.entry.public_line, os.environ, ready.pkcs11_module)
    stdin_tty = _stdin_is_tty()
    argv = sshargv.ssh_argv(program, ready.ssh.alias, ready.options, words, parsed,
                            terminal=sshargv.wants_terminal(words, tty, stdin_tty),
                            batch=not stdin_tty)
    left = ready.entry.not_after - time.time()
    if left < warm.WARM_LEFT:  # the warm path, which says nothing, leaves these runs here
        from .durations import format_duration

        say(f"access request {ready.entry.name} ends in {format_duration(int(left))}; the "
            "gateway ends the session then")
    if parsed and not words:
        for forward in parsed:
            say(f"forwarding {forward.local} to pod {forward.pod} port {forward.pod_port}; "
                "Ctrl-C ends it")
    if not parsed and ready.entry.private_openssh:
        _leave_warm(ctx.find_root().obj or {}, ready, tty)
    launch.replace_with(argv)


def _leave_warm(obj: dict[str, Any], ready: _Ready, tty: bool) -> None:
    """What the next run with these options needs to become ssh without the CLI
    (sshaccess/warm.py); without it, that run is only slower."""
    from .cache.private import write_private
    from .sshaccess import warm

    argv = obj.get("argv") or []
    options, _ = warm.split(argv)
    cache_dir = warm.cache_dir_for(["ssh", *options], os.environ)
    if argv[:1] != ["ssh"] or os.path.abspath(ready.cache_dir) != cache_dir:
        return  # where the warm path would not look
    paths = ready.paths
    data = warm.warm_bytes(
        ready.entry.key, ready.ssh.alias, ready.options, tty,
        {"key": paths.key, "public": paths.public, "certificate": paths.certificate,
         "known_hosts": paths.known_hosts, "conf": paths.conf},
        ready.files[paths.known_hosts], ready.files[paths.conf])
    with contextlib.suppress(OSError):
        write_private(os.path.join(cache_dir, warm.warm_key(options, os.environ) + warm.SUFFIX),
                      data)


def _decider_client(cluster: str | None, config_file: str | None, kubeconfig: str | None,
                    context: str | None, cache_dir: str | None = None):
    """A KubeClient as the person deciding: a profile's credential (--cluster, or the context
    whose user runs cred-helper for one), else the kubeconfig user's token or certificate."""
    from .config import resolve
    from .connect import from_kubeconfig
    from .kube import KubeClient
    from .sshaccess.cluster import default_kubeconfig, profile_of_context

    info = None
    if not cluster:
        path = kubeconfig or default_kubeconfig(os.environ)
        found = profile_of_context(path, context) if os.path.exists(path) else None
        if found is None:
            if not os.path.exists(path):
                raise UsageError(f"no kubeconfig at {path}",
                                 "pass --cluster NAME (a profile) or --kubeconfig FILE")
            endpoint, auth = from_kubeconfig(path, context)
            return KubeClient(endpoint, auth)
        cluster, info = found
    elif context or kubeconfig:
        info = _cluster_info(kubeconfig, context, {"cluster": cluster})
    else:
        info = _cluster_info(None, None, {"cluster": cluster})
    flags = {"cluster": cluster, "config": config_file, "cache_dir": cache_dir}
    settings = resolve(flags, os.environ)
    return _connector(flags, info, settings)()


def _decide_options(fn):
    options = [
        click.argument("name"),
        click.option("--cluster", metavar="NAME", shell_complete=complete_profiles,
                     help="Decide with this profile's credential.  [default: the kubeconfig "
                          "context's user]"),
        click.option("--config", metavar="FILE", help="Profile file."),
        click.option("--cache-dir", metavar="DIR",
                     help="Where the profile's credential is cached.  [env: "
                          "CRED_HELPER_CACHE_DIR; default: $XDG_CACHE_HOME/cred-helper]"),
        click.option("--kubeconfig", metavar="FILE",
                     help="The kubeconfig.  [default: $KUBECONFIG or ~/.kube/config]"),
        click.option("--context", "context_name", metavar="NAME",
                     help="The kubeconfig context.  [default: its current context]"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _decide(action: str, name: str, reason: str, cluster: str | None, config: str | None,
            cache_dir: str | None, kubeconfig: str | None, context_name: str | None) -> None:
    from . import accessrequest as ar
    from .sshaccess.decide import decide

    if not ar.is_text(reason):
        raise UsageError(f"--reason: at most {ar.MAX_TEXT} characters on one line",
                         "the requester reads it; every reader refuses a request whose "
                         "decision holds more")
    client = _decider_client(cluster or os.environ.get("CRED_HELPER_CLUSTER"), config,
                             kubeconfig, context_name, cache_dir)
    say(decide(client, name, action, reason, say, time.time))


@click.command()
@_decide_options
@click.option("--reason", metavar="TEXT", default="", help="Why (kept in the condition).")
def approve(name: str, reason: str, cluster: str | None, config: str | None,
            cache_dir: str | None, kubeconfig: str | None, context_name: str | None) -> None:
    """Approve somebody else's access request; the broker then signs its certificate.

    \b
    Example:
      cred-helper approve alice-20261207-101500-3fa9c1 --cluster prod
    """
    _decide("approve", name, reason, cluster, config, cache_dir, kubeconfig, context_name)


@click.command()
@_decide_options
@click.option("--reason", metavar="TEXT", required=True,
              help="Why (the requester sees it).")
def deny(name: str, reason: str, cluster: str | None, config: str | None,
         cache_dir: str | None, kubeconfig: str | None, context_name: str | None) -> None:
    """Deny an access request (or revoke an approved one: the gateway ends its sessions).

    \b
    Example:
      cred-helper deny alice-20261207-101500-3fa9c1 --reason "use the runbook"
    """
    _decide("deny", name, reason, cluster, config, cache_dir, kubeconfig, context_name)
