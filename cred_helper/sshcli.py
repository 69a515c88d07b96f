"""The access-request commands: `ssh-config` (the engineer) and `approve` / `deny` (another
person). The work is in sshaccess/; this module parses and prints."""

from __future__ import annotations

import contextlib
import os
import sys
import time
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
    return _cluster_of_profile(kubeconfig, flags)[0]


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
    from . import config
    from .cache.lock import exclusive
    from .sshaccess import flow, hostblock
    from .sshaccess import settings as sshsettings
    from .sshaccess.sshkey import fresh, on_token
    from .sshaccess.store import SshStore, marker

    settings = config.resolve(flags, os.environ)
    ssh = sshsettings.resolve(flags, _profile_table(settings), settings.cluster)
    if ssh.gateway is None:
        raise UsageError("no SSH gateway to write the Host block for",
                         "set gateway (host:port) and gateway-host-key in the profile")
    if settings.cache == "none":
        raise UsageError("ssh-config needs the cache: ssh reads the key and certificate from "
                         "files", "leave --cache as file (or keyring)")
    if not ssh.reason:
        raise UsageError("an access request needs --reason TEXT",
                         "say why, e.g. --reason 'INC-42: payments timeouts'")
    cluster = _cluster_info(kubeconfig, context_name, flags)
    key = flow.entry_key(settings.cache_key(cluster), ssh)
    store = SshStore(settings.cache_dir, warn)
    with contextlib.ExitStack() as held:
        def make_key():
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
            lock=lambda: exclusive(settings.cache_dir, key, settings.approval_timeout + 120),
            make_key=make_key, prove=prove, approval_timeout=settings.approval_timeout,
            say=say)
        started = time.time()
        entry = requester.session()
    if entry.issued_at < started:
        from .durations import format_duration

        say(f"using access request {entry.name} (made for: {entry.reason}), still valid for "
            f"{format_duration(int(entry.not_after - time.time()))}")
    paths = store.paths(ssh.alias)
    on_token_key = not entry.private_openssh
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.not_after))
    block = hostblock.host_block(
        ssh.alias, ssh.gateway, entry.name, paths.public if on_token_key else paths.key,
        paths.certificate, paths.known_hosts, agent=on_token_key,
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
    sys.stdout.write(block)
    sys.stdout.flush()
    say(f"kept in {paths.conf}: with `Include {os.path.dirname(paths.conf)}/*.conf` in "
        f"~/.ssh/config, `ssh {ssh.alias}` uses the newest request")
    if on_token_key:
        say("the key is on the token: ssh uses it through your agent; add it once with "
            "`ssh-add -s PKCS11_MODULE`")


def _decider_client(cluster: str | None, config_file: str | None, kubeconfig: str | None,
                    context: str | None):
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
    flags = {"cluster": cluster, "config": config_file}
    settings = resolve(flags, os.environ)
    return _connector(flags, info, settings)()


def _decide_options(fn):
    options = [
        click.argument("name"),
        click.option("--cluster", metavar="NAME", shell_complete=complete_profiles,
                     help="Decide with this profile's credential.  [default: the kubeconfig "
                          "context's user]"),
        click.option("--config", metavar="FILE", help="Profile file."),
        click.option("--kubeconfig", metavar="FILE",
                     help="The kubeconfig.  [default: $KUBECONFIG or ~/.kube/config]"),
        click.option("--context", "context_name", metavar="NAME",
                     help="The kubeconfig context.  [default: its current context]"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _decide(action: str, name: str, reason: str, cluster: str | None, config: str | None,
            kubeconfig: str | None, context_name: str | None) -> None:
    from .sshaccess.decide import decide

    client = _decider_client(cluster or os.environ.get("CRED_HELPER_CLUSTER"), config,
                             kubeconfig, context_name)
    say(decide(client, name, action, reason, say, time.time))


@click.command()
@_decide_options
@click.option("--reason", metavar="TEXT", default="", help="Why (kept in the condition).")
def approve(name: str, reason: str, cluster: str | None, config: str | None,
            kubeconfig: str | None, context_name: str | None) -> None:
    """Approve somebody else's access request; the broker then signs its certificate.

    \b
    Example:
      cred-helper approve alice-20261207-101500-3fa9c1 --cluster prod
    """
    _decide("approve", name, reason, cluster, config, kubeconfig, context_name)


@click.command()
@_decide_options
@click.option("--reason", metavar="TEXT", required=True,
              help="Why (the requester sees it).")
def deny(name: str, reason: str, cluster: str | None, config: str | None,
         kubeconfig: str | None, context_name: str | None) -> None:
    """Deny an access request (or revoke an approved one: the gateway ends its sessions).

    \b
    Example:
      cred-helper deny alice-20261207-101500-3fa9c1 --reason "use the runbook"
    """
    _decide("deny", name, reason, cluster, config, kubeconfig, context_name)
