"""Where the approver's API server is and who it is there: a kubeconfig context (out of cluster,
for a small team), or the pod's service account (in cluster).

In cluster: KUBERNETES_SERVICE_HOST/PORT, the mounted ca.crt as the only trust, and the
projected token file, read again as it rotates (kube.TokenFileAuth). From a kubeconfig: the
context's cluster (server, CA, tls-server-name, proxy-url) and a token, token file or client
certificate; exec plugins and auth providers are not run here (an approver is a service).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from . import kubeconfig as kc
from .errors import UsageError
from .kube import Auth, BearerAuth, ClientCertAuth, Endpoint, TokenFileAuth

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def in_cluster(env: Mapping[str, str], sa_dir: str = SA_DIR) -> tuple[Endpoint, Auth]:
    host = env.get("KUBERNETES_SERVICE_HOST", "")
    port = env.get("KUBERNETES_SERVICE_PORT", "443") or "443"
    if not host:
        raise UsageError("not in a cluster: KUBERNETES_SERVICE_HOST is not set",
                         "pass --kubeconfig FILE to run outside the cluster")
    if ":" in host:  # an IPv6 service address
        host = f"[{host}]"
    ca = kc.read_file(os.path.join(sa_dir, "ca.crt"), "service account CA", "in cluster")
    auth = TokenFileAuth(os.path.join(sa_dir, "token"),
                         source="the pod's service account token",
                         refused_hint="check the Deployment's serviceAccountName and that "
                                      "the token is mounted")
    auth.token()  # unreadable at start: one error now, not at the first request
    return Endpoint(server=f"https://{host}:{port}", ca_pem=ca), auth


def endpoint(kubeconfig: str | None, context: str | None, env: Mapping[str, str],
             program: str = "the approver") -> tuple[Endpoint, Auth]:
    """A kubeconfig when one is named or we are not in a pod, else the pod's service account
    (the approver's and the janitor's rule). `program` names the caller in errors."""
    if kubeconfig or not env.get("KUBERNETES_SERVICE_HOST"):
        return from_kubeconfig(kubeconfig or default_kubeconfig(env), context, program)
    return in_cluster(env)


def default_kubeconfig(env: Mapping[str, str]) -> str:
    first = (env.get("KUBECONFIG") or "").split(os.pathsep)[0]
    return first or os.path.join(os.path.expanduser("~"), ".kube", "config")


def from_kubeconfig(path: str, context_name: str | None,
                    program: str = "the approver") -> tuple[Endpoint, Auth]:
    doc = kc.load(path, "--kubeconfig")
    name = context_name or kc.text(doc, "current-context", f"--kubeconfig {path}")
    if not name:
        raise UsageError(f"--kubeconfig {path} has no current-context", "pass --context NAME")
    context = kc.named(doc, "contexts", name, "context")
    if context is None:
        raise UsageError(f"--context: no context {name!r} in {path}")
    where = f"--kubeconfig {path}"
    cluster = kc.named(doc, "clusters", kc.text(context, "cluster", where), "cluster")
    if not cluster:
        raise UsageError(f"{where}: context {name!r} names no cluster found in the file")
    user = kc.named(doc, "users", kc.text(context, "user", where), "user") or {}
    base = os.path.dirname(os.path.abspath(path))
    if cluster.get("insecure-skip-tls-verify"):
        raise UsageError(f"{where}: insecure-skip-tls-verify is set",
                         f"{program} only talks to a verified API server: give the "
                         "cluster's certificate-authority")
    endpoint = Endpoint(
        server=kc.text(cluster, "server", where),
        ca_pem=kc.data_or_file(cluster, "certificate-authority", base, "--kubeconfig"),
        tls_server_name=kc.text(cluster, "tls-server-name", where),
        proxy_url=kc.text(cluster, "proxy-url", where))
    return endpoint, _user_auth(user, base, where, program)


def _user_auth(user: dict, base: str, where: str, program: str) -> Auth:
    token = kc.text(user, "token", where)
    if token:
        return BearerAuth(token, source=f"the token of {where}",
                          refused_hint="check the kubeconfig user's token")
    token_file = kc.text(user, "tokenFile", where)
    if token_file:
        return TokenFileAuth(os.path.join(base, os.path.expanduser(token_file)))
    cert = kc.data_or_file(user, "client-certificate", base, "--kubeconfig")
    if cert:
        key = kc.data_or_file(user, "client-key", base, "--kubeconfig", secret=True)
        return ClientCertAuth(cert, key, source=f"the client certificate of {where}")
    if user.get("exec") or user.get("auth-provider"):
        raise UsageError(f"{where}: the user's exec or auth-provider is not run by {program}",
                         "give it a token, tokenFile or client certificate (e.g. a service "
                         "account token from `kubectl create token`)")
    raise UsageError(f"{where}: the user has no token or client certificate")
