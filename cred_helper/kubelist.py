"""Reading a Kubernetes list a page at a time (`limit` and `continue`), for the broker, the
gateway and the janitor alike.

Whoever may create an object chooses how large it is (a CSR's annotations, an access request's
reason and pods, a pod's environment), and nothing removes old access requests: one answer
for a whole list can outgrow what an answer may be, and a program that cannot list cannot
start or watch. So every answer is one page, capped: a page too large to read is asked again
with half the limit, down to one object, whose answer may be larger (ITEM_BODY); the limit
then grows back. A continue token that expired (410) starts the list over: `RESTART` is
yielded first, so the caller drops what it gathered. A server whose list never ends (a
repeated or over-long token, pages or items without end) is one error, never a loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ServerError
from .kube import KubeClient
from .net import MAX_BODY

RESTART = None  # yielded by `pages` when the list starts over (a 410 on a continue token)
MAX_RESTARTS = 5
MAX_ITEMS = 200_000  # one list; 40 times the 5,000 pods bench/janitor.py measures
MAX_PAGES = 10_000
MAX_TOKEN = 4096  # kube-apiserver's tokens are a few hundred bytes
# An answer is read whole, so its size is capped: a page at the network edge's 4 MiB, and a
# page of one object at more. One object is at most what etcd stores (--max-request-bytes,
# 1.5 MiB by default), and JSON writes it at most about six times larger, the worst being
# text it escapes: `<`, `>` and `&` become `\u003c` (tried on 1.37: a pod with 1.4 MiB of
# `<` lists as 8.2 MiB of JSON).
PAGE_BODY = MAX_BODY
ITEM_BODY = 16 << 20


@dataclass(frozen=True)
class Page:
    items: list[Any]
    metadata: dict[str, Any]  # the list's: resourceVersion, continue
    date: str | None  # the answer's Date header, as sent (the API server's clock)


def pages(client: KubeClient, path: str, limit: int, params: Mapping[str, str] | None = None,
          hint: str | None = None) -> Iterator[Page | None]:
    """The pages of the list at `path` (with `params`, e.g. a field selector), `limit`
    objects at most to a page; `hint` goes with the errors that say the list is too large
    to read (how to list less)."""
    size, token = limit, ""
    restarts = pages_read = items_read = 0
    while True:
        query = {**(params or {}), "limit": str(size), **({"continue": token} if token else {})}
        try:
            resp = client.request("GET", path, params=query,
                                  max_body=ITEM_BODY if size == 1 else PAGE_BODY)
        except ServerError as error:
            if error.too_large and size > 1:
                size //= 2
                continue
            if error.too_large:
                raise ServerError(f"one object in GET {path} is larger than "
                                  f"{ITEM_BODY >> 20} MiB of JSON: cred-helper cannot read it",
                                  hint) from None
            if error.status == 410 and token and restarts < MAX_RESTARTS:
                restarts += 1
                size, token = limit, ""
                pages_read = items_read = 0
                yield RESTART
                continue
            raise
        doc = _object(resp, path)
        meta, items = doc.get("metadata"), doc.get("items")
        if not isinstance(meta, dict) or not isinstance(items, list):
            raise ServerError(f"the API server sent a list without items or metadata "
                              f"(GET {path})")
        pages_read += 1
        items_read += len(items)
        if items_read > MAX_ITEMS or pages_read > MAX_PAGES:
            raise ServerError(f"the API server listed more than {MAX_ITEMS} items or "
                              f"{MAX_PAGES} pages (GET {path})", hint)
        yield Page(items, meta, resp.headers.get("Date"))
        more = meta.get("continue")
        if more is None or more == "":
            return
        if not isinstance(more, str) or more == token or len(more) > MAX_TOKEN:
            raise ServerError(f"the API server sent a continue token that cannot be followed "
                              f"(GET {path}): not a string, repeated or too long")
        size, token = min(limit, size * 2), more


def _object(resp: Any, path: str) -> dict:
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise ServerError(f"the API server sent a list that is not a JSON object (GET {path})")
    return doc
