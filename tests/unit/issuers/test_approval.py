"""The approval wait as a sequence of answers: what it asks the API server, in what order, how
long it sleeps, and when it gives up. The fake client plays back a script; time is simulated."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from cred_helper.errors import BadShape, CSRDenied, ServerError
from cred_helper.issuers.approval import MAX_BACKOFF, Follow, backoff, decided

CERT = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()


def csr(version: str, *conditions: str, cert: bool = False) -> dict:
    status: dict = {"conditions": [{"type": c, "status": "True"} for c in conditions]}
    if cert:
        status["certificate"] = CERT
    return {"metadata": {"name": "c", "resourceVersion": version}, "status": status}


def refused(status: int | None = None, transient: bool = False) -> ServerError:
    error = ServerError("refused")
    error.status, error.transient = status, transient
    return error


class Script:
    """A client whose answers are queued per call: a list of events (a watch stream), a dict
    (a GET), or an exception to raise."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, dict]] = []
        self.now = 0.0
        self.slept: list[float] = []

    def _next(self) -> object:
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def watch(self, path: str, params: dict, timeout: float) -> Iterator[dict]:
        self.calls.append(("watch", params))
        events = self._next()
        assert isinstance(events, list)
        for event in events:
            if isinstance(event, BaseException):
                raise event
            yield event

    def get(self, path: str, params: dict | None = None) -> dict:
        self.calls.append(("get", {"path": path}))
        answer = self._next()
        assert isinstance(answer, dict)
        return answer

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def follow(script: Script) -> Follow:
    return Follow(script, "c", lambda obj: obj, script.clock, script.sleep)  # type: ignore[arg-type]


def test_approval_and_signature_arrive_on_one_watch():
    script = Script([{"type": "MODIFIED", "object": csr("2", "Approved")},
                     {"type": "MODIFIED", "object": csr("3", "Approved", cert=True)}])
    got = follow(script).until(csr("1"), deadline=300)
    assert got["metadata"]["resourceVersion"] == "3"
    assert [kind for kind, _ in script.calls] == ["watch"]  # the whole wait: one request
    params = script.calls[0][1]
    assert params["fieldSelector"] == "metadata.name=c"
    assert params["resourceVersion"] == "1"  # from create's answer: no change is missed


def test_a_watch_that_ends_resumes_from_the_last_version_after_a_pause():
    script = Script([{"type": "MODIFIED", "object": csr("2", "Approved")}],  # then EOF
                    refused(transient=True),  # the API server restarting
                    refused(transient=True),
                    refused(503, transient=True),
                    [{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}}],
                    [{"type": "MODIFIED", "object": csr("10", "Approved", cert=True)}])
    waiting = follow(script)
    got = waiting.until(csr("1"), deadline=300)
    assert decided(got)
    assert waiting.unreachable is None  # it came back
    versions = [p["resourceVersion"] for kind, p in script.calls]
    assert versions == ["1", "2", "2", "2", "2", "9"]
    # A stream that brought news is re-opened at once; backoff doubles while the server
    # stays away.
    assert script.slept == [backoff(1), backoff(2), backoff(3)]


def test_410_gone_reads_the_csr_afresh_and_watches_from_there():
    script = Script([{"type": "ERROR", "object": {"kind": "Status", "code": 410,
                                                   "reason": "Expired"}}],
                    csr("50", "Approved"),
                    refused(410),  # a 410 as the HTTP answer, too
                    csr("51", "Approved"),
                    [{"type": "MODIFIED", "object": csr("52", "Approved", cert=True)}])
    assert decided(follow(script).until(csr("1"), deadline=300))
    assert [(k, p.get("resourceVersion")) for k, p in script.calls] == [
        ("watch", "1"), ("get", None), ("watch", "50"), ("get", None), ("watch", "51")]
    assert script.slept == [backoff(1), backoff(2)]  # a server that keeps saying 410: slower


def test_a_get_answering_410_is_an_error_not_a_loop():
    with pytest.raises(ServerError):
        follow(Script(refused(410), refused(410))).until(csr("1"), deadline=300)


def test_only_the_deadline_ends_a_wait_on_a_server_that_is_gone():
    script = Script(*[refused(transient=True)] * 100)
    waiting = follow(script)
    got = waiting.until(csr("1"), deadline=30)
    assert got == csr("1")
    assert waiting.unreachable is not None  # the wait ended on a server that was away
    assert script.now == pytest.approx(30)
    assert max(script.slept) == MAX_BACKOFF


@pytest.mark.parametrize("error", [refused(401), refused(None), BadShape("bad event")])
def test_refusals_that_will_not_pass_end_the_wait(error):
    with pytest.raises(ServerError) as raised:
        follow(Script(error)).until(csr("1"), deadline=300)
    assert raised.value is error


def test_a_deleted_csr_ends_the_wait():
    with pytest.raises(CSRDenied, match="was deleted"):
        follow(Script([{"type": "DELETED", "object": csr("2")}])).until(csr("1"), 300)
    other = dict(csr("2", "Denied"), metadata={"name": "other", "resourceVersion": "2"})
    with pytest.raises(CSRDenied, match="was deleted"):  # another CSR's news is not ours
        follow(Script([{"type": "MODIFIED", "object": other},
                       {"type": "DELETED", "object": csr("3")}])).until(csr("1"), 300)
    with pytest.raises(CSRDenied, match="was deleted"):
        follow(Script([{"type": "ERROR", "object": {"code": 410}}], refused(404))
               ).until(csr("1"), 300)


def test_without_watch_permission_it_polls():
    script = Script(refused(403), csr("1"), refused(transient=True), csr("2", "Denied"))
    got = follow(script).until(csr("1"), deadline=300)
    assert decided(got)
    assert [k for k, _ in script.calls] == ["watch", "get", "get", "get"]


def test_a_stream_of_errors_or_nothing_does_not_spin():
    script = Script(*[[{"type": "ERROR", "object": {"code": 500}}], []] * 50)
    follow(script).until(csr("1"), deadline=20)
    assert len(script.calls) < 20  # each empty stream is followed by a growing pause
    assert script.now == pytest.approx(20)


def test_an_issued_csr_needs_no_request():
    script = Script()
    follow(script).until(csr("1", "Approved", cert=True), deadline=300)
    assert script.calls == []
