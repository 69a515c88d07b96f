"""kubeapi.Cluster's list of access requests: a page at a time, whatever their number and
size, and a server's continue tokens followed only while they make progress."""

from __future__ import annotations

import pytest

from cred_helper.errors import ServerError
from cred_helper.gateway import kubeapi
from cred_helper.kube import BearerAuth, Endpoint
from tests.unit.gateway.test_access import request
from tests.unit.test_kubelist import Answer


class Pages:
    """The API server's paged list: `pages` answers in turn, the requests recorded."""

    def __init__(self, pages: list[dict]) -> None:
        self.pages = pages
        self.asked: list[tuple[dict, int]] = []
        self.path = kubeapi.ar.PATH

    def request(self, method: str, path: str, params: dict, max_body: int) -> Answer:
        assert (method, path) == ("GET", self.path)
        self.asked.append((params, max_body))
        page = self.pages[len(self.asked) - 1]
        if isinstance(page, ServerError):
            raise page
        return Answer(page)


def page(names: list[str], more: str = "", version: str = "7") -> dict:
    items = []
    for name in names:
        item = request()
        item["metadata"]["name"] = name
        items.append(item)
    return {"items": items, "metadata": {"resourceVersion": version, "continue": more}}


def cluster(pages: list[dict]) -> tuple[kubeapi.Cluster, Pages]:
    c = kubeapi.Cluster(Endpoint("https://127.0.0.1:6443", b""), BearerAuth("t"))
    c._own = Pages(pages)  # type: ignore[assignment]
    return c, c._own  # type: ignore[return-value]


def test_requests_are_listed_a_page_at_a_time():
    c, server = cluster([page(["a", "b"], more="t1"), page(["c"], more="t2"),
                         page(["d"], version="9")])
    found, version = c.list_requests()
    assert sorted(found) == ["a", "b", "c", "d"] and version == "9"
    assert [p for p, _ in server.asked] == [
        {"limit": str(kubeapi.PAGE)}, {"limit": str(kubeapi.PAGE), "continue": "t1"},
        {"limit": str(kubeapi.PAGE), "continue": "t2"}]


def test_a_page_too_large_is_asked_again_smaller():
    """Requests as large as their requesters make them: a page over what an answer may be is
    asked again with fewer (kubelist), never the gateway blind to revocations."""
    large = ServerError("the API server sent an answer larger than 4 MiB")
    large.too_large = True
    c, server = cluster([large, page(["a"], more="t1"), page(["b"])])
    found, _ = c.list_requests()
    assert sorted(found) == ["a", "b"]
    assert [p["limit"] for p, _ in server.asked] == [str(kubeapi.PAGE), str(kubeapi.PAGE // 2),
                                                     str(kubeapi.PAGE)]


def test_an_expired_continue_token_lists_again_from_the_start():
    gone = ServerError("the continue token expired")
    gone.status = 410
    c, _ = cluster([page(["a"], more="t1"), gone, page(["a"], more="t1"), page(["b"])])
    found, _ = c.list_requests()
    assert sorted(found) == ["a", "b"]


@pytest.mark.parametrize("more", ["t1", 7, "x" * 5000])
def test_a_continue_token_that_makes_no_progress_is_an_error(more):
    c, _ = cluster([page(["a"], more="t1"), page(["b"], more=more)])  # type: ignore[arg-type]
    with pytest.raises(ServerError, match="continue token"):
        c.list_requests()


def test_pods_are_listed_a_page_at_a_time():
    def pod(name: str) -> dict:
        return {"metadata": {"name": name}, "spec": {"containers": [{"name": "app"}]},
                "status": {"phase": "Running"}}

    server = Pages([{"items": [pod("b"), pod("a")], "metadata": {"continue": "t1"}},
                    {"items": [pod("c")], "metadata": {}}])
    server.path = "/api/v1/namespaces/payments/pods"
    assert [p.name for p in kubeapi.list_pods(server, "payments")] == ["a", "b", "c"]  # type: ignore[arg-type]
    assert [p for p, _ in server.asked] == [{"limit": str(kubeapi.PAGE)},
                                            {"limit": str(kubeapi.PAGE), "continue": "t1"}]


def test_a_pod_of_a_shape_no_api_server_sends_is_listed_without_its_containers():
    odd = [{"metadata": {"name": "n"}, "spec": {"containers": 5}, "status": {"phase": 3}},
           {"metadata": {"name": "m"}, "spec": {"containers": ["app", {"name": 7}]}}]
    server = Pages([{"items": odd, "metadata": {}}])
    server.path = "/api/v1/namespaces/payments/pods"
    pods = kubeapi.list_pods(server, "payments")  # type: ignore[arg-type]
    assert [(p.name, p.phase, p.containers) for p in pods] == [
        ("m", "Unknown", ()), ("n", "Unknown", ())]
