"""One pass over a scripted API (the I/O seams: pages, 410 restarts, evictions whose answer is
lost, Events said once). The real server's answers are tested in tests/realcluster."""

from __future__ import annotations

import json

import pytest

from cred_helper.errors import ServerError
from cred_helper.janitor.decide import Options
from cred_helper.janitor.run import Janitor

from .pods_fixture import HOUR, NOW, exited, owner, pod

PDB = {"metadata": {"namespace": "shop", "name": "web"},
       "spec": {"selector": {"matchLabels": {"app": "web"}}}}


def error(status: int | None, reason: str = "", causes=(), unsent: bool = False):
    e = ServerError(f"failed ({status})")
    e.status, e.status_reason, e.cause_types, e.unsent = status, reason, tuple(causes), unsent
    e.status_message = f"refused ({status})" if status else ""
    return e


class Response:
    def __init__(self, status: int) -> None:
        self.status_code = status


class FakeAPI:
    """Lists served in pages of `page` items; evictions answered from `answers`."""

    def __init__(self, pods: list[dict], answers: list | None = None, page: int = 2,
                 expire_once: bool = False) -> None:
        self.pods = pods
        self.answers = list(answers or [])
        self.page = page
        self.expire_once = expire_once
        self.requests: list[tuple[str, str, dict | None]] = []
        self.events: dict[str, dict] = {}

    def get(self, path: str, params: dict | None = None) -> dict:
        params = params or {}
        self.requests.append(("GET", path, params))
        items = [PDB] if "poddisruptionbudgets" in path else self.pods
        start = int(params.get("continue", "0"))
        if start and self.expire_once and "pods" in path:
            self.expire_once = False
            raise error(410, "Expired")
        end = start + min(int(params["limit"]), self.page)
        more = str(end) if end < len(items) else ""
        return {"metadata": {"continue": more}, "items": items[start:end]}

    def request(self, method: str, path: str, body=None, params=None):
        self.requests.append((method, path, params))
        answer = self.answers.pop(0) if self.answers else 201
        if isinstance(answer, Exception):
            raise answer
        return Response(answer)

    def post(self, path: str, body: dict) -> dict:
        name = body["metadata"]["name"]
        if name in self.events:
            raise error(409, "AlreadyExists")
        self.events[name] = body
        return body


def run(api: FakeAPI, **options) -> tuple[int, list[dict], list[str]]:
    out: list[str] = []
    warnings: list[str] = []
    rc = Janitor(api, Options(**options), out=out.append, warn=warnings.append,  # type: ignore[arg-type]
                 wall=lambda: NOW).run()
    return rc, [json.loads(line) for line in out], warnings


def stale(name: str, rs: str = "rs-1") -> dict:
    return pod(name, debug={"d": exited(HOUR)}, owners=[owner(uid=rs)])


def test_pages_are_followed_and_every_decision_is_one_line_and_one_event():
    pods = [stale("a"), pod("b"), stale("c", "rs-2"), pod("d", owners=[owner(uid="rs-3")])]
    api = FakeAPI(pods, page=1)
    rc, lines, _ = run(api)
    assert rc == 0
    assert [(ln["pod"], ln["action"]) for ln in lines] == [("a", "evicted"), ("c", "evicted")]
    pod_gets = [r for r in api.requests if r[0] == "GET" and r[1] == "/api/v1/pods"]
    assert len(pod_gets) == 4 and all(r[2]["limit"] for r in pod_gets)
    assert len(api.events) == 2


def test_an_expired_continue_token_starts_the_list_over_without_double_counting():
    api = FakeAPI([stale("a"), stale("b", "rs-2"), stale("c", "rs-3")], page=1,
                  expire_once=True)
    rc, lines, _ = run(api)
    assert rc == 0
    assert [ln["pod"] for ln in lines] == ["a", "b", "c"]
    gets = [r[2] for r in api.requests if r[1] == "/api/v1/pods"]
    assert gets[1].get("continue") and "continue" not in gets[2]


def test_a_lost_answer_is_unknown_never_evicted_and_fails_the_run():
    api = FakeAPI([stale("a"), stale("b", "rs-2")], answers=[error(None), 201])
    rc, lines, _ = run(api)
    assert rc == 1
    assert [(ln["pod"], ln["action"], ln["status"]) for ln in lines] == [
        ("a", "unknown", None), ("b", "evicted", 201)]


def test_an_unreachable_server_stops_the_pass_with_nothing_claimed():
    api = FakeAPI([stale("a"), stale("b", "rs-2")], answers=[error(None, unsent=True)])
    out: list[str] = []
    janitor = Janitor(api, Options(), out=out.append, warn=lambda _: None,  # type: ignore[arg-type]
                      wall=lambda: NOW)
    with pytest.raises(ServerError):
        janitor.run()
    assert out == []


def test_429_causes_and_other_refusals():
    api = FakeAPI([stale("a"), stale("b", "rs-2"), stale("c", "rs-3")], answers=[
        error(429, "TooManyRequests", ["DisruptionBudget"]), error(429, "TooManyRequests"),
        error(403, "Forbidden")])
    rc, lines, _ = run(api)
    assert [(ln["action"], ln["status"]) for ln in lines] == [
        ("pdb-blocked", 429), ("throttled", 429), ("skipped:api-error", 403)]
    assert rc == 1  # the 403 is an API failure


def test_events_are_said_once_across_runs_and_dry_run_writes_none():
    api = FakeAPI([stale("a")], answers=[error(429, "TooManyRequests", ["DisruptionBudget"])] * 2)
    run(api)
    first = dict(api.events)
    run(api)
    assert api.events == first and len(first) == 1
    (event,) = first.values()
    assert event["involvedObject"] == {"apiVersion": "v1", "kind": "Pod", "namespace": "shop",
                                       "name": "a", "uid": "uid-a"}
    assert event["reason"] == "DebugPodEvictionBlocked" and event["type"] == "Warning"
    assert event["source"] == {"component": "cred-helper-janitor"}
    dry = FakeAPI([stale("a")])
    rc, lines, _ = run(dry, dry_run=True)
    assert rc == 0
    assert [ln["action"] for ln in lines] == ["would-evict"] and dry.events == {}
    evictions = [r for r in dry.requests if r[0] == "POST"]
    assert evictions[0][2] == {"dryRun": "All"}


def test_an_event_that_cannot_be_written_is_said_and_fails_the_run():
    api = FakeAPI([stale("a")])
    api.post = lambda path, body: (_ for _ in ()).throw(error(403, "Forbidden"))
    rc, lines, warnings = run(api)
    assert rc == 1 and lines[0]["action"] == "evicted"
    assert "could not record the Event" in warnings[0]


def test_namespaces_are_listed_one_by_one_and_malformed_items_skipped():
    api = FakeAPI([stale("a"), {"metadata": "x"}, None])
    rc, lines, warnings = run(api, namespaces=("shop",))
    assert rc == 0 and [ln["pod"] for ln in lines] == ["a"]
    assert {r[1] for r in api.requests if r[0] == "GET"} == {
        "/apis/policy/v1/namespaces/shop/poddisruptionbudgets",
        "/api/v1/namespaces/shop/pods"}
    assert warnings == ["2 pod(s) in the list were malformed and skipped"]


def test_a_list_without_items_is_an_api_failure():
    api = FakeAPI([])
    api.get = lambda path, params=None: {"metadata": {}}
    with pytest.raises(ServerError):
        run(api)


def test_a_forbidden_list_says_what_the_janitor_needs():
    api = FakeAPI([])

    def forbidden(path, params=None):
        raise error(403, "Forbidden")

    api.get = forbidden
    with pytest.raises(ServerError) as caught:
        run(api)
    assert "list pods and poddisruptionbudgets" in caught.value.hint


GARBAGE = [None, "", "x", 0, -1, 1e308, True, [], {}, [None], {"a": None}, "9" * 5000,
           "2026-02-30T00:00:00Z", "0001-01-01T00:00:00Z", "2999-01-01T00:00:00Z",
           "2026-01-01T00:00:00+25:00", "\u0000", "2026-01-01T00:00:00.123456789Z"]


def test_hostile_times_and_statuses_never_crash_and_never_evict():
    """Seeded: every time field, state and status of a stale pod replaced by garbage, alone
    and together. A pod whose stale container's time is unreadable is never evicted."""
    import random

    rng = random.Random(1415)
    paths = [("state",), ("state", "terminated"), ("state", "terminated", "finishedAt"),
             ("state", "running"), ("state", "running", "startedAt")]
    pods = []
    for i in range(300):
        obj = stale(f"p{i}", f"rs-{i}")
        status = obj["status"]["ephemeralContainerStatuses"][0]
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(paths)
            target = status
            for key in path[:-1]:
                target = target.get(key) if isinstance(target, dict) else None
            if isinstance(target, dict):
                target[path[-1]] = rng.choice(GARBAGE)
        if rng.random() < 0.2:
            obj["status"]["ephemeralContainerStatuses"] = rng.choice(GARBAGE)
        pods.append(obj)
    api = FakeAPI(pods, page=50)
    rc, lines, _ = run(api, max_evictions=1000)
    assert rc == 0
    assert len(lines) == 300
    for obj, line in zip(pods, lines, strict=True):
        statuses = obj["status"]["ephemeralContainerStatuses"]
        state = statuses[0].get("state") if isinstance(statuses, list) and statuses \
            and isinstance(statuses[0], dict) else None
        finished = state.get("terminated", {}).get("finishedAt") \
            if isinstance(state, dict) and isinstance(state.get("terminated"), dict) else None
        # The original time, or the one garbage value that is a real RFC 3339 time (with
        # nanoseconds: Python 3.10 cannot read it, and then it is no time, which is safe too).
        readable = isinstance(finished, str) and (
            finished.startswith("2027") or finished == "2026-01-01T00:00:00.123456789Z")
        if line["action"] == "evicted":
            assert readable, (obj, line)
        else:
            assert line["action"] == "skipped:no-start-time" or readable, (obj, line)


class EndlessLister:
    """A server whose list never ends: the same continue token again, or a new one forever."""

    def __init__(self, repeat: bool) -> None:
        self.repeat, self.calls = repeat, 0

    def get(self, path: str, params: dict) -> dict:
        self.calls += 1
        token = "same" if self.repeat else f"t{self.calls}"
        return {"metadata": {"continue": token}, "items": []}


@pytest.mark.parametrize("repeat", [True, False])
def test_a_list_that_never_ends_is_an_error_not_a_loop(repeat):
    from cred_helper.janitor.api import MAX_PAGES, pages

    lister = EndlessLister(repeat)
    with pytest.raises(ServerError, match=r"continue token|pages"):
        for _ in pages(lister, "/api/v1/pods", 100):  # type: ignore[arg-type]
            pass
    assert lister.calls <= MAX_PAGES + 1


def test_an_event_name_never_ends_in_a_newline():
    from cred_helper.janitor.api import event_name
    from cred_helper.janitor.decide import Decision
    from cred_helper.janitor.pods import read_pod

    facts = read_pod(pod("web-1\n"), NOW, 900, 8 * HOUR)
    assert facts is not None
    name = event_name(Decision(facts, None, "evicted", "why"))
    assert "\n" not in name and name.startswith("pod.")
