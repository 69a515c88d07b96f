"""Reading pods (pure): debug container verdicts, owners, readiness, and hostile objects."""

from __future__ import annotations

import pytest

from cred_helper.janitor.pods import FRESH, NO_TIME, STALE, pod_verdict, read_pod
from cred_helper.janitor.times import parse_time

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
    """The entry with the bad time may be the latest addition: no lower bound then."""
    obj = pod(debug={"a": None, "b": None}, added=9 * HOUR)
    obj["metadata"]["managedFields"].append(
        {"manager": "kubectl-debug", "operation": "Update",
         "subresource": "ephemeralcontainers", "time": "garbage-but-20-chars!"})
    assert verdict(obj) == (NO_TIME, "a")


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
    assert facts.workload == "rs-1"
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
