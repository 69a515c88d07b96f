"""The `cred-helper gateway` commands' flags (click); the work is in main.py and server.py."""

from __future__ import annotations

import click


@click.group("gateway")
def gateway() -> None:
    """The SSH gateway: sessions that run only what an access request grants, as the person,
    recorded.

    \b
    Example:
      cred-helper gateway run --host-key /etc/gateway/host/ssh_host_ed25519_key \\
          --user-ca /etc/gateway/ca/user_ca.pub --recordings /var/lib/cred-helper/recordings
    """


@gateway.command("run")
@click.option("--listen", default="0.0.0.0:2222", show_default=True, metavar="HOST:PORT",
              help="Where the SSH server listens.")
@click.option("--host-key", "host_keys", multiple=True, metavar="FILE",
              help="The gateway's SSH host key (OpenSSH private key; repeatable).  [required]")
@click.option("--user-ca", required=True, metavar="FILE",
              help="The SSH user CA's public key(s), one OpenSSH line each: only user "
                   "certificates it signed get in.")
@click.option("--recordings", default="/var/lib/cred-helper/recordings", show_default=True,
              metavar="DIR", help="Where each command's asciicast v2 recording is written.")
@click.option("--kubeconfig", metavar="FILE",
              help="Run outside the cluster with this kubeconfig.  [default: in cluster when "
                   "KUBERNETES_SERVICE_HOST is set, else $KUBECONFIG or ~/.kube/config]")
@click.option("--context", "context_name", metavar="NAME",
              help="The kubeconfig context.  [default: its current-context]")
@click.option("--max-sessions-per-person", default=4, show_default=True, metavar="N",
              help="Open SSH connections one person may have at once.")
@click.option("--max-channels", default=4, show_default=True, metavar="N",
              help="Commands and forwarded connections open at once on one connection.")
@click.option("--max-connections", default=200, show_default=True, metavar="N",
              help="Connections at once, logged in or not.")
@click.option("--max-logging-in-per-address", default=10, show_default=True, metavar="N",
              help="Connections from one address that have not logged in yet (behind a "
                   "proxy that hides clients' addresses, raise it).")
@click.option("--idle-timeout", default="15m", show_default=True, metavar="DURATION",
              help="A session with no byte either way for this long is ended.")
@click.option("--max-command-length", default=4096, show_default=True, metavar="BYTES",
              help="The longest command line taken.")
@click.option("--recording-limit", "recording_limit_mib", default=256, show_default=True,
              metavar="MIB", help="A command whose recording reaches this size is ended.")
@click.option("--shell", default="/bin/sh", show_default=True, metavar="ARGV",
              help="What `shell POD` runs in the pod (split on spaces).")
def gateway_run(listen: str, host_keys: tuple[str, ...], user_ca: str, recordings: str,
                kubeconfig: str | None, context_name: str | None,
                max_sessions_per_person: int, max_channels: int, max_connections: int,
                max_logging_in_per_address: int,
                idle_timeout: str, max_command_length: int, recording_limit_mib: int,
                shell: str) -> int:
    """Serve SSH: log in as an approved access request with its certificate
    (`ssh NAME@gateway COMMAND`). One JSON line per session and per command on stdout.

    \b
    Example:
      cred-helper gateway run --kubeconfig gateway.kubeconfig --listen 127.0.0.1:2222 \\
          --host-key host_key --user-ca user_ca.pub --recordings ./recordings
    """
    from .main import Options, run_gateway

    return run_gateway(Options(
        listen=listen, host_keys=host_keys, user_ca=user_ca, recordings=recordings,
        kubeconfig=kubeconfig, context=context_name,
        max_sessions_per_person=max_sessions_per_person, max_channels=max_channels,
        max_connections=max_connections,
        max_logging_in_per_address=max_logging_in_per_address, idle_timeout=idle_timeout,
        max_command_length=max_command_length, recording_limit_mib=recording_limit_mib,
        shell=shell))
