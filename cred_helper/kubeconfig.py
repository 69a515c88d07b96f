"""Reading kubeconfig files: the bits cred-helper needs from them."""

from __future__ import annotations

import base64
import os
from typing import Any

from .errors import UsageError
from .execinfo import ClusterInfo


def load(path: str, flag: str) -> dict[str, Any]:
    import yaml

    try:
        with open(path, "rb") as fh:
            doc = yaml.safe_load(fh)
    except OSError as exc:
        raise UsageError(f"{flag}: cannot read kubeconfig {path}: {exc.strerror}") from None
    except yaml.YAMLError:
        raise UsageError(f"{flag}: {path} is not valid YAML") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{flag}: {path} is not a kubeconfig")
    return doc


def named(doc: dict, section: str, name: str, inner: str) -> dict[str, Any] | None:
    for item in doc.get(section) or []:
        if isinstance(item, dict) and item.get("name") == name:
            value = item.get(inner)
            return value if isinstance(value, dict) else {}
    return None


def read_file(path: str, what: str, flag: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise UsageError(f"{flag}: cannot read {what} {path}: {exc.strerror}") from None


def data_or_file(obj: dict, field: str, base: str, flag: str) -> bytes:
    data = obj.get(f"{field}-data")
    if data:
        try:
            return base64.b64decode(data, validate=True)
        except ValueError:
            raise UsageError(f"{flag}: {field}-data is not base64") from None
    path = obj.get(field)
    if not path:
        return b""
    return read_file(os.path.join(base, os.path.expanduser(path)), field, flag)


def cluster_info(path: str, context_name: str) -> ClusterInfo:
    """spec.cluster as kubectl would send it for this context (provideClusterInfo: true)."""
    doc = load(path, "--kubeconfig")
    context = named(doc, "contexts", context_name, "context")
    if context is None:
        raise UsageError(f"--context: no context {context_name!r} in {path}")
    cluster = named(doc, "clusters", context.get("cluster", ""), "cluster") or {}
    base = os.path.dirname(os.path.abspath(path))
    return ClusterInfo(
        server=cluster.get("server", ""),
        tls_server_name=cluster.get("tls-server-name", ""),
        ca_data=data_or_file(cluster, "certificate-authority", base, "--kubeconfig"),
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify", False)),
        proxy_url=text_field(cluster, "proxy-url", "--kubeconfig"),
    )


def text_field(obj: dict, name: str, flag: str) -> str:
    """A string field of a kubeconfig entry ("" when absent); another type is an error."""
    value = obj.get(name, "")
    if not isinstance(value, str):
        raise UsageError(f"{flag}: the cluster's {name} is not a string")
    return value
