"""The exec plugin protocol's input: what kubectl asks for in KUBERNETES_EXEC_INFO.

Pure: the caller passes the variable's text and whether stdin is a terminal. Kept apart from
execcred.py (the output side) because dataclasses cost more than a whole cache hit.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from .execcred import API_VERSIONS, V1, V1BETA1


@dataclass(frozen=True)
class ClusterInfo:
    """`spec.cluster`, present when the kubeconfig entry sets provideClusterInfo."""

    server: str = ""
    tls_server_name: str = ""
    ca_data: bytes = b""
    insecure_skip_tls_verify: bool = False
    proxy_url: str = ""  # every request to this cluster goes through it, as kubectl's do


@dataclass(frozen=True)
class ExecInfo:
    api_version: str = V1
    interactive: bool = False
    cluster: ClusterInfo | None = None


def parse_exec_info(raw: str | None, stdin_is_tty: bool) -> tuple[ExecInfo, str | None]:
    """The request kubectl made, and a warning for people when the variable was unusable.

    A missing or malformed variable never fails the run: kubectl versions and hand-run
    invocations differ, and the safe reading is v1 with interactivity from the terminal.
    """
    if raw is None or not raw.strip():
        return ExecInfo(V1, stdin_is_tty, None), None
    import json

    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than any kubectl's
        return _fallback(stdin_is_tty, "KUBERNETES_EXEC_INFO is not JSON")
    if not isinstance(doc, dict):
        return _fallback(stdin_is_tty, "KUBERNETES_EXEC_INFO is not a JSON object")
    api_version = doc.get("apiVersion")
    if api_version not in API_VERSIONS:
        return _fallback(
            stdin_is_tty, f"KUBERNETES_EXEC_INFO has unsupported apiVersion {api_version!r}"
        )
    if doc.get("kind") != "ExecCredential":
        return _fallback(stdin_is_tty, "KUBERNETES_EXEC_INFO is not an ExecCredential")
    spec = doc.get("spec") or {}
    if not isinstance(spec, dict):
        return _fallback(stdin_is_tty, "KUBERNETES_EXEC_INFO spec is not an object")
    interactive = spec.get("interactive", stdin_is_tty if api_version == V1BETA1 else None)
    if not isinstance(interactive, bool):
        return _fallback(stdin_is_tty, "KUBERNETES_EXEC_INFO spec.interactive is not a boolean")
    cluster_doc = spec.get("cluster")
    if cluster_doc is None:
        return ExecInfo(api_version, interactive, None), None
    try:
        cluster = _parse_cluster(cluster_doc)
    except (TypeError, ValueError) as exc:
        return ExecInfo(api_version, interactive, None), (
            f"ignoring KUBERNETES_EXEC_INFO spec.cluster: {exc}"
        )
    return ExecInfo(api_version, interactive, cluster), None


def _fallback(stdin_is_tty: bool, why: str) -> tuple[ExecInfo, str]:
    return ExecInfo(V1, stdin_is_tty, None), f"{why}; answering with {V1}"


def _parse_cluster(doc: object) -> ClusterInfo:
    if not isinstance(doc, dict):
        raise TypeError("not an object")
    server = doc.get("server", "")
    name = doc.get("tls-server-name", "")
    ca_b64 = doc.get("certificate-authority-data", "")
    insecure = doc.get("insecure-skip-tls-verify", False)
    proxy_url = doc.get("proxy-url", "")
    if not all(isinstance(v, str) for v in (server, name, ca_b64, proxy_url)) or not isinstance(
        insecure, bool
    ):
        raise TypeError("unexpected field types")
    try:
        ca_data = base64.b64decode(ca_b64, validate=True) if ca_b64 else b""
    except ValueError as exc:
        raise ValueError("certificate-authority-data is not base64") from exc
    return ClusterInfo(server, name, ca_data, insecure, proxy_url)
