"""Composition: builds stores, keys and issuers from Settings, and hands them to the service.

The one place that knows which concrete store or issuer a setting stands for; cli.py parses
and prints, service.py and policy.py decide, the issuers and stores do the work. Imports are
inside the functions so a run loads only what its settings need.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import UsageError, server_text

if TYPE_CHECKING:
    from .cache.aliases import FastPathAliases
    from .cache.entry import Entry
    from .cache.forget import Removed
    from .cache.store import SecretStore, Store
    from .config import Settings
    from .execinfo import ExecInfo
    from .issuers.issued import Issued


@dataclass(frozen=True)
class Console:
    """What the person at the terminal sees and types: all on stderr / the terminal."""

    say: Callable[[str], None]
    warn: Callable[[str], None]
    ask_pin: Callable[[str], str]


def obtain(flags: dict[str, Any], exec_info: ExecInfo, console: Console, command: str,
           force: bool = False) -> tuple[Settings, Entry]:
    """Resolve the settings and get a credential for them (`command`: "get" or "login")."""
    from . import config, service
    from .parentproc import parent_identity

    settings = config.resolve(flags, os.environ)
    keeper = service.Keeper(console.warn)
    store = credential_store(settings.cache, settings.cache_dir, console.warn)
    secrets = refresh_tokens(settings.cache, settings.cache_dir, keeper.lost, console.warn)
    key = settings.cache_key(exec_info.cluster)

    # A person may be logging in under the lock: others wait as long as that may take.
    waits = settings.approval_timeout + 120
    if settings.issuer == "oidc" or settings.bootstrap == "oidc":
        from .issuers.oidc import LOGIN_TIMEOUT

        waits = max(settings.approval_timeout, LOGIN_TIMEOUT) + 120

    request = service.Request(
        key=key,
        profile=settings.profile_label,
        issuer=settings.issuer,
        ttl=settings.ttl,
        cache_dir=None if settings.cache == "none" else settings.cache_dir,
        parent=parent_identity(),
        lock_timeout=waits,
        command=command,
        force=force,
        belongs_to=belongs_to(settings.cluster, exec_info),
    )
    issue = issuer(settings, key, exec_info, console, secrets)
    return settings, service.obtain(request, store, issue, time.time, console.warn, keeper)


def belongs_to(profile: str, exec_info: ExecInfo) -> str:
    """fastkey.belongs_to from the parsed KUBERNETES_EXEC_INFO (the CA as kubectl encodes it:
    standard base64, which is what the cache hit hashes)."""
    import base64

    from .fastkey import belongs_to as digest

    c = exec_info.cluster
    return digest(profile, None if c is None else
                  (c.server, c.tls_server_name, base64.b64encode(c.ca_data).decode()))


def issuer(settings: Settings, key: str, exec_info: ExecInfo, console: Console,
           secrets: SecretStore) -> Callable[[bool], Issued]:
    """issue(renewing) for these settings; see service.Issue."""
    from . import bootstrap

    say = console.say

    def issue(renewing: bool) -> Issued:
        # A token key (pkcs11:) stays open, logged in once, until this issuance is done.
        with contextlib.ExitStack() as held:
            if settings.issuer == "oidc":
                return _oidc_issuer(settings, key, exec_info.interactive, held, console,
                                    secrets).issue()
            from .cache.pending import pending_store
            from .issuers.csr import CsrIssuer
            from .kube import BearerAuth, KubeClient

            def oidc_login() -> BearerAuth:
                # The same login as --issuer oidc gives; its refresh token is kept under this
                # entry's key, so later certificates need no person.
                issued = _oidc_issuer(settings, key, exec_info.interactive, held, console,
                                      secrets).issue()
                return BearerAuth(
                    issued.status["token"],
                    # a claim is the provider's free text: shown as such
                    source=f"the OIDC login of {server_text(issued.identity['username'])}",
                    refused_hint="the API server must trust this provider's tokens: check its "
                                 "JWT authenticator (issuer URL, audience = --oidc-client-id, "
                                 "CA, claim rules such as a verified email); its log says why")

            endpoint, auth = bootstrap.resolve(settings, exec_info.cluster, oidc_login)
            prove = None
            if settings.attest_with:
                from .keys.attest import Prover

                prove = Prover(settings.attest_with, settings.pkcs11_module,
                               settings.pin_source, exec_info.interactive, os.environ,
                               console.ask_pin, say, held, time.time)
            csr_issuer = CsrIssuer(settings, KubeClient(endpoint, auth), say=say,
                                   pending=pending_store(settings.cache, settings.cache_dir,
                                                         key, console.warn), prove=prove)
            # Renewing, a CSR nobody approves within moments gives up (StillPending) and the
            # still-valid certificate is served; the next run collects the new one.
            return csr_issuer.issue(renewing=renewing)

    return issue


def _oidc_issuer(settings, key: str, interactive: bool, held: contextlib.ExitStack,
                 console: Console, secrets: SecretStore):
    import functools

    from .browser import can_open, open_url
    from .cache.discovery import DiscoveryCache
    from .cache.secrets import client_secret
    from .issuers import oidc
    from .issuers.oidcissuer import OIDCIssuer
    from .kubeconfig import read_file

    say, warn = console.say, console.warn
    auth: oidc.ClientAuth = oidc.NoClientAuth()
    if settings.oidc_client_auth in ("client-secret", "client-secret-post"):
        if settings.oidc_client_secret_file:
            secret = read_file(settings.oidc_client_secret_file, "client secret",
                               "--oidc-client-secret-file", secret=True).decode().strip()
        else:
            secret = client_secret(settings.oidc_issuer_url, settings.oidc_client_id)
        method = "post" if settings.oidc_client_auth == "client-secret-post" else "basic"
        auth = oidc.ClientSecretAuth(secret, method)
    elif settings.oidc_client_auth == "private-key-jwt" and \
            settings.oidc_client_key.startswith("pkcs11:"):
        from .keys.pkcs11 import open_key

        auth = oidc.PrivateKeyJWTAuth(held.enter_context(open_key(
            settings.oidc_client_key, settings.pkcs11_module, settings.pin_source, interactive,
            os.environ, console.ask_pin, say)))
    elif settings.oidc_client_auth == "private-key-jwt":
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        data = read_file(settings.oidc_client_key, "client key", "--oidc-client-key",
                         secret=True)
        try:
            auth = oidc.PrivateKeyJWTAuth(load_pem_private_key(data, password=None))
        except (ValueError, TypeError):
            raise UsageError(f"--oidc-client-key: {settings.oidc_client_key} is not an "
                             "unencrypted PEM private key") from None
    cache = None if settings.cache == "none" else DiscoveryCache(settings.cache_dir, warn)
    provider = oidc.OIDCProvider(settings.oidc_issuer_url, settings.oidc_client_id, auth,
                                 oidc.http_client(settings.oidc_certificate_authority),
                                 cache=cache)
    browser = None
    if not settings.no_browser and can_open(os.environ):
        browser = functools.partial(open_url, env=os.environ)
    if settings.oidc_grant == "client-credentials":
        from .cache.secrets import NoSecrets

        # The grant issues no refresh token (RFC 6749 4.4.3): skip the OS keyring, whose
        # backend search alone costs about 0.1 s of every login.
        secrets = NoSecrets()
    return OIDCIssuer(settings, provider, secrets, key, interactive, say, browser)


def credential_store(kind: str, cache_dir: str, warn: Callable[[str], None]) -> Store:
    from .cache.store import NullStore

    if kind == "file":
        from .cache.filestore import FileStore

        return FileStore(cache_dir, warn)
    if kind == "keyring":
        from .cache.keyringstore import KeyringStore
        from .cache.lock import exclusive
        from .cache.sidefile import SideFiles

        side = SideFiles(warn)
        return KeyringStore(warn, lambda: exclusive(cache_dir, "keyring-index", 30, side))
    return NullStore()


def refresh_tokens(kind: str, cache_dir: str, lost: Callable[[str], None] | None = None,
                   warn: Callable[[str], None] | None = None) -> SecretStore:
    from .cache.secrets import NoSecrets, RefreshTokens

    return NoSecrets() if kind == "none" else RefreshTokens(cache_dir, lost, warn)


def fast_path_aliases(settings: Settings,
                      warn: Callable[[str], None]) -> FastPathAliases | None:
    """Where the cache-hit path's shortcuts go: only the file cache has a hit path."""
    if settings.cache != "file":
        return None
    from .cache.aliases import FastPathAliases

    return FastPathAliases(settings.cache_dir, warn)


def cache_dir(flag: str | None) -> str:
    """The cache directory for status and logout, which take no profile."""
    from .paths import default_cache_dir

    chosen = flag or os.environ.get("CRED_HELPER_CACHE_DIR") or default_cache_dir(os.environ)
    return os.path.abspath(os.path.expanduser(chosen))


def every_store(directory: str, warn: Callable[[str], None]) -> list[Store]:
    """The file cache, the access requests' SSH certificates and, where one can be opened,
    the OS keyring (file first)."""
    from .sshaccess.store import SshStore

    stores = [credential_store("file", directory, warn), SshStore(directory, warn)]
    try:
        stores.append(credential_store("keyring", directory, warn))
    except ImportError:
        pass
    return stores


def cached_entries(directory: str, warn: Callable[[str], None]) -> list[tuple[Store, Entry]]:
    """(store, entry) for every credential kept: a keyring that cannot be read holds none."""
    from .errors import CredHelperError

    found: list[tuple[Store, Entry]] = []
    for store in every_store(directory, warn):
        try:
            found += [(store, e) for e in store.entries()]
        except CredHelperError:
            if store.name == "file":
                raise
    return found


def forget(directory: str, cluster: str | None, warn: Callable[[str], None]) -> Removed:
    """`logout`: everything for `cluster`'s entries, or everything when it is None."""
    from .cache.forget import forget as forget_entries
    from .sshaccess.store import SshStore

    wanted = None if cluster is None else (lambda profile: profile == cluster)
    removed = forget_entries(directory, every_store(directory, warn),
                             refresh_tokens("file", directory), wanted)
    removed.other_files += SshStore(directory, warn).delete_orphans(locks=cluster is None)
    return removed
