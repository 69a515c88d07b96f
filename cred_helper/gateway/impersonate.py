"""The impersonation headers that make every API call of a session the person's own: the
request's `spec` (admission made it equal to its creator's identity) as `Impersonate-User`, one
`Impersonate-Group` per group, `Impersonate-Uid` and `Impersonate-Extra-<key>`. Pure.

One extra is never impersonated: `authentication.kubernetes.io/credential-id`, which the API
server sets to name the credential a request came with (the person's client certificate, when
they made the access request). It says nothing about the person that RBAC or a webhook judges,
and the gateway's calls come with the gateway's own credential: the audit log names both.

A value with a space at either edge is never sent (`unsendable`): HTTP trims it, and the API
server would read another identity. Values travel as the UTF-8 bytes Kubernetes reads (Go
takes header bytes as they are); the HTTP clients here encode header strings as ISO-8859-1,
so each value is given to them as the ISO-8859-1 reading of its UTF-8 bytes. Extra keys are
percent-encoded as client-go does (`transport.headerKeyEscape`): every byte that is not an
RFC 7230 token character, and `%`.
"""

from __future__ import annotations

from ..accessrequest import Spec

CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"
_TOKEN = frozenset(b"!#$&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def headers(spec: Spec) -> tuple[tuple[str, str], ...]:
    out = [("Impersonate-User", _wire(spec.username))]
    out += [("Impersonate-Group", _wire(group)) for group in spec.groups]
    if spec.uid:
        out.append(("Impersonate-Uid", _wire(spec.uid)))
    for key, values in spec.extra:
        if key == CREDENTIAL_ID:
            continue
        out += [(f"Impersonate-Extra-{escape_key(key)}", _wire(v)) for v in values]
    return tuple(out)


def unsendable(spec: Spec) -> str:
    """The identity field HTTP would change on the way ("" when none): a header value loses
    the spaces at its edges (RFC 9110; Go's reader trims them), so ' victim' would arrive as
    the user 'victim', and ' oncall' as a group the gateway may impersonate."""
    fields = [("spec.username", spec.username), ("spec.uid", spec.uid)]
    fields += [(f"spec.groups[{i}]", group) for i, group in enumerate(spec.groups)]
    fields += [(f"spec.extra[{key!r}]", value) for key, values in spec.extra for value in values]
    for field, value in fields:
        if value != value.strip(" "):
            return f"{field} starts or ends with a space"
    return ""


def escape_key(key: str) -> str:
    return "".join(chr(b) if b in _TOKEN else f"%{b:02X}" for b in key.encode("utf-8"))


def _wire(value: str) -> str:
    return value.encode("utf-8").decode("latin-1")
