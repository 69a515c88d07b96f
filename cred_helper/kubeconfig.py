"""Reading kubeconfig files: the bits cred-helper needs from them."""

from __future__ import annotations

import base64
import os
from typing import Any

from .errors import UsageError, os_reason
from .execinfo import ClusterInfo

# No CA bundle or kubeconfig comes near this; a larger "file" is a mistake (or /dev/zero).
MAX_FILE = 16 << 20


def load(path: str, flag: str, secret: bool = False) -> dict[str, Any]:
    """The kubeconfig at `path`; `secret`: it holds credentials, so it must be private."""
    import yaml

    data = read_file(path, "kubeconfig", flag, secret=secret)
    try:
        doc = yaml.safe_load(data)
    except (yaml.YAMLError, UnicodeDecodeError):
        raise UsageError(f"{flag}: {path} is not valid YAML") from None
    except RecursionError:  # the YAML composer recurses once per nesting level
        raise UsageError(f"{flag}: {path} nests too deeply to be a kubeconfig") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{flag}: {path} is not a kubeconfig")
    return doc


def named(doc: dict, section: str, name: str, inner: str) -> dict[str, Any] | None:
    """The `inner` mapping of the item called `name` in the list `section`; None if absent."""
    items = doc.get(section) or []
    if not isinstance(items, list):
        raise UsageError(f"the kubeconfig's {section} is not a list")
    for item in items:
        if isinstance(item, dict) and item.get("name") == name:
            value = item.get(inner)
            return value if isinstance(value, dict) else {}
    return None


def text(obj: dict, field: str, where: str) -> str:
    """A string field of a kubeconfig mapping ("" when absent)."""
    value = obj.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UsageError(f"{where}: {field} is not a string")
    return value


def read_file(path: str, what: str, flag: str, secret: bool = False) -> bytes:
    """The file's bytes; `secret`: refused unless private to the user (secretfile.py)."""
    try:
        if secret:
            from .secretfile import read_secret

            return read_secret(path, what, flag)
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE + 1)
    except OSError as exc:
        raise UsageError(f"{flag}: cannot read {what} {path}: {os_reason(exc)}") from None
    except ValueError:  # a NUL in a name a kubeconfig gave ("a\0b" is YAML)
        raise UsageError(f"{flag}: the {what} path {path!r} contains a NUL character") \
            from None
    if len(data) > MAX_FILE:
        raise UsageError(f"{flag}: {what} {path} is larger than {MAX_FILE >> 20} MiB")
    return data


def data_or_file(obj: dict, field: str, base: str, flag: str, secret: bool = False) -> bytes:
    data = text(obj, f"{field}-data", flag)
    if data:
        try:
            return base64.b64decode(data, validate=True)
        except ValueError:
            raise UsageError(f"{flag}: {field}-data is not base64") from None
    path = text(obj, field, flag)
    if not path:
        return b""
    return read_file(os.path.join(base, os.path.expanduser(path)), field, flag, secret=secret)


def cluster_info(path: str, context_name: str) -> ClusterInfo:
    """spec.cluster as kubectl would send it for this context (provideClusterInfo: true)."""
    doc = load(path, "--kubeconfig")
    context = named(doc, "contexts", context_name, "context")
    if context is None:
        raise UsageError(f"--context: no context {context_name!r} in {path}")
    cluster = named(doc, "clusters", context.get("cluster", ""), "cluster") or {}
    base = os.path.dirname(os.path.abspath(path))
    where = f"--kubeconfig {path}"
    return ClusterInfo(
        server=text(cluster, "server", where),
        tls_server_name=text(cluster, "tls-server-name", where),
        ca_data=data_or_file(cluster, "certificate-authority", base, "--kubeconfig"),
        insecure_skip_tls_verify=cluster.get("insecure-skip-tls-verify") is True,
        proxy_url=text(cluster, "proxy-url", where),
    )

