"""Talking to the cluster as the person: with the profile's own cluster credential (the one
kubectl gets from `cred-helper --cluster=NAME`, cached or issued now), at the API server and CA
that kubectl uses for it, or with a kubeconfig user that holds a token or client certificate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import BadShape, UsageError
from ..execinfo import ClusterInfo
from ..kube import Auth, BearerAuth, ClientCertAuth, Endpoint, KubeClient

SSR_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


@dataclass(frozen=True)
class Identity:
    """A user exactly as SelfSubjectReview shows it (the order of groups kept)."""

    username: str
    groups: tuple[str, ...]
    uid: str
    extra: tuple[tuple[str, tuple[str, ...]], ...]


def whoami(client: KubeClient) -> Identity:
    review = client.post(SSR_PATH, {"apiVersion": "authentication.k8s.io/v1",
                                    "kind": "SelfSubjectReview"})
    status = review.get("status")
    info = status.get("userInfo") if isinstance(status, dict) else None
    origin = client.endpoint.server
    if not isinstance(info, dict):
        raise BadShape(f"the API server at {origin} sent a SelfSubjectReview without userInfo")
    username, groups = info.get("username"), info.get("groups") or []
    uid, extra = info.get("uid") or "", info.get("extra") or {}
    if not isinstance(username, str) or not username:
        raise BadShape(f"the API server at {origin} named no user in its SelfSubjectReview")
    if not (isinstance(groups, list) and all(isinstance(g, str) for g in groups)
            and isinstance(uid, str) and isinstance(extra, dict)
            and all(isinstance(k, str) and isinstance(v, list)
                    and all(isinstance(x, str) for x in v) for k, v in extra.items())):
        raise BadShape(f"the API server at {origin} sent a malformed SelfSubjectReview")
    return Identity(username, tuple(groups), uid,
                    tuple(sorted((k, tuple(v)) for k, v in extra.items())))


def endpoint_for(settings: Any, cluster: ClusterInfo | None, issued_server: str) -> Endpoint:
    """Where kubectl sends this profile's requests: --server / the kubeconfig context's cluster
    (provideClusterInfo) / the server the credential was issued by, trusted through exactly
    the CA that goes with it."""
    from ..kubeconfig import read_file

    server = settings.server or (cluster.server if cluster else "") or issued_server
    if not server:
        raise UsageError("no API server for this profile",
                         "pass --server, or --context naming the kubeconfig context that "
                         "runs cred-helper for it")
    if settings.certificate_authority:
        ca = read_file(settings.certificate_authority, "CA bundle", "--certificate-authority")
    elif cluster and server == cluster.server:
        ca = cluster.ca_data
    else:
        ca = b""
    if cluster and server == cluster.server:
        if cluster.insecure_skip_tls_verify and not ca:
            raise UsageError("the kubeconfig cluster sets insecure-skip-tls-verify, and "
                             "cred-helper always verifies TLS",
                             "pass --certificate-authority with the API server's CA")
        return Endpoint(server, ca, cluster.tls_server_name, cluster.proxy_url)
    return Endpoint(server, ca)


def auth_of(status: Mapping[str, str], profile: str, spill_dir: str) -> Auth:
    """The credential an ExecCredential status carries, as the API layer's auth."""
    source = f"the cluster credential of profile {profile}"
    if "token" in status:
        return BearerAuth(status["token"], source=source,
                          refused_hint=f"run `cred-helper login --cluster {profile} --force`")
    return ClientCertAuth(status["clientCertificateData"].encode(),
                          status["clientKeyData"].encode(), source=source,
                          spill_dir=spill_dir)


def default_kubeconfig(env: Mapping[str, str]) -> str:
    first = (env.get("KUBECONFIG") or "").split(os.pathsep)[0]
    return first or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".kube", "config")


def profile_of_context(path: str, context: str | None) -> tuple[str, ClusterInfo | None] | None:
    """(profile, spec.cluster) when the context's user runs cred-helper for a profile, so that
    `cred-helper approve` with kubectl's current context uses that person's own credential;
    None for any other user."""
    from .. import execentry, kubeconfig

    doc = kubeconfig.load(path, "--kubeconfig")
    name = context or kubeconfig.text(doc, "current-context", f"--kubeconfig {path}")
    if not name:
        return None
    ctx = kubeconfig.named(doc, "contexts", name, "context")
    if ctx is None:
        raise UsageError(f"--context: no context {name!r} in {path}")
    user = kubeconfig.named(doc, "users", ctx.get("user", ""), "user") or {}
    exec_ = user.get("exec")
    if not isinstance(exec_, dict) or not execentry.runs_cred_helper(exec_.get("command")):
        return None
    args = exec_.get("args")
    for i, arg in enumerate(args if isinstance(args, list) else []):
        if isinstance(arg, str) and arg.startswith("--cluster="):
            profile = arg.split("=", 1)[1]
        elif arg == "--cluster" and i + 1 < len(args) and isinstance(args[i + 1], str):
            profile = args[i + 1]
        else:
            continue
        info = kubeconfig.cluster_info(path, name) if exec_.get("provideClusterInfo") else None
        return profile, info
    return None
