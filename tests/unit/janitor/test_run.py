"""One pass over a scripted API (the I/O seams: pages, 410 restarts, oversized answers,
evictions whose answer is lost, Events said once, the server's clock from its Date header). The
real server's answers are tested in tests/realcluster."""

from __future__ import annotations

import email.utils
import json

import pytest

from cred_helper.errors import ServerError
from cred_helper.janitor.decide import Options
from cred_helper.janitor.run import Janitor

from .pods_fixture import HOUR, NOW, exited, owner, pod, running, stamp

PDB = {"metadata": {"namespace": "shop", "name": "web"},
       "spec": {"selector": {"matchLabels": {"app": "web"}}}}


def error(status: int | None, reason: str = "", causes=(), unsent: bool = False):
    e = ServerError(f"failed ({status})")
    e.status, e.status_reason, e.cause_types, e.unsent = status, reason, tuple(causes), unsent
    e.status_message = f"refused ({status})" if status else ""
    return e


class Response:
    def __init__(self, status: int, doc: dict | None = None, date: float | None = None) -> None:
        self.status_code = status
        self.doc = doc
        self.headers = {"Date": email.utils.formatdate(date, usegmt=True)} if date else {}

    def json(self) -> dict | None:
        return self.doc


class FakeAPI:
    """Lists served in pages of `page` items, answered at `date` by the server's clock (None:
    no Date header); evictions answered from `answers`."""

    def __init__(self, pods: list[dict], answers: list | None = None, page: int = 2,
                 expire_once: bool = False, date: float | None = NOW) -> None:
        self.pods = pods
        self.answers = list(answers or [])
        self.page = page
        self.expire_once = expire_once
        self.date = date
        self.requests: list[tuple[str, str, dict | None]] = []
        self.bodies: list[dict] = []  # of the evictions
        self.events: dict[str, dict] = {}

    def list(self, path: str, params: dict) -> dict:
        items = [PDB] if "poddisruptionbudgets" in path else self.pods
        start = int(params.get("continue", "0"))
        if start and self.expire_once and "pods" in path:
            self.expire_once = False
            raise error(410, "Expired")
        end = start + min(int(params["limit"]), self.page)
        more = str(end) if end < len(items) else ""
        return {"metadata": {"continue": more}, "items": items[start:end]}

    def request(self, method: str, path: str, body=None, params=None, max_body=None):
        self.requests.append((method, path, params))
        if method == "GET":
            doc = self.list(path, params or {})
            if max_body is not None and len(json.dumps(doc)) > max_body:
                too_large = ServerError(f"answer larger than {max_body >> 20} MiB")
                too_large.too_large = True
                raise too_large
            return Response(200, doc, self.date)
        self.bodies.append(body)
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


def run(api: FakeAPI, wall: float = NOW, **options) -> tuple[int, list[dict], list[str]]:
    out: list[str] = []
    warnings: list[str] = []
    rc = Janitor(api, Options(**options), out=out.append, warn=warnings.append,  # type: ignore[arg-type]
                 wall=lambda: wall).run()
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
    assert warnings == ["2 pod(s) in the list could not be read and were skipped; their "
                        "workloads count as not Ready"]


def test_a_list_without_items_is_an_api_failure():
    api = FakeAPI([])
    api.list = lambda path, params: {"metadata": {}}
    with pytest.raises(ServerError):
        run(api)


def test_a_forbidden_list_says_what_the_janitor_needs():
    api = FakeAPI([])

    def forbidden(path, params):
        raise error(403, "Forbidden")

    api.list = forbidden
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


def test_an_event_name_never_ends_in_a_newline():
    from cred_helper.janitor.api import event_name
    from cred_helper.janitor.decide import Decision
    from cred_helper.janitor.pods import read_pod

    facts = read_pod(pod("web-1\n"), NOW, 900, 8 * HOUR)
    assert facts is not None
    name = event_name(Decision(facts, None, "evicted", "why"))
    assert "\n" not in name and name.startswith("pod.")


# ---- issue 23 ---------------------------------------------------------------------------------

def test_the_eviction_names_the_pod_as_listed():
    """uid and resourceVersion as preconditions: a `kubectl debug` between the list and the
    eviction changes the pod's resourceVersion, and the server refuses (409)."""
    api = FakeAPI([stale("a")])
    run(api)
    assert api.bodies[0]["deleteOptions"] == {
        "preconditions": {"uid": "uid-a", "resourceVersion": "4711"}}


def test_a_pod_changed_since_the_list_stays_and_uses_up_its_workload():
    changed = error(409, "Conflict")
    changed.status_message = ('Operation cannot be fulfilled on Pod "a": the ResourceVersion in '
                              "the precondition (4711) does not match the ResourceVersion in "
                              "record (4712). The object might have been modified")
    api = FakeAPI([stale("a"), stale("b")], answers=[changed])
    rc, lines, _ = run(api)
    assert rc == 0
    assert [(ln["pod"], ln["action"], ln["status"]) for ln in lines] == [
        ("a", "changed", 409), ("b", "skipped:workload-limit", None)]
    assert "might have been modified" in lines[0]["reason"]
    assert next(iter(api.events.values()))["reason"] == "DebugPodChanged"


def big(name: str, namespace: str, annotation: int = 0, env: int = 0) -> dict:
    obj = pod(name, namespace=namespace, owners=[owner(uid=f"rs-{name}")])
    obj["metadata"]["annotations"] = {"blob": "x" * annotation}
    obj["spec"]["containers"][0]["env"] = [{"name": "BLOB", "value": "y" * env}]
    return obj


def test_big_pods_anywhere_slow_a_pass_and_never_stop_it():
    """Seventeen pods with 250 KiB of annotations, and three with 1.4 MiB of environment, in a
    namespace the pass excludes: pages of 100 were over 4 MiB and every pass failed. Now a
    page too large is asked again with half the limit, and the limit grows back after."""
    pods = [big(f"a{i}", "other", annotation=250 << 10) for i in range(17)]
    pods += [big(f"e{i}", "other", env=1400 << 10) for i in range(3)]
    pods += [stale("web"), *(pod(f"p{i}", owners=[owner(uid=f"rs-p{i}")]) for i in range(150))]
    api = FakeAPI(pods, page=1000)
    rc, lines, _ = run(api, exclude_namespaces=frozenset({"other"}))
    assert rc == 0
    assert [(ln["pod"], ln["action"]) for ln in lines] == [("web", "evicted")]
    limits = [int(r[2]["limit"]) for r in api.requests if r[1] == "/api/v1/pods"]
    # 100, 50 and 25 pods are over 4 MiB; then halved again wherever big pods are, grown back
    # where they are not.
    assert limits == [100, 50, 25, 12, 24, 12, 6, 12, 24, 48, 96]


def test_one_pod_larger_than_any_pod_can_be_is_one_clear_error():
    api = FakeAPI([stale("a"), big("huge", "shop", annotation=17 << 20)], page=1000)
    with pytest.raises(ServerError) as caught:
        run(api)
    assert caught.value.message == ("one object in GET /api/v1/pods is larger than 16 MiB of "
                                    "JSON: cred-helper cannot read it")
    assert "--namespace" in caught.value.hint


@pytest.mark.parametrize("token", [5, ["x"], {"a": 1}, True])
def test_a_continue_token_that_is_not_a_string_is_an_error(token):
    api = FakeAPI([stale("a")])
    api.list = lambda path, params: {"metadata": {"continue": token}, "items": []}
    with pytest.raises(ServerError, match="not a string"):
        run(api)


@pytest.mark.parametrize(("case", "obj", "wall"), [
    # A node clock 9 h behind: its start reads 9 h ago, though the pod was created 2 h ago and
    # the container added 60 s ago.
    ("node 9 h behind", pod("a", debug={"d": running(9 * HOUR)}, created=2 * HOUR, added=60),
     NOW),
    # A node clock 20 minutes behind: a container that exited 30 s ago reads 20.5 minutes ago.
    ("node 20 min behind",
     pod("a", debug={"d": {"terminated": {"startedAt": stamp(21 * 60 + 60),
                                          "finishedAt": stamp(20 * 60 + 30)}}}, added=90),
     NOW),
    # The janitor's own clock 9 h ahead: ages are the server's (its Date header).
    ("janitor 9 h ahead", pod("a", debug={"d": running(HOUR)}, added=HOUR + 5), NOW + 9 * HOUR),
])
def test_clock_skew_never_makes_a_fresh_session_stale(case, obj, wall):
    rc, lines, warnings = run(FakeAPI([obj]), wall=wall)
    assert rc == 0
    assert [ln["action"] for ln in lines] in (["skipped:no-start-time"], ["skipped:fresh"]), case
    if wall != NOW:
        assert warnings == ["this machine's clock is 32400s ahead of the API server's; ages are "
                            "judged by the API server's"]


def test_ages_are_judged_by_the_servers_clock_both_ways():
    """The server's clock says the session is 9 h old; the janitor's own clock, behind, would
    say 1 h: it is stale."""
    rc, lines, _ = run(FakeAPI([pod("a", debug={"d": running(9 * HOUR)}, added=9 * HOUR + 5)]),
                       wall=NOW - 8 * HOUR)
    assert (rc, [ln["action"] for ln in lines]) == (0, ["evicted"])


def test_no_date_header_is_an_error_not_a_guess():
    with pytest.raises(ServerError, match="no usable Date header"):
        run(FakeAPI([stale("a")], date=None))


def test_a_failed_leftover_does_not_block_its_workload():
    failed = pod("left", phase="Failed", ready=False)
    rc, lines, _ = run(FakeAPI([stale("a"), failed]))
    assert (rc, [(ln["pod"], ln["action"]) for ln in lines]) == (0, [("a", "evicted")])


def test_an_unreadable_sibling_spares_its_workload():
    sibling = pod("b")
    del sibling["metadata"]["uid"]
    rc, lines, warnings = run(FakeAPI([stale("a"), sibling]))
    assert rc == 0
    assert [(ln["pod"], ln["action"]) for ln in lines] == [("a", "skipped:workload-not-ready")]
    assert warnings == ["1 pod(s) in the list could not be read and were skipped; their "
                        "workloads count as not Ready"]


def test_nothing_to_do_is_said_on_stderr():
    """`janitor --dry-run` with nothing to do printed nothing at all (issue 25)."""
    from cred_helper.janitor.selectors import parse_selector

    rc, lines, warnings = run(FakeAPI([pod("b"), pod("c")]), dry_run=True)
    assert (rc, lines) == (0, [])
    assert warnings == ["nothing to do: none of the 2 pod(s) in scope has a debug container"]
    rc, lines, warnings = run(FakeAPI([stale("a"), pod("b")]), namespaces=("shop",),
                              exclude_selector=parse_selector("app=web"))
    assert (rc, lines) == (0, [])
    assert warnings == ["nothing to do: none of the 2 pod(s) in shop has a debug container "
                        "outside --exclude-selector (1 left by it)"]


def test_a_pod_in_another_namespace_cannot_speak_for_a_workload():
    """An owner reference names its owner within the pod's own namespace, and kube-apiserver
    takes any uid in one. A not-Ready pod that mallory creates in her own namespace, naming
    the uid of shop's ReplicaSet as its controller, spared shop's due pod
    (workload-not-ready); a due pod of hers so named used up shop's workload for the run."""
    intruder = pod("intruder", namespace="mallory", ready=False, owners=[owner(uid="rs-1")])
    rc, lines, _ = run(FakeAPI([intruder, stale("a")]))
    assert (rc, [(ln["pod"], ln["action"]) for ln in lines]) == (0, [("a", "evicted")])
    decoy = stale("decoy")
    decoy["metadata"]["namespace"] = "mallory"
    api = FakeAPI([decoy, stale("a")], answers=[error(429, causes=["DisruptionBudget"]), 201])
    plain_list = api.list

    def with_her_budget(path: str, params: dict) -> dict:
        doc = plain_list(path, params)
        if "poddisruptionbudgets" in path:
            doc["items"] = [*doc["items"], {**PDB, "metadata": {"namespace": "mallory",
                                                                "name": "hers"}}]
        return doc

    api.list = with_her_budget
    rc, lines, _ = run(api)
    assert [(ln["namespace"], ln["pod"], ln["action"]) for ln in lines] == [
        ("mallory", "decoy", "pdb-blocked"), ("shop", "a", "evicted")]


def test_a_namespace_being_deleted_is_no_api_failure():
    """kube-apiserver takes no new object in a namespace being deleted: an eviction and an
    Event there are refused with 403 and the cause NamespaceTerminating (shown on 1.37). A
    namespace stuck Terminating (a pod on a node that went away, a finalizer nobody removes)
    with a pod carrying a debug container failed every pass with exit 1; the pod goes with its
    namespace, so that is said, and the pass completes."""
    terminating = error(403, "Forbidden", ["NamespaceTerminating"])
    leaving = pod("leaving", deleting=True, debug={"d": exited(HOUR)}, owners=[owner(uid="rs-2")])
    api = FakeAPI([stale("a"), leaving], answers=[terminating])
    api.post = lambda path, body: (_ for _ in ()).throw(terminating)
    rc, lines, warnings = run(api)
    assert [(ln["pod"], ln["action"], ln["status"]) for ln in lines] == [
        ("a", "namespace-terminating", 403), ("leaving", "skipped:terminating", None)]
    assert (rc, warnings) == (0, [])
    # Any other refusal of an Event still fails the pass (test above), and so does a 403 with
    # no such cause on the eviction (test_429_causes_and_other_refusals).
