"""The broker's list of CSRs and access requests (stream.Stream.list): whoever may create one
chooses its size, so the list is read a page at a time, a page too large asked again smaller
(kubelist), and one oversized answer never ends the broker. On the real server:
tests/realcluster/test_access_requests.py::test_many_large_requests_do_not_stop_the_broker."""

from __future__ import annotations

from cred_helper.broker.stream import PAGE, Stream
from tests.unit.test_kubelist import Server


def stream(server: Server) -> Stream:
    return Stream(server, "/apis/access.cred-helper.dev/v1alpha1/accessrequests", {},  # type: ignore[arg-type]
                  "AccessRequest list", usable=lambda obj: obj.get("ok", True),
                  wanted=lambda obj: True, handle=lambda obj: None, warn=lambda text: None,
                  clock=lambda: 0.0, sleep=lambda s: None, leading=lambda: True)


def test_requests_as_large_as_their_requesters_make_them_are_listed_all_the_same():
    """120 requests of about 40 KB (what one person may create) are more than 4 MiB in one
    answer; the list asked 500 to a page and failed, and the broker with it, for as long as
    the requests stayed."""
    objects = [{"metadata": {"name": f"bulk-{i}"}, "spec": {"attestation": "A" * 40_000}}
               for i in range(120)]
    objects.append({"metadata": {"name": "fresh"}, "spec": {}})
    server = Server(objects)
    items, version = stream(server).list()
    assert [o["metadata"]["name"] for o in items] == [o["metadata"]["name"] for o in objects]
    last, _ = server.asked[-1]
    assert version == str(100 + int(last["continue"]) + int(last["limit"]))  # the last page's
    limits = [int(params["limit"]) for params, _ in server.asked]
    assert limits[0] == PAGE and min(limits) < len(objects)


def test_what_is_not_usable_is_left_out():
    server = Server([{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}, "ok": False}])
    items, _ = stream(server).list()
    assert [o["metadata"]["name"] for o in items] == ["a"]
