"""The command line: `get` (the exec entry point, also the default), `login`, `status`, `logout`.

Imports beyond click happen inside the commands, so `--help` stays quick; the cache-hit path
never gets here at all (see fastpath.py).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click

from . import __version__, clistyle
from .errors import CredHelperError, NoServer, UsageError, server_text


def warn(message: str) -> None:
    sys.stderr.write(f"cred-helper: warning: {message}\n")


def say(message: str) -> None:
    sys.stderr.write(f"cred-helper: {message}\n")
    sys.stderr.flush()


def _stdout_is_tty() -> bool:
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except (ValueError, OSError):
        return False


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):
        return False


# What `cred-helper completion SHELL` is for, written once: the completion command's help, the
# group's help and docs/usage.md show these lines (a test checks the docs).
COMPLETION_INSTALL = {
    "bash": "mkdir -p ~/.local/share/bash-completion/completions && "
            "cred-helper completion bash > ~/.local/share/bash-completion/completions/cred-helper",
    "zsh": 'cred-helper completion zsh > "${fpath[1]}/_cred-helper"',
    "fish": "mkdir -p ~/.config/fish/completions && "
            "cred-helper completion fish > ~/.config/fish/completions/cred-helper.fish",
}
# Commands in the order a person meets them; --help, completion and the bare usage follow it.
ORDER = ("get", "setup", "login", "status", "logout", "doctor", "ssh", "ssh-config", "approve",
         "deny", "keys", "completion", "approver", "janitor", "gateway", "help", "version")
USAGE_LINES = (
    ("[get] --cluster NAME", "print a credential (kubectl runs this from its kubeconfig)"),
    ("setup --cluster NAME ...", "write a profile and the kubeconfig entry that runs it"),
    ("login --cluster NAME", "log in now, in a terminal"),
    ("status", "what is cached, for whom, until when"),
    ("doctor --cluster NAME", "check a set-up, one line per check"),
)


def short_usage(commands: list[str]) -> str:
    """What a bare `cred-helper` typed on a terminal prints: the everyday commands, then every
    other command by name, so that none is missing."""
    lines = []
    for i, (words, does) in enumerate(USAGE_LINES):
        lead = "Usage: " if i == 0 else "       "
        lines.append(f"{lead}cred-helper {words:<26} {does}")
    shown = {words.split()[0].strip("[]") for words, _ in USAGE_LINES}
    lines.append("Also:  " + ", ".join(c for c in commands if c not in shown))
    lines.append("Profiles live in $XDG_CONFIG_HOME/cred-helper/config.toml. "
                 "More: cred-helper help [COMMAND]")
    return "\n".join(lines) + "\n"


def known_profiles(config: str | None) -> list[str]:
    """The profile names of the profile file, or [] when it cannot be read (for suggestions and
    completion, which never complain)."""
    from .config import profile_names
    from .paths import default_config_file

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    path = config or os.environ.get("CRED_HELPER_CONFIG") or default_config_file(os.environ)
    try:
        with open(os.path.expanduser(path), "rb") as fh:
            doc = tomllib.loads(fh.read(1 << 20).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    return profile_names(doc)


def complete_profiles(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    """Profile names from the profile file, for shell completion of --cluster."""
    return [name for name in known_profiles(ctx.params.get("config"))
            if name.startswith(incomplete)]


class Commands(click.Group):
    """A group whose unknown command gets the one answer every command gives a typo: one line,
    the closest command, and where the list is."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        word = args[0]
        if not ctx.resilient_parsing and not word.startswith("-") \
                and self.get_command(ctx, word) is None:
            from .suggest import unknown_command

            raise unknown_command(word, self.list_commands(ctx), ctx.command_path)
        return super().resolve_command(ctx, args)


class _DefaultGet(Commands):
    """`cred-helper --cluster=prod` means `cred-helper get --cluster=prod`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        known = [name for name in ORDER if name in self.commands]
        return known + sorted(set(self.commands) - set(known))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.resilient_parsing:
            # Shell completion: `cred-helper --cluster <TAB>` is get's option, as it runs.
            if args and args[0].startswith("-") and args[0] not in ("--help", "-h",
                                                                    "--version"):
                args = ["get", *args]
            return super().parse_args(ctx, args)
        if not args and _stdin_is_tty() and "KUBERNETES_EXEC_INFO" not in os.environ:
            # A person typed the bare command: kubectl never runs it so (it always passes a
            # profile or flags), so say how to use it instead of failing on a missing issuer.
            sys.stderr.write(short_usage(self.list_commands(ctx)))
            ctx.exit(2)
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            from .suggest import unknown_command

            raise unknown_command(args[0], self.list_commands(ctx), "cred-helper",
                                  known_profiles(None))
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h",
                                                                         "--version")):
            args = ["get", *args]
        return super().parse_args(ctx, args)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list:
        """`cred-helper --<TAB>` offers get's options too: they work without the word."""
        found = super().shell_complete(ctx, incomplete)
        if incomplete.startswith("-"):
            get_ctx = click.Context(self.commands["get"], info_name="get", parent=ctx,
                                    resilient_parsing=True)
            have = {item.value for item in found}
            found += [item for item in self.commands["get"].shell_complete(get_ctx, incomplete)
                      if item.value not in have]
        return found


def _credential_options(fn):
    options = [
        click.option("--cluster", metavar="NAME", shell_complete=complete_profiles,
                     help="Profile [clusters.NAME] to use.  [env: CRED_HELPER_CLUSTER]"),
        click.option("--config", metavar="FILE",
                     help="Profile file.  [env: CRED_HELPER_CONFIG; default: "
                          "$XDG_CONFIG_HOME/cred-helper/config.toml]"),
        click.option("--ttl", metavar="DURATION",
                     help="Credential lifetime: 1800, 90s, 30m, 1h30m (CSR minimum 10m).  "
                          "[default: 30m]"),
        click.option("--issuer", metavar="csr|oidc", help="Where credentials come from."),
        click.option("--cache", metavar="file|keyring|none",
                     help="Where credentials are kept.  [default: file]"),
        click.option("--cache-dir", metavar="DIR",
                     help="Cache directory.  [env: CRED_HELPER_CACHE_DIR; default: "
                          "$XDG_CACHE_HOME/cred-helper]"),
        click.option("--key", metavar="ed25519|p256",
                     help="Key kind for certificates.  [default: ed25519]"),
        click.option("--server", metavar="URL",
                     help="API server for CSRs.  [default: the kubeconfig cluster's server]"),
        click.option("--certificate-authority", metavar="FILE",
                     help="CA bundle for that server.  [default: the kubeconfig cluster's CA, "
                          "else system trust]"),
        click.option("--signer-ca", metavar="FILE",
                     help="CA that signs client certificates, where it is not the server's CA; "
                          "issued certificates must chain to it.  [default: the server's CA]"),
        click.option("--bootstrap-token-file", metavar="FILE",
                     help="Bearer token that may create CSRs."),
        click.option("--bootstrap-kubeconfig", metavar="FILE",
                     help="Create CSRs as a user of this kubeconfig."),
        click.option("--bootstrap-context", metavar="NAME",
                     help="Context of --bootstrap-kubeconfig.  [default: its current context]"),
        click.option("--bootstrap", metavar="token|kubeconfig|oidc",
                     help="What creates CSRs: the token file, the kubeconfig user, or an OIDC "
                          "login (the --oidc-* settings).  [default: whichever is set]"),
        click.option("--subject-cn", metavar="NAME",
                     help="Certificate CN.  [default: the bootstrap identity's username]"),
        click.option("--subject-o", metavar="GROUP", multiple=True,
                     help="Certificate O, repeatable.  [default: the bootstrap identity's "
                          "non-system: groups]"),
        click.option("--approval-timeout", metavar="DURATION",
                     help="How long to wait for a pending CSR.  [default: 5m]"),
        click.option("--reason", metavar="TEXT",
                     help="Recorded on the CSR as an annotation, so audit logs say why."),
        click.option("--oidc-issuer-url", metavar="URL", help="OpenID provider (issuer) URL."),
        click.option("--oidc-client-id", metavar="ID", help="OIDC client id."),
        click.option("--oidc-client-secret-file", metavar="FILE",
                     help="File holding the client secret (never on the command line)."),
        click.option("--oidc-scope", metavar="SCOPE", multiple=True,
                     help="Scope to request, repeatable.  [default: openid offline_access]"),
        click.option("--oidc-grant", metavar="auto|authcode|device|client-credentials",
                     help="How to log in.  [default: auto: authcode where a browser can open, "
                          "else device]"),
        click.option("--oidc-client-auth",
                     metavar="none|client-secret|client-secret-post|private-key-jwt",
                     help="Client authentication.  [default: from the secret/key given]"),
        click.option("--oidc-certificate-authority", metavar="FILE",
                     help="CA bundle for the OpenID provider.  [default: the OS trust store]"),
        click.option("--oidc-client-key", metavar="FILE|pkcs11:URI",
                     help="Private key signing private_key_jwt assertions: a PEM file, or a "
                          "key on a PKCS#11 token (YubiKey) named by an RFC 7512 URI."),
        click.option("--oidc-use-access-token", is_flag=True, default=None,
                     help="Give kubectl the access token instead of the ID token."),
        click.option("--no-browser", is_flag=True, default=None,
                     help="Never open a browser: print the login URL (authcode), and make "
                          "auto choose the device grant."),
        click.option("--attest-with", metavar="pkcs11:URI",
                     help="Hardware key that signs a proof into each CSR (with its "
                          "attestation certificates, where the token holds them), for an "
                          "approver that checks it.  [env: CRED_HELPER_ATTEST_WITH]"),
        *_token_options(),
        click.option("--debug", is_flag=True, help="Show a traceback on unexpected errors."),
    ]
    return _with_options(fn, options)


def _with_options(fn, options: list):
    for option in reversed(options):  # so that --help lists them in this order
        fn = option(fn)
    return fn


def _token_options() -> list:
    return [
        click.option("--pkcs11-module", metavar="PATH",
                     help="PKCS#11 module.  [env: CRED_HELPER_PKCS11_MODULE; default: the "
                          "first of the usual ykcs11 / OpenSC paths]"),
        click.option("--pin-source", metavar="prompt|env:VAR|file:PATH|cmd:COMMAND",
                     help="Where the token's PIN comes from.  [default: prompt, on the "
                          "terminal, only when interactive]"),
    ]


def ask_pin(prompt: str) -> str:
    import getpass

    return getpass.getpass(prompt)  # on the terminal, never echoed, never on stdout


@click.group(cls=_DefaultGet, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cred-helper")
def cli() -> None:
    """kubectl exec credential plugin: short-lived certificates and OIDC tokens for people.

    Run from a kubeconfig `exec` entry as `cred-helper --cluster=NAME --ttl=30m`; `get` is the
    default command.

    \b
    Examples:
      cred-helper setup --cluster prod ...  write a profile and its kubeconfig entry
      cred-helper login --cluster prod      log in now
      cred-helper doctor --cluster prod     find what is wrong with a set-up
      cred-helper help login                the help of one command
    """


def _console():
    from .wiring import Console

    return Console(say=say, warn=warn, ask_pin=ask_pin)


@cli.command(context_settings={"allow_extra_args": True})
@_credential_options
@click.pass_context
def get(ctx: click.Context, **flags: Any) -> None:
    """Print one ExecCredential on stdout (the kubeconfig exec entry point).

    Typed by hand (no KUBERNETES_EXEC_INFO), it finds the API server as `login` does: from the
    kubeconfig context whose exec entry runs `cred-helper --cluster=NAME`, so it serves the
    credential kubectl would get.

    \b
    Example (as a kubeconfig user's exec entry runs it):
      cred-helper --cluster=prod --ttl=30m
    """
    from dataclasses import replace

    from . import wiring
    from .execcred import render, rfc3339
    from .execinfo import parse_exec_info
    from .fastkey import fast_key
    from .policy import expiration_timestamp

    argv = ctx.find_root().obj["argv"]
    if ctx.args:
        raise _stray_word(ctx.args[0], argv)
    by_hand = "KUBERNETES_EXEC_INFO" not in os.environ
    exec_info, problem = parse_exec_info(os.environ.get("KUBERNETES_EXEC_INFO"),
                                         _stdin_is_tty())
    if problem:
        warn(problem)
    entries: list = []
    if by_hand:
        # kubectl passes spec.cluster; a person typing the kubeconfig's command does not. The
        # context that runs it gives the same spec.cluster, hence the same cache entry.
        cluster, entries = _cluster_of_profile(None, flags)
        exec_info = replace(exec_info, cluster=cluster)
    try:
        settings, entry = wiring.obtain(flags, exec_info, _console(), "get")
    except NoServer:
        if not by_hand:
            raise
        raise _no_server_by_hand(flags, entries) from None
    status = dict(entry.status)
    status["expirationTimestamp"] = rfc3339(
        expiration_timestamp(time.time(), entry.issued_at, entry.not_after))
    if "clientKeyData" in status and by_hand and _stdout_is_tty():
        warn("printing a private key (clientKeyData) to the terminal: `get` is what kubectl "
             "runs; by hand, `cred-helper login` logs in and `cred-helper status` shows what "
             "is cached")
    sys.stdout.write(render(exec_info.api_version, status))
    sys.stdout.flush()
    aliases = wiring.fast_path_aliases(settings, warn)
    if aliases is not None and problem is None and not (by_hand and exec_info.cluster):
        # Only after a clean run: a hit must answer exactly as this run did. Not for a cluster
        # read from a kubeconfig, which the hit's key does not cover.
        aliases.point(fast_key(argv, os.environ), entry.key, exec_info.api_version)


def _stray_word(word: str, argv: list[str]) -> CredHelperError:
    """`cred-helper --cluster prod login`: a command after get's options, or a typo."""
    from .suggest import unknown_command

    if word in cli.commands:
        import shlex

        rest = list(argv)
        rest.remove(word)
        shown = shlex.join(["cred-helper", word, *rest])
        return UsageError(f"no command {word!r} after options: the command comes first",
                          "".join(c if c.isprintable() else "?" for c in shown))
    return unknown_command(word, cli.list_commands(click.get_current_context()),
                           "cred-helper", known_profiles(None))


def _no_server_by_hand(flags: dict[str, Any], entries: list) -> UsageError:
    """Where a person typed kubectl's command and nothing says which API server to ask."""
    name = flags.get("cluster") or os.environ.get("CRED_HELPER_CLUSTER") or ""
    shown = f"cred-helper --cluster={name}" if name else "cred-helper"
    without = [e for e in entries if not e.provides_cluster_info]
    if without:
        why = (f"the kubeconfig user {without[0].user!r} runs `{shown}` without "
               "provideClusterInfo: true")
        fix = "set provideClusterInfo: true in that exec entry"
    else:
        why = f"no kubeconfig context runs `{shown}`"
        fix = (f"`cred-helper setup --cluster {name or 'NAME'}` writes one; or set server and "
               "certificate-authority in the profile")
    return UsageError(f"no API server: `{shown}` is what kubectl runs, passing the server; "
                      f"by hand it looks for it in your kubeconfig, and {why}",
                      f"{fix}. To log in by hand: `cred-helper login --cluster "
                      f"{name or 'NAME'} --context CONTEXT`; to see what is cached: "
                      "`cred-helper status`")


@cli.command()
@_credential_options
@click.option("--force", is_flag=True, help="Issue a new credential even if one is cached.")
@click.option("--kubeconfig", metavar="FILE",
              help="With --context: take spec.cluster from this kubeconfig, as kubectl would "
                   "pass it with provideClusterInfo.  [default: $KUBECONFIG or ~/.kube/config]")
@click.option("--context", "context_name", metavar="NAME",
              help="kubeconfig context whose cluster kubectl will use this credential for.")
def login(force: bool, kubeconfig: str | None, context_name: str | None,
          **flags: Any) -> None:
    """Get a credential now and say who you are and until when (on stderr).

    With --cluster alone, the kubeconfig context whose exec entry runs
    `cred-helper --cluster=NAME` gives the API server and CA, as kubectl would.

    \b
    Example:
      cred-helper login --cluster prod
    """
    from .durations import expires_text
    from .execinfo import ExecInfo

    cluster = None
    if context_name:
        from .kubeconfig import cluster_info

        path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or \
            os.path.expanduser("~/.kube/config")
        cluster = cluster_info(path, context_name)
    else:
        cluster, _ = _cluster_of_profile(kubeconfig, flags)
    from .wiring import obtain

    _, entry = obtain(flags, ExecInfo(interactive=True, cluster=cluster), _console(), "login",
                      force=force)
    # Names and groups are a provider's or signer's free text: one line, no escapes.
    groups = ", ".join(server_text(g, 100) for g in entry.groups) or "no groups"
    say(f"logged in as {server_text(entry.username, 200)} ({groups}) until "
        f"{expires_text(entry.not_after, time.time())}")


def _cluster_of_profile(kubeconfig: str | None, flags: dict[str, Any]) -> tuple[Any, list]:
    """spec.cluster of the kubeconfig context that runs `cred-helper --cluster=NAME` (kubectl's
    current context where several do), so that `login --cluster NAME` needs no --context, and
    caches what kubectl's `get` will look for; and every exec entry found for the profile."""
    from .execentry import (
        cluster_info,
        current_context,
        find,
        kubeconfig_paths,
        kubectls_entry,
        load_all,
    )

    profile = flags.get("cluster") or os.environ.get("CRED_HELPER_CLUSTER")
    if not profile:
        return None, []
    docs = load_all(kubeconfig_paths(os.environ, kubeconfig))
    entries = find(docs, profile)
    entry = kubectls_entry(entries, current_context(docs), profile)
    return (cluster_info(entry) if entry else None), entries


_PROFILE_FILE = click.option("--config", metavar="FILE",
                             help="Profile file, for the profile's name.  [env: "
                                  "CRED_HELPER_CONFIG]")


def _known_to_cache_or_file(cluster: str, config: str | None, cached: list[str]) -> None:
    """status and logout refuse a name neither the cache nor the profile file knows, as get,
    login and doctor do, instead of answering "nothing cached" for a typo."""
    from .config import require_profile

    require_profile(cluster, config, os.environ, cached)


@cli.command()
@click.option("--cluster", metavar="NAME", help="Only this profile.",
              shell_complete=complete_profiles)
@_PROFILE_FILE
@click.option("--cache-dir", metavar="DIR", help="Cache directory.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table",
              help="Output format.")
def status(cluster: str | None, config: str | None, cache_dir: str | None,
           output: str) -> None:
    """Show cached credentials: profile, issuer, identity, expires in.

    \b
    Example:
      cred-helper status --cluster prod -o json
    """
    import json

    from .durations import format_duration
    from .execcred import rfc3339
    from .wiring import cache_dir as resolve_cache_dir
    from .wiring import cached_entries

    cluster = cluster or os.environ.get("CRED_HELPER_CLUSTER")
    now = time.time()
    rows = []
    found = list(cached_entries(resolve_cache_dir(cache_dir), warn))
    if cluster:
        _known_to_cache_or_file(cluster, config, [entry.profile for _, entry in found])
    for store, entry in found:
        if cluster and entry.profile != cluster:
            continue
        rows.append({
            "profile": entry.profile, "issuer": entry.issuer, "cache": store.name,
            # everything known of who it is: username and groups; sub and email for OIDC
            "identity": {**entry.identity, "username": entry.username, "groups": entry.groups},
            "server": entry.server, "source": entry.source,
            "expires": rfc3339(entry.not_after),
            "expiresInSeconds": max(0, int(entry.not_after - now)),
        })
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        say("no cached credentials" + (f" for {cluster}" if cluster else ""))
        return
    table = [("PROFILE", "ISSUER", "CACHE", "IDENTITY", "GROUPS", "EXPIRES IN")]
    for r in rows:
        left = r["expiresInSeconds"]
        table.append((r["profile"], r["issuer"], r["cache"],
                      server_text(r["identity"]["username"], 200),
                      ",".join(server_text(g, 100) for g in r["identity"]["groups"]) or "-",
                      format_duration(left) if left else "expired"))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@cli.command()
@click.option("--cluster", metavar="NAME", help="Forget this profile's credentials.",
              shell_complete=complete_profiles)
@click.option("--all", "everything", is_flag=True,
              help="Forget everything cred-helper keeps, for every profile.")
@_PROFILE_FILE
@click.option("--cache-dir", metavar="DIR", help="Cache directory.")
def logout(cluster: str | None, everything: bool, config: str | None,
           cache_dir: str | None) -> None:
    """Forget cached credentials and refresh tokens, in files and the OS keyring.

    \b
    Example:
      cred-helper logout --cluster prod
    """
    from . import wiring

    cluster = cluster or os.environ.get("CRED_HELPER_CLUSTER")
    if not cluster and not everything:
        raise UsageError("logout needs --cluster NAME or --all",
                         "run `cred-helper status` to see what is cached")
    directory = wiring.cache_dir(cache_dir)
    if cluster and not everything:
        _known_to_cache_or_file(cluster, config, [entry.profile for _, entry in
                                                  wiring.cached_entries(directory, warn)])
    removed = wiring.forget(directory, None if everything else cluster, warn)
    say(removed.describe())


@cli.group(cls=Commands)
def keys() -> None:
    """PKCS#11 keys: list tokens and keys, generate a non-exportable key, print a public key.

    \b
    Example:
      cred-helper keys list --pkcs11-module /usr/lib/softhsm/libsofthsm2.so
    """


def _token_flags(fn):
    return _with_options(fn, _token_options())


def _token_session(uri_text: str, module: str, pin_source: str | None, login: bool,
                   rw: bool = False):
    from .keys.pin import check_source
    from .keys.pkcs11 import open_session

    return open_session(uri_text, module, check_source(pin_source or "prompt"), login,
                        _stdin_is_tty(), os.environ, ask_pin, say, rw=rw)


@keys.command("list")
@click.argument("uri", default="pkcs11:", metavar="[URI]")
@click.option("--login", is_flag=True, help="Log in, to see private keys too.")
@_token_flags
def keys_list(uri: str, login: bool, pkcs11_module: str | None, pin_source: str | None) -> None:
    """Tokens, and the keys on the token URI names (label, id, type, extractable).

    \b
    Example:
      cred-helper keys list 'pkcs11:token=YubiKey%20PIV%20%2312345678' --login
    """
    from .keys import pkcs11
    from .keys import uri as uris
    from .keys.manage import list_keys
    from .keys.pin import check_source

    parsed = uris.parse(uri)
    uri_pin = parsed.pin_source and check_source(parsed.pin_source, "the URI's pin-source")
    module = pkcs11.choose_module(parsed.module_path, _module_setting(pkcs11_module))
    tokens = pkcs11.list_tokens(pkcs11.load(module))
    click.echo(f"module {module}")
    for info in tokens:
        click.echo(f"token {info.describe()}: {pkcs11.pin_state(info.flags)}"
                   if info.flags & pkcs11.PIN_WARNINGS else f"token {info.describe()}")
    if not tokens:
        say("no token is present")
        return
    if not any(pkcs11.token_matches(t, parsed) for t in tokens):
        raise pkcs11.TokenError(f"no token matching {parsed.describe_token()}")
    rows = []
    for info in tokens:
        if not pkcs11.token_matches(info, parsed):
            continue
        with _token_session(f"pkcs11:slot-id={info.slot_id}", module, uri_pin or pin_source,
                            login) as (_, _, _, session):
            rows += list_keys(session, info)
    table = [("TOKEN", "LABEL", "ID", "TYPE", "CLASS", "EXTRACTABLE", "URI")]
    table += [(r.token, r.label, uris.format_id(r.key_id), r.kind, r.object_class,
               r.extractable or "-", r.uri) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if not login:
        say("private keys show after logging in: cred-helper keys list --login")


def _module_setting(flag: str | None) -> str:
    chosen = flag or os.environ.get("CRED_HELPER_PKCS11_MODULE", "")
    return os.path.abspath(os.path.expanduser(chosen)) if chosen else ""


@keys.command("generate")
@click.argument("uri", metavar="URI")
@click.option("--type", "kind", default="p256", show_default=True,
              type=click.Choice(["p256", "ed25519", "rsa2048"]), help="Key type.")
@_token_flags
def keys_generate(uri: str, kind: str, pkcs11_module: str | None,
                  pin_source: str | None) -> None:
    """Generate a key pair on the token URI names (object= is the label, id= optional).

    The private half is sensitive and never extractable. Prints the new key's URI.

    \b
    Example:
      cred-helper keys generate 'pkcs11:token=dev;object=cred-helper;id=%01' --type ed25519
    """
    from .keys import uri as uris
    from .keys.manage import generate

    parsed = uris.parse(uri)
    if not parsed.object:
        raise UsageError("keys generate needs object=LABEL in the URI",
                         "e.g. 'pkcs11:token=NAME;object=cred-helper;id=%01'")
    with _token_session(uri, _module_setting(pkcs11_module), pin_source, True, rw=True) as (
            _, info, _, session):
        new_uri, _ = generate(session, info, parsed.object, parsed.id, kind)
    say(f"generated a {kind} key on {info.describe()}; its private half cannot leave the token")
    click.echo(new_uri)


@keys.command("public")
@click.argument("uri", metavar="URI")
@click.option("--format", "fmt", default="pem", show_default=True,
              type=click.Choice(["pem", "jwk", "ssh"]), help="Output format.")
@click.option("--login", is_flag=True,
              help="Log in first (for tokens that show keys only after login).")
@_token_flags
def keys_public(uri: str, fmt: str, login: bool, pkcs11_module: str | None,
                pin_source: str | None) -> None:
    """Print the public key of the key URI names: PEM, JWK (kid = RFC 7638 thumbprint) or
    OpenSSH. It is a public key, but it looks like key material: on a terminal a warning
    comes first.

    \b
    Example:
      cred-helper keys public 'pkcs11:token=dev;object=cred-helper' --format jwk > key.jwk
    """
    from .keys.manage import find_public
    from .keys.publickey import render

    with _token_session(uri, _module_setting(pkcs11_module), pin_source, login) as (
            parsed, info, _, session):
        public = find_public(session, parsed, info.describe())
    if _stdout_is_tty():
        warn("printing key material to the terminal: this is the PUBLIC half of a token "
             "key (its private half never leaves the token); redirect to a file to keep it")
    click.echo(render(public, fmt, f"{info.label}/{parsed.object or ''}".rstrip("/")), nl=False)


@cli.group(cls=Commands)
def approver() -> None:
    """The access broker: approve client-certificate requests by a reviewed policy.

    \b
    Examples:
      cred-helper approver check policy.yaml --csr csr.yaml
      cred-helper approver run --policy policy.yaml --kubeconfig admin.kubeconfig --dry-run
      cred-helper approver run --policy policy.yaml --kubeconfig admin.kubeconfig --once
    """


@approver.command("run")
@click.option("--policy", "policy", required=True, metavar="FILE",
              help="The policy file (re-read when it changes; a bad reload keeps the last "
                   "good one).")
@click.option("--kubeconfig", metavar="FILE",
              help="Run outside the cluster with this kubeconfig.  [default: in cluster when "
                   "KUBERNETES_SERVICE_HOST is set, else $KUBECONFIG or ~/.kube/config]")
@click.option("--context", "context_name", metavar="NAME",
              help="The kubeconfig context.  [default: its current-context]")
@click.option("--lease-name", metavar="NAME",
              help="Elect a leader on this coordination.k8s.io Lease, so that one of several "
                   "replicas acts.  [default: no election]")
@click.option("--lease-namespace", metavar="NS",
              help="The Lease's namespace.  [default: the pod's, else default]")
@click.option("--identity", metavar="ID",
              help="This replica's name in the Lease.  [default: $POD_NAME or the host name]")
@click.option("--lease-duration", type=click.FloatRange(min=2), default=15.0,
              show_default=True, metavar="SECONDS",
              help="How long a leader that stopped renewing keeps the Lease.")
@click.option("--once", is_flag=True,
              help="Decide the CSRs pending now, then exit (no watch).")
@click.option("--dry-run", is_flag=True,
              help="Judge and print the decision lines (marked dryRun), change nothing: no "
                   "approval, no denial, no Event. Takes no --lease-name.")
@click.option("--health-address", metavar="HOST:PORT",
              help="Answer the kubelet's probes on this address: GET /livez (every part of "
                   "the process alive) and /readyz (and the API server answering).  [default: "
                   "none; :8081 in the shipped Deployment]")
@click.option("--ssh-ca", metavar="FILE|pkcs11:URI",
              help="The SSH user CA that signs approved access requests: a key file (from a "
                   "Secret) or a key on a token.  [default: access requests are not handled]")
@_token_flags
def approver_run(policy: str, kubeconfig: str | None, context_name: str | None,
                 lease_name: str | None, lease_namespace: str | None, identity: str | None,
                 lease_duration: float, once: bool, dry_run: bool,
                 health_address: str | None, ssh_ca: str | None,
                 pkcs11_module: str | None, pin_source: str | None) -> int:
    """List and watch CSRs for kubernetes.io/kube-apiserver-client; approve, deny or leave
    each pending one for a person, by the policy. With --ssh-ca, access requests too: judged
    by the policy's access: section and signed. One JSON line per decision on stdout.

    \b
    Example:
      cred-helper approver run --policy /etc/approver/policy.yaml --lease-name approver
    """
    from .broker.main import Options, run_approver

    if pin_source:
        from .keys.pin import check_source

        check_source(pin_source)
    return run_approver(Options(policy=policy, kubeconfig=kubeconfig, context=context_name,
                                lease_namespace=lease_namespace, lease_name=lease_name,
                                identity=identity, lease_duration=lease_duration, once=once,
                                dry_run=dry_run, health_address=health_address,
                                ssh_ca=ssh_ca or "",
                                pkcs11_module=_module_setting(pkcs11_module),
                                pin_source=pin_source or ""))


@approver.command("check")
@click.argument("policy", metavar="POLICY")
@click.option("--csr", "csr", metavar="FILE",
              help="Judge the CertificateSigningRequest object(s) in FILE (YAML or JSON, as "
                   "kubectl get csr NAME -o yaml prints it) and print each decision line.")
def approver_check(policy: str, csr: str | None) -> int:
    """Check a policy file offline: exit 0 when the broker would accept it, else 1 with the
    file, line and field. With --csr, print the decision the broker would take now.

    \b
    Examples:
      cred-helper approver check policy.yaml
      kubectl get csr csr-x7k2p -o yaml > csr.yaml
      cred-helper approver check policy.yaml --csr csr.yaml
    """
    import time

    from .broker.check import check

    def out(line: str) -> None:
        click.echo(line)

    return check(policy, csr, time.time(), out, lambda line: click.echo(line, err=True))


from .janitor.cli import janitor  # noqa: E402  (its own module, as setup's)

cli.add_command(janitor)

from .gateway.cli import gateway  # noqa: E402  (its own module, as setup's)

cli.add_command(gateway)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: commands, options, their values and profile names.

    \b
    Install (once; a new shell picks it up):
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # click ships all three
    click.echo(cls(cli, {}, "cred-helper", "_CRED_HELPER_COMPLETE").source())


completion.help = (completion.help or "") + "".join(
    f"  {line}\n" for line in COMPLETION_INSTALL.values())


@cli.command("help")
@click.argument("words", nargs=-1, metavar="[COMMAND]...",
                shell_complete=lambda ctx, param, incomplete: _complete_command_words(
                    ctx, incomplete))
def help_command(words: tuple[str, ...]) -> None:
    """Show the help of cred-helper, or of one of its commands.

    \b
    Examples:
      cred-helper help login
      cred-helper help keys generate
    """
    ctx, command = _command_at(words)
    click.echo(command.get_help(ctx))


def _command_at(words: tuple[str, ...]) -> tuple[click.Context, click.Command]:
    """The command `words` name (`keys generate`) and a context whose path says so."""
    from .suggest import unknown_command

    ctx = click.Context(cli, info_name="cred-helper", **cli.context_settings)
    command: click.Command = cli
    for word in words:
        sub = command.get_command(ctx, word) if isinstance(command, click.Group) else None
        if sub is None:
            if not isinstance(command, click.Group):
                raise UsageError(f"`{ctx.command_path}` has no commands",
                                 f"`cred-helper help {' '.join(words[:-1])}` says how to use "
                                 "it")
            raise unknown_command(word, command.list_commands(ctx), ctx.command_path,
                                  known_profiles(None) if command is cli else ())
        ctx = click.Context(sub, info_name=word, parent=ctx)
        command = sub
    return ctx, command


def _complete_command_words(ctx: click.Context, incomplete: str) -> list[str]:
    try:
        at_ctx, command = _command_at(tuple(ctx.params.get("words") or ()))
    except CredHelperError:
        return []
    if not isinstance(command, click.Group):
        return []
    return [name for name in command.list_commands(at_ctx) if name.startswith(incomplete)]


@cli.command("version")
def version_command() -> None:
    """Print cred-helper's version (as --version does)."""
    click.echo(f"cred-helper, version {__version__}")


@cli.command()
@click.option("--cluster", metavar="NAME", shell_complete=complete_profiles,
              help="The profile to check.  [env: CRED_HELPER_CLUSTER; default: the one "
                   "kubectl's current context runs, else the only one]")
@click.option("--config", metavar="FILE",
              help="Profile file.  [env: CRED_HELPER_CONFIG]")
@click.option("--kubeconfig", metavar="FILE",
              help="The kubeconfig kubectl reads.  [default: $KUBECONFIG or ~/.kube/config]")
@click.option("--cache-dir", metavar="DIR",
              help="The cache directory to check.  [env: CRED_HELPER_CACHE_DIR; default: "
                   "$XDG_CACHE_HOME/cred-helper]")
@click.option("--login", "use_pin", is_flag=True,
              help="Log in to the PKCS#11 token to check the key (uses the PIN source; "
                   "without it no PIN is ever used).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text",
              help="Output format.")
def doctor(cluster: str | None, config: str | None, kubeconfig: str | None,
           cache_dir: str | None, use_pin: bool, output: str) -> int:
    """Check a set-up in order, one line per check with OK, WARN or FAIL and a hint: profile,
    kubectl and its exec entry, the API server (TLS, clock), the bootstrap identity and its
    right to create CSRs, OIDC, the PKCS#11 token, the keyring, the cache directory, the SSH
    gateway's settings. Exits 1 if any check fails. Never prints a secret.

    \b
    Example:
      cred-helper doctor --cluster prod
    """
    from .doctor.run import Options, run_doctor

    return run_doctor(Options(cluster=cluster, config=config, kubeconfig=kubeconfig,
                              cache_dir=cache_dir, use_pin=use_pin, output=output), ask_pin)


from .setupcli import setup  # noqa: E402  (its own module: issue 12's slices merge apart)

cli.add_command(setup)
clistyle.apply(cli)  # one way to write and complete a value's alternatives, in every command

from .sshcli import approve, deny, ssh_command, ssh_config  # noqa: E402  (their own module)

for _command in (ssh_command, ssh_config, approve, deny):
    cli.add_command(_command)


def run(args: list[str]) -> int:
    """Run the CLI; every failure becomes one line plus a hint on stderr, never a traceback."""
    try:
        result = cli.main(args=args, prog_name="cred-helper", standalone_mode=False,
                          obj={"argv": list(args)})
        return result if isinstance(result, int) else 0
    except CredHelperError as exc:
        sys.stderr.write(exc.render())
        return exc.exit_code
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "cred-helper"
        sys.stderr.write(UsageError(exc.format_message(),
                                    f"see `{command} --help`").render())
        return 2
    except (click.Abort, KeyboardInterrupt):
        sys.stderr.write(CredHelperError("interrupted").render())
        return 1
    except click.ClickException as exc:
        sys.stderr.write(CredHelperError(exc.format_message()).render())
        return exc.exit_code
    except Exception as exc:
        if "--debug" in args:
            import traceback

            traceback.print_exc()
        sys.stderr.write(CredHelperError(
            f"unexpected {type(exc).__name__}",
            "run again with --debug to see where, and report it").render())
        return 1
