"""The exec plugin protocol's output: one ExecCredential document on stdout.

Runs on the cache-hit path, so it uses only the C string encoder behind the json module
(importing json itself pulls in `re` and costs more than the rest of a cache hit).
"""

from __future__ import annotations

import time

try:
    from _json import encode_basestring_ascii as _quote
except ImportError:  # interpreters without the C accelerator
    from json.encoder import encode_basestring_ascii as _quote

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"
API_VERSIONS = (V1, V1BETA1)


def rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def render(api_version: str, status: dict[str, str]) -> str:
    """One ExecCredential document with `status` (string values only), newline-terminated."""
    fields = ",".join(f"{_quote(k)}:{_quote(v)}" for k, v in status.items())
    return (
        f'{{"apiVersion":{_quote(api_version)},"kind":"ExecCredential",'
        f'"status":{{{fields}}}}}\n'
    )
