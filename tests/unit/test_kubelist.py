"""kubelist.pages, the one way the broker, the gateway and the janitor read a list: a page at
a time, a page too large asked again smaller (down to one object, read with room) and grown
back, a 410 on a continue token starting over, and a server that never ends its list an
error. The janitor's pass over it: tests/unit/janitor/test_run.py; the real server's 410:
tests/realcluster/test_janitor.py."""

from __future__ import annotations

import json

import pytest

from cred_helper import kubelist
from cred_helper.errors import ServerError


class Answer:
    def __init__(self, doc: object, date: str | None = "Mon, 07 Dec 2026 04:40:00 GMT") -> None:
        self.doc = doc
        self.headers = {"Date": date} if date else {}

    def json(self) -> object:
        return self.doc


def too_large(cap: int) -> ServerError:
    error = ServerError(f"answer larger than {cap >> 20} MiB")
    error.too_large = True
    return error


class Server:
    """A list of `objects` served `limit` at a time (continue tokens are offsets), each answer
    refused as too large when its JSON passes the reader's cap, as net.Client refuses it."""

    def __init__(self, objects: list[dict], expire_at: int | None = None) -> None:
        self.objects = objects
        self.expire_at = expire_at  # a continue token at this offset answers 410 once
        self.asked: list[tuple[dict, int]] = []

    def request(self, method: str, path: str, params: dict, max_body: int) -> Answer:
        assert method == "GET"
        self.asked.append((dict(params), max_body))
        start = int(params.get("continue", "0"))
        if start and start == self.expire_at:
            self.expire_at = None
            gone = ServerError("the continue token expired")
            gone.status = 410
            raise gone
        end = start + int(params["limit"])
        more = str(end) if end < len(self.objects) else ""
        doc = {"metadata": {"resourceVersion": str(100 + end), "continue": more},
               "items": self.objects[start:end]}
        if len(json.dumps(doc)) > max_body:
            raise too_large(max_body)
        return Answer(doc)


def obj(name: str, size: int = 0) -> dict:
    return {"metadata": {"name": name}, "blob": "x" * size}


def names(pages) -> list[str]:
    return [item["metadata"]["name"] for page in pages if page is not kubelist.RESTART
            for item in page.items]


def test_a_list_is_read_a_page_at_a_time_with_the_callers_parameters():
    server = Server([obj(f"o{i}") for i in range(5)])
    pages = list(kubelist.pages(server, "/apis/x", 2, {"fieldSelector": "a=b"}))  # type: ignore[arg-type]
    assert names(pages) == [f"o{i}" for i in range(5)]
    assert [p for p, _ in server.asked] == [
        {"fieldSelector": "a=b", "limit": "2"},
        {"fieldSelector": "a=b", "limit": "2", "continue": "2"},
        {"fieldSelector": "a=b", "limit": "2", "continue": "4"}]
    assert pages[-1].metadata["resourceVersion"] == "106"
    assert pages[0].date == "Mon, 07 Dec 2026 04:40:00 GMT"


def test_a_page_too_large_is_asked_again_smaller_and_the_limit_grows_back():
    """Twenty objects of 1.5 MiB among small ones: a page of 16 is over 4 MiB; halved where
    they are, grown back where they are not. The one object of 5 MiB is read alone, with
    room."""
    objects = [obj(f"s{i}") for i in range(40)] + [obj(f"b{i}", 1500 << 10) for i in range(3)]
    objects += [obj("huge", 5 << 20)] + [obj(f"t{i}") for i in range(40)]
    server = Server(objects)
    assert names(kubelist.pages(server, "/apis/x", 16)) == [  # type: ignore[arg-type]
        o["metadata"]["name"] for o in objects]
    limits = [int(p["limit"]) for p, _ in server.asked]
    assert max(limits) == 16 and 1 in limits and limits[-1] == 16
    assert all(cap == (kubelist.ITEM_BODY if p["limit"] == "1" else kubelist.PAGE_BODY)
               for p, cap in server.asked)


def test_an_object_too_large_even_alone_is_one_error_with_the_callers_hint():
    server = Server([obj("a"), obj("huge", 17 << 20)])
    with pytest.raises(ServerError) as caught:
        list(kubelist.pages(server, "/api/v1/pods", 8, hint="list less"))  # type: ignore[arg-type]
    assert caught.value.message == ("one object in GET /api/v1/pods is larger than 16 MiB of "
                                    "JSON: cred-helper cannot read it")
    assert caught.value.hint == "list less"


def test_an_expired_continue_token_starts_the_list_over():
    server = Server([obj(f"o{i}") for i in range(5)], expire_at=2)
    pages = list(kubelist.pages(server, "/apis/x", 2))  # type: ignore[arg-type]
    assert pages[1] is kubelist.RESTART
    assert names(pages[2:]) == [f"o{i}" for i in range(5)]


def test_a_410_on_the_first_page_is_the_callers_to_handle():
    class Gone(Server):
        def request(self, method, path, params, max_body):
            error = ServerError("gone")
            error.status = 410
            raise error

    with pytest.raises(ServerError, match="gone"):
        list(kubelist.pages(Gone([]), "/apis/x", 2))  # type: ignore[arg-type]


class Endless:
    """A server whose list never ends: the same continue token again, or a new one forever."""

    def __init__(self, repeat: bool) -> None:
        self.repeat, self.calls = repeat, 0

    def request(self, method: str, path: str, params: dict, max_body: int) -> Answer:
        self.calls += 1
        token = "same" if self.repeat else f"t{self.calls}"
        return Answer({"metadata": {"continue": token}, "items": []})


@pytest.mark.parametrize("repeat", [True, False])
def test_a_list_that_never_ends_is_an_error_not_a_loop(repeat):
    server = Endless(repeat)
    with pytest.raises(ServerError, match=r"continue token|pages"):
        list(kubelist.pages(server, "/api/v1/pods", 100))  # type: ignore[arg-type]
    assert server.calls <= kubelist.MAX_PAGES + 1


@pytest.mark.parametrize("token", [5, ["x"], {"a": 1}, True, "x" * 5000])
def test_a_continue_token_that_cannot_be_followed_is_an_error(token):
    class Odd(Server):
        def request(self, method, path, params, max_body):
            return Answer({"metadata": {"continue": token}, "items": []})

    with pytest.raises(ServerError, match="continue token that cannot be followed"):
        list(kubelist.pages(Odd([]), "/apis/x", 2))  # type: ignore[arg-type]


@pytest.mark.parametrize("doc", [[], "x", {"items": []}, {"metadata": {}, "items": {}}])
def test_a_malformed_list_is_an_error(doc):
    class Malformed(Server):
        def request(self, method, path, params, max_body):
            return Answer(doc)

    with pytest.raises(ServerError, match=r"not a JSON object|without items or metadata"):
        list(kubelist.pages(Malformed([]), "/apis/x", 2))  # type: ignore[arg-type]
