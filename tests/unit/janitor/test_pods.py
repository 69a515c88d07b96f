"""Reading pods (pure): debug container verdicts, owners, readiness, and hostile objects."""

from __future__ import annotations

import pytest

from cred_helper.janitor.pods import (
    FRESH,
    MAX_CONTAINERS,
    MAX_FIELDS,
    NO_TIME,
    STALE,
    pod_verdict,
    read_pod,
    workload_of,
)
from cred_helper.janitor.times import http_date, parse_time

from .pods_fixture import HOUR, NOW, exited, owner, pod, running, stamp

AFTER_EXIT, MAX_AGE = 15 * 60, 8 * HOUR


def verdict(obj: dict) -> tuple[str, str]:
    facts = read_pod(obj, NOW, AFTER_EXIT, MAX_AGE)
    assert facts is not None
    v, debug = pod_verdict(facts.debug)
    return v, debug.name


@pytest.mark.parametrize(("state", "expected"), [
    (exited(16 * 60), STALE),  # exited more than --after-exit ago
    (exited(14 * 60), FRESH),
    (running(9 * HOUR), STALE),  # open longer than --max-age: cut off
    (running(7 * HOUR), FRESH),
])
def test_one_container(state, expected):
    assert verdict(pod(debug={"dbg": state})) == (expected, "dbg")


def test_one_fresh_container_spares_the_pod():
    obj = pod(debug={"old": exited(5 * HOUR), "new": exited(60)})
    assert verdict(obj) == (FRESH, "new")


def test_the_stale_pod_names_the_container_that_went_stale_last():
    obj = pod(debug={"a": exited(5 * HOUR), "b": exited(HOUR), "c": running(9 * HOUR)})
    assert verdict(obj) == (STALE, "b")


def test_waiting_container_uses_managed_fields_as_a_lower_bound():
    waiting = {"waiting": {"reason": "ContainerCreating"}}
    assert verdict(pod(debug={"d": waiting}, added=9 * HOUR)) == (STALE, "d")
    assert verdict(pod(debug={"d": waiting}, added=HOUR)) == (FRESH, "d")
    assert verdict(pod(debug={"d": waiting})) == (NO_TIME, "d")


def test_container_without_status_uses_managed_fields_or_has_no_time():
    assert verdict(pod(debug={"d": None}, added=9 * HOUR)) == (STALE, "d")
    assert verdict(pod(debug={"d": None})) == (NO_TIME, "d")


def test_managed_fields_of_other_subresources_do_not_count():
    obj = pod(debug={"d": None}, added=9 * HOUR)
    obj["metadata"]["managedFields"][0]["subresource"] = "status"
    assert verdict(obj) == (NO_TIME, "d")


@pytest.mark.parametrize("bad", [
    None, "", "yesterday", "2026-13-45T00:00:00Z", "1970-01-01T00:00:00Z",
    stamp(-2 * HOUR),  # in the future
    "2026-01-01T00:00:00",  # no zone
    12345, ["2026-01-01T00:00:00Z"], "2026-01-01", "9" * 10_000,
])
def test_absurd_times_are_no_time(bad):
    assert parse_time(bad, NOW) is None
    obj = pod(debug={"d": {"terminated": {"finishedAt": bad, "startedAt": bad}}})
    assert verdict(obj) == (NO_TIME, "d")
    obj = pod(debug={"d": {"running": {"startedAt": bad}}})
    assert verdict(obj) == (NO_TIME, "d")


def test_a_running_container_with_an_absurd_start_is_no_time_whatever_managed_fields_say():
    """A running container has its own start: one that does not parse is not replaced by
    another time (that would be a guess)."""
    obj = pod(debug={"d": {"running": {"startedAt": "garbage"}}}, added=9 * HOUR)
    assert verdict(obj) == (NO_TIME, "d")


def test_one_managed_fields_entry_without_a_sane_time_makes_the_bound_unknown():
    """The entry with the bad time may be the latest addition: no bound then, and no check of
    a start against it either, so the pod has no time, whatever its containers say."""
    for states in ({"a": None, "b": None}, {"a": exited(HOUR), "b": running(9 * HOUR)}):
        obj = pod(debug=states, added=9 * HOUR + 60)
        obj["metadata"]["managedFields"].append(
            {"manager": "kubectl-debug", "operation": "Update",
             "subresource": "ephemeralcontainers", "time": "garbage-but-20-chars!"})
        assert verdict(obj) == (NO_TIME, "b")


def test_a_container_that_finished_before_it_started_has_no_time():
    backwards = {"terminated": {"startedAt": stamp(HOUR), "finishedAt": stamp(2 * HOUR)}}
    obj = pod(debug={"d": backwards})
    assert verdict(obj) == (NO_TIME, "d")


def test_statuses_naming_no_container_are_ignored():
    obj = pod(debug={"d": None}, statuses={"ghost": exited(10 * HOUR), "d2": exited(HOUR)})
    assert verdict(obj) == (NO_TIME, "d")


def test_no_debug_containers():
    facts = read_pod(pod(debug={}), NOW, AFTER_EXIT, MAX_AGE)
    assert facts is not None and facts.debug == ()


@pytest.mark.parametrize("mutate", [
    lambda o: o.update(spec="x"),
    lambda o: o["spec"].update(ephemeralContainers={"a": 1}),
    lambda o: o["spec"].update(ephemeralContainers=[1, None, {"name": 7}, {"image": "x"}]),
    lambda o: o["status"].update(ephemeralContainerStatuses=[{"name": "d", "state": "x"}]),
    lambda o: o["status"].update(ephemeralContainerStatuses="x"),
    lambda o: o["status"].update(conditions=[None, "Ready"]),
    lambda o: o.update(status=None),
    lambda o: o["metadata"].update(managedFields=[None, {"subresource":
                                                         "ephemeralcontainers"}]),
    lambda o: o["metadata"].update(labels=["a"]),
])
def test_hostile_shapes_never_crash_and_never_make_a_pod_due(mutate):
    obj = pod(debug={"d": None})
    mutate(obj)
    facts = read_pod(obj, NOW, AFTER_EXIT, MAX_AGE)
    assert facts is not None
    assert all(d.verdict != STALE for d in facts.debug)


@pytest.mark.parametrize("obj", [
    None, [], {"metadata": None}, {"metadata": {"name": "a", "namespace": "b"}},
    {"metadata": {"name": "", "namespace": "b", "uid": "u"}},
    {"metadata": {"name": 1, "namespace": "b", "uid": "u"}},
])
def test_pods_without_identity_are_unreadable(obj):
    assert read_pod(obj, NOW, AFTER_EXIT, MAX_AGE) is None


def test_owner_and_readiness():
    facts = read_pod(pod(ready=False, deleting=True), NOW, AFTER_EXIT, MAX_AGE)
    assert facts.owner.kind == "ReplicaSet" and facts.owner.group == "apps"
    assert facts.workload == "shop/rs-1"  # the owner is in the pod's own namespace
    assert not facts.ready and facts.terminating
    bare = read_pod(pod(owners=[]), NOW, AFTER_EXIT, MAX_AGE)
    assert bare.owner is None and bare.owners == 0 and bare.workload == "pod:uid-web-1"


@pytest.mark.parametrize(("owners", "problem"), [
    ([owner(), owner(uid="rs-2")], "more than one controller owner"),
    ([owner() | {"uid": None}], "the controller owner reference is malformed"),
    ("x", "ownerReferences is not a list"),
    ([None], "an owner reference is not an object"),
])
def test_malformed_owners(owners, problem):
    facts = read_pod(pod(owners=owners), NOW, AFTER_EXIT, MAX_AGE)
    assert facts.owner is None and facts.owner_problem == problem


def test_only_non_controller_owners():
    facts = read_pod(pod(owners=[owner(controller=False)]), NOW, AFTER_EXIT, MAX_AGE)
    assert facts.owner is None and facts.owners == 1 and facts.owner_problem == ""


# ---- caps (issue 23): a list beyond a cap is no time, never fewer containers -------------

def test_past_the_cap_a_fresh_container_is_never_left_out():
    """kube-apiserver 1.37 accepts a pod with 1,001 debug containers: the 1,001st, running for
    a minute, is past the cap, and the pod is no time, not judged on the first 1,000."""
    states = {f"d{i}": exited(5 * HOUR) for i in range(MAX_CONTAINERS)}
    states["last"] = running(60)
    v, debug = pod_verdict(read_pod(pod(debug=states), NOW, AFTER_EXIT, MAX_AGE).debug)
    assert (v, debug.name) == (NO_TIME, "last")
    assert "more than 1000 debug containers" in debug.note
    del states["last"]
    assert verdict(pod(debug=states))[0] == STALE  # at the cap, every one is read


def test_past_the_cap_of_statuses_the_pod_has_no_time():
    obj = pod(debug={"d": exited(5 * HOUR)},
              statuses={f"s{i}": exited(5 * HOUR) for i in range(MAX_CONTAINERS)}
              | {"d": exited(5 * HOUR)})
    assert verdict(obj)[0] == NO_TIME


def test_past_the_cap_of_owner_references_the_owner_is_malformed():
    facts = read_pod(pod(owners=[owner(controller=False)] * MAX_CONTAINERS + [owner()]), NOW,
                     AFTER_EXIT, MAX_AGE)
    assert facts.owner is None and facts.owner_problem == "more than 1000 owner references"


def test_past_the_cap_of_managed_fields_the_pod_has_no_time():
    obj = pod(debug={"d": exited(5 * HOUR)}, added=6 * HOUR)
    obj["metadata"]["managedFields"] *= MAX_FIELDS + 1
    assert verdict(obj)[0] == NO_TIME


def test_a_debug_container_that_cannot_be_read_makes_the_pod_no_time():
    obj = pod(debug={"d": exited(5 * HOUR)})
    obj["spec"]["ephemeralContainers"].append({"image": "no-name"})
    assert verdict(obj)[0] == NO_TIME


# ---- clocks (issue 23): a start the API server's times contradict is no time -----------------

def test_a_node_clock_hours_behind_is_caught_by_the_pods_creation():
    """Created 2 h ago, the container added 60 s ago (both by the API server's clock), its
    start read 9 h ago from a node 9 h behind: evicted before, no time now."""
    obj = pod(debug={"d": running(9 * HOUR)}, created=2 * HOUR, added=60)
    v, debug = pod_verdict(read_pod(obj, NOW, AFTER_EXIT, MAX_AGE).debug)
    assert v == NO_TIME and "before the pod was created" in debug.note


def test_a_node_clock_minutes_behind_is_caught_by_the_add_time():
    """A node 20 minutes behind: the container exited 30 s ago, which its clock writes as 20.5
    minutes ago, past --after-exit. It was added 90 s ago: it cannot have started 21 minutes
    ago."""
    behind = 20 * 60
    state = {"terminated": {"startedAt": stamp(60 + behind), "finishedAt": stamp(30 + behind)}}
    obj = pod(debug={"d": state}, added=90)
    v, debug = pod_verdict(read_pod(obj, NOW, AFTER_EXIT, MAX_AGE).debug)
    assert v == NO_TIME and "before it was added" in debug.note
    # The same pod with a node whose clock is right: fresh.
    state = {"terminated": {"startedAt": stamp(60), "finishedAt": stamp(30)}}
    assert verdict(pod(debug={"d": state}, added=90))[0] == FRESH


def test_ordinary_drift_is_allowed():
    """A node 30 s behind: a start 20 s before the add is drift, not a wrong clock."""
    state = {"terminated": {"startedAt": stamp(16 * 60 + 30), "finishedAt": stamp(16 * 60)}}
    assert verdict(pod(debug={"d": state}, added=16 * 60 + 10))[0] == STALE


def test_only_the_last_debug_container_is_held_to_the_last_add_time():
    """managedFields says when the last container was added; the earlier ones were added
    before that, so their older starts are no contradiction."""
    obj = pod(debug={"old": exited(5 * HOUR), "new": running(50)}, added=60)
    assert verdict(obj) == (FRESH, "new")
    obj = pod(debug={"old": exited(5 * HOUR), "new": exited(HOUR)}, added=HOUR + 120)
    assert verdict(obj) == (STALE, "new")


def test_a_start_before_the_add_makes_the_whole_pod_no_time():
    """Every debug container of a pod runs on one node: with the last one's clock caught out,
    the pod is no time even where another container would look stale."""
    obj = pod(debug={"old": exited(5 * HOUR), "new": running(10 * 60)}, added=60)
    assert verdict(obj)[0] == NO_TIME


# ---- what else a pass needs from a pod ------------------------------------------------------

def test_a_pod_without_a_resource_version_cannot_be_evicted_safely():
    obj = pod(debug={"d": exited(5 * HOUR)})
    del obj["metadata"]["resourceVersion"]
    assert read_pod(obj, NOW, AFTER_EXIT, MAX_AGE) is None
    assert workload_of(obj) == "shop/rs-1"  # its workload can still be told
    assert workload_of({"metadata": {"ownerReferences": "x", "namespace": "shop"}}) is None
    assert workload_of({"metadata": {"ownerReferences": obj["metadata"]["ownerReferences"]}}) \
        is None  # no namespace: no workload to name
    assert workload_of(None) is None


@pytest.mark.parametrize(("phase", "terminal"), [("Running", False), ("Pending", False),
                                                  ("Failed", True), ("Succeeded", True)])
def test_finished_pods(phase, terminal):
    assert read_pod(pod(phase=phase), NOW, AFTER_EXIT, MAX_AGE).terminal is terminal


@pytest.mark.parametrize(("header", "seconds"), [
    ("Mon, 07 Dec 2026 04:40:00 GMT", 1796618400.0),
    ("Mon, 07 Dec 2026 04:40:00 -0000", None),  # no zone said
    ("", None), (None, None), ("yesterday", None), ("Thu, 01 Jan 1970 00:00:00 GMT", None),
    ("x" * 100, None), (12, None),
])
def test_the_servers_date_header(header, seconds):
    assert http_date(header) == seconds
