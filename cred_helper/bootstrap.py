"""The bootstrap identity that creates CSRs, and the API server to send them to.

Server and CA: `--server` / `--certificate-authority` first, then `spec.cluster` from
KUBERNETES_EXEC_INFO, then the cluster of the bootstrap kubeconfig's context.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from . import kubeconfig
from .config import Settings
from .errors import NoServer, UsageError
from .execinfo import ClusterInfo
from .kube import Auth, BearerAuth, ClientCertAuth, Endpoint


@dataclass(frozen=True)
class KubeconfigTarget:
    auth: Auth
    server: str
    ca_pem: bytes
    tls_server_name: str
    proxy_url: str = ""
    insecure_skip_tls_verify: bool = False


def read_token(path: str, flag: str) -> BearerAuth:
    token = kubeconfig.read_file(path, "token file", flag, secret=True).decode(
        "utf-8", "replace").strip()
    if not token or any(c.isspace() for c in token):
        raise UsageError(f"{flag}: {path} does not hold a single bearer token",
                         "the file must contain the token alone")
    return BearerAuth(token, source=f"the token in {path}")


def from_kubeconfig(path: str, context_name: str, spill_dir: str) -> KubeconfigTarget:
    """The user and cluster of a context. `spill_dir`: where a client key may sit for a moment
    on systems without memfd (the cache directory; never $TMPDIR)."""
    flag = "--bootstrap-kubeconfig"
    doc = kubeconfig.load(path, flag, secret=True)
    where = f"{flag} {path}"
    name = context_name or kubeconfig.text(doc, "current-context", where)
    context = kubeconfig.named(doc, "contexts", name, "context")
    if context is None:
        raise UsageError(f"--bootstrap-context: no context {name!r} in {path}",
                         "name one of its contexts with --bootstrap-context")
    user_name = kubeconfig.text(context, "user", where)
    user = kubeconfig.named(doc, "users", user_name, "user") or {}
    cluster = kubeconfig.named(doc, "clusters", kubeconfig.text(context, "cluster", where),
                               "cluster") or {}
    base = os.path.dirname(os.path.abspath(path))
    source = f"user {user_name!r} of {path}"
    auth = _user_auth(user, base, source, where, spill_dir)
    ca = kubeconfig.data_or_file(cluster, "certificate-authority", base, flag)
    insecure = cluster.get("insecure-skip-tls-verify", False)
    if not isinstance(insecure, bool):
        raise UsageError(f"{where}: insecure-skip-tls-verify is not true or false")
    return KubeconfigTarget(auth, kubeconfig.text(cluster, "server", where), ca,
                            kubeconfig.text(cluster, "tls-server-name", where),
                            kubeconfig.text(cluster, "proxy-url", where), insecure)


def _user_auth(user: dict, base: str, source: str, where: str, spill_dir: str) -> Auth:
    token = kubeconfig.text(user, "token", where).strip()
    if token:
        return BearerAuth(token, source=source)
    token_file = kubeconfig.text(user, "tokenFile", where)
    if token_file:
        return read_token(os.path.join(base, token_file), "--bootstrap-kubeconfig")
    flag = "--bootstrap-kubeconfig"
    cert = kubeconfig.data_or_file(user, "client-certificate", base, flag)
    key = kubeconfig.data_or_file(user, "client-key", base, flag, secret=True)
    if cert and key:
        return ClientCertAuth(cert, key, source=source, spill_dir=spill_dir)
    if user.get("exec") or user.get("auth-provider"):
        raise UsageError(f"{source} authenticates with a plugin, which cannot bootstrap CSRs",
                         "use a user with a token or client certificate, or a token file")
    raise UsageError(f"{source} has no token or client certificate",
                     "use a user with a token or client certificate")


def resolve(settings: Settings, cluster: ClusterInfo | None,
            oidc_login: Callable[[], Auth] | None = None) -> tuple[Endpoint, Auth]:
    """Where to send CSRs and as whom. `oidc_login` runs the OIDC login (`bootstrap =
    "oidc"`); it is called only once everything else here has been checked."""
    target = None
    if settings.bootstrap == "oidc":
        if oidc_login is None:
            raise UsageError("--bootstrap oidc is not available here")
        auth: Auth = None  # logged in below, once the rest is known to be right
    elif settings.bootstrap_kubeconfig:
        target = from_kubeconfig(settings.bootstrap_kubeconfig, settings.bootstrap_context,
                                 settings.cache_dir)
        auth = target.auth
    elif settings.bootstrap_token_file:
        auth = read_token(settings.bootstrap_token_file, "--bootstrap-token-file")
    else:
        raise UsageError("no bootstrap credential to create the certificate request with",
                         "set --bootstrap-token-file, --bootstrap-kubeconfig or --bootstrap "
                         "oidc (or the profile's bootstrap-token-file)")

    server = settings.server or (cluster.server if cluster else "") or (
        target.server if target else "")
    if not server:
        raise NoServer("no API server to send the certificate request to",
                         "set provideClusterInfo: true in the kubeconfig exec entry, "
                         "or pass --server")
    if settings.certificate_authority:
        ca = kubeconfig.read_file(settings.certificate_authority, "CA bundle",
                                  "--certificate-authority")
        name = cluster.tls_server_name if cluster and server == cluster.server else ""
    elif cluster and server == cluster.server:
        ca, name = cluster.ca_data, cluster.tls_server_name
    elif target and server == target.server:
        ca, name = target.ca_pem, target.tls_server_name
    else:
        ca, name = b"", ""
    # A kubeconfig cluster's proxy-url and insecure-skip-tls-verify go with its server; for
    # another server: the environment's proxy, and nothing to skip.
    if cluster and server == cluster.server:
        proxy, insecure = cluster.proxy_url, cluster.insecure_skip_tls_verify
    elif target and server == target.server:
        proxy, insecure = target.proxy_url, target.insecure_skip_tls_verify
    else:
        proxy, insecure = "", False
    if not ca and insecure:
        raise UsageError("the kubeconfig cluster sets insecure-skip-tls-verify, and "
                         "cred-helper always verifies TLS",
                         "pass --certificate-authority with the API server's CA")
    if oidc_login is not None and settings.bootstrap == "oidc":
        auth = oidc_login()
    return Endpoint(server, ca, name, proxy), auth
