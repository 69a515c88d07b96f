"""The OpenSSH `Host` block and known_hosts file for one access request (pure).

The certificate's one principal is the request's name, which is therefore the login name, and
it changes with every request. So the block's name (`Host prod-payments`) and its file paths stay
the same while `User`, the key and the certificate behind those paths are replaced by each
`cred-helper ssh-config` run that makes a new request: one `Include` line in ~/.ssh/config keeps
`ssh prod-payments` pointing at the newest request. (smallstep's `step ssh proxycommand` and
Teleport's `tsh` refresh a certificate behind a fixed login name; here the login name is the
request, which a ProxyCommand, run after ssh has chosen the user, cannot change.)

The gateway's host key is pinned in a known_hosts file of its own, with strict checking and no
other known_hosts consulted: no trust on first use.
"""

from __future__ import annotations

from ..errors import UsageError
from .settings import Gateway

ALWAYS = (
    ("IdentitiesOnly", "yes"),
    ("PubkeyAuthentication", "yes"),
    ("PasswordAuthentication", "no"),
    ("KbdInteractiveAuthentication", "no"),
    ("StrictHostKeyChecking", "yes"),
    ("GlobalKnownHostsFile", "/dev/null"),
    ("UpdateHostKeys", "no"),
    ("ForwardAgent", "no"),
    ("ForwardX11", "no"),
)


def quote(path: str) -> str:
    """A path as ssh_config reads it (OpenSSH 8.7 and later split a line as a shell would):
    in double quotes where it holds a space, a quote or a `#`, backslashes doubled, and `%`
    doubled (ssh expands %-tokens in IdentityFile, CertificateFile and UserKnownHostsFile)."""
    if '"' in path or "\n" in path or "${" in path:
        # Nothing protects a double quote or a line break, and ssh expands ${VAR} in these
        # paths with no way to escape it.
        raise UsageError(f"ssh_config cannot name the path {path!r}",
                         "choose a --cache-dir without quotes, line breaks or ${")
    text = path.replace("\\", "\\\\").replace("%", "%%")
    return f'"{text}"' if any(c.isspace() or c in "'#" for c in path) else text


def options(gateway: Gateway, user: str, identity_file: str, cert_file: str,
            known_hosts: str, agent: bool = False) -> list[tuple[str, str]]:
    """Every ssh_config option of one request's connection, as (name, value): the Host block
    holds these lines and `cred-helper ssh` passes them as -o options, so the two agree.
    `identity_file` is the private key, or with `agent` (a key on a token, in the agent
    through `ssh-add -s`) its public half: with IdentitiesOnly, ssh 9.2 pairs an agent key with
    the certificate only when an IdentityFile names that key's public half (naming the
    certificate there, it tries to read it as a private key and fails)."""
    settings = [("HostName", gateway.host), ("Port", str(gateway.port)), ("User", user),
                ("IdentityFile", quote(identity_file)), ("CertificateFile", quote(cert_file)),
                ("UserKnownHostsFile", quote(known_hosts)), *ALWAYS]
    if not agent:
        settings.append(("IdentityAgent", "none"))  # this key alone, never an agent's others
    return settings


def host_block(alias: str, gateway: Gateway, user: str, identity_file: str, cert_file: str,
               known_hosts: str, agent: bool = False, comments: tuple[str, ...] = ()) -> str:
    """The block: `Host alias` and the options above."""
    lines = [f"# {c}" for c in comments]
    lines.append(f"Host {alias}")
    lines += [f"  {name} {value}" for name, value in
              options(gateway, user, identity_file, cert_file, known_hosts, agent)]
    return "\n".join(lines) + "\n"


def known_hosts(gateway: Gateway, host_keys: tuple[str, ...], host_ca: str) -> str:
    name = gateway.known_hosts_name
    lines = [f"{name} {key}" for key in host_keys]
    if host_ca:
        lines.append(f"@cert-authority {name} {host_ca}")
    return "\n".join(lines) + "\n"
