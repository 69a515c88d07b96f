"""The janitor's decisions (pure): each protection by name, limits, and what an Eviction API
answer means."""

from __future__ import annotations

import pytest

from cred_helper.janitor.decide import (
    NOT_READY,
    TERMINATING,
    Answer,
    Limits,
    Options,
    exclusions,
    note_unreadable,
    note_workload,
    outcome,
    plan,
)
from cred_helper.janitor.pods import read_pod
from cred_helper.janitor.selectors import parse_selector

from .pods_fixture import HOUR, NOW, exited, owner, pod, running

OPTIONS = Options()


def facts(**kw):
    kw.setdefault("debug", {"d": exited(HOUR)})
    return read_pod(pod(**kw), NOW, OPTIONS.after_exit, OPTIONS.max_age)


def action(p, workloads=None, pdbs=1, options=OPTIONS, limits=None) -> str | None:
    decision = plan(p, workloads or {}, pdbs, options, limits or Limits())
    return None if decision is None else decision.action


def test_a_due_pod_under_one_budget_is_evicted():
    assert action(facts()) is None


@pytest.mark.parametrize(("kw", "expected"), [
    ({"deleting": True}, "skipped:terminating"),
    ({"debug": {"d": exited(60)}}, "skipped:fresh"),
    ({"debug": {"d": running(HOUR)}}, "skipped:fresh"),
    ({"debug": {"d": None}}, "skipped:no-start-time"),
    ({"debug": {"old": exited(HOUR), "new": running(60)}}, "skipped:fresh"),
    ({"owners": []}, "skipped:bare-pod"),
    ({"owners": [owner(controller=False)]}, "skipped:no-controller"),
    ({"owners": [owner("Job", api_version="batch/v1")]}, "skipped:owner-kind"),
    ({"owners": [owner("DaemonSet")]}, "skipped:owner-kind"),
    ({"owners": [owner("ReplicaSet", api_version="example.com/v1")]}, "skipped:custom-owner"),
    ({"owners": [owner("Rollout", api_version="argoproj.io/v1alpha1")]},
     "skipped:custom-owner"),
    ({"owners": [owner("ReplicaSet", api_version="apps/v1/x")]}, "skipped:custom-owner"),
    ({"owners": [owner(), owner(uid="b")]}, "skipped:owner-malformed"),
])
def test_protections(kw, expected):
    assert action(facts(**kw)) == expected


def test_opt_ins():
    assert action(facts(owners=[]), options=Options(bare_pods=True)) is None
    daemon = facts(owners=[owner("DaemonSet")])
    assert action(daemon, options=Options(owner_kinds=frozenset({"DaemonSet"}))) is None
    assert action(facts(owners=[owner("StatefulSet")])) is None


def test_budgets():
    assert action(facts(), pdbs=0) == "no-pdb"
    assert action(facts(), pdbs=0, options=Options(without_pdb=True)) is None
    # Two budgets: the Eviction API refuses the pod whatever --without-pdb says.
    assert action(facts(), pdbs=2, options=Options(without_pdb=True)) == "no-pdb"


def test_workload_facts_spare_every_pod_of_the_workload():
    assert action(facts(), {"shop/rs-1": TERMINATING}) == "skipped:workload-terminating"
    assert action(facts(), {"shop/rs-1": NOT_READY}) == "skipped:workload-not-ready"
    assert action(facts(), {"shop/rs-2": NOT_READY}) is None


def test_note_workload_collects_siblings():
    workloads: dict[str, int] = {}
    note_workload(workloads, facts(name="a", debug={}))
    assert workloads == {"shop/rs-1": 0}
    note_workload(workloads, facts(name="b", debug={}, ready=False))
    note_workload(workloads, facts(name="c", debug={}))
    assert workloads == {"shop/rs-1": NOT_READY}
    note_workload(workloads, facts(name="d", debug={}, deleting=True))
    assert workloads["shop/rs-1"] == NOT_READY | TERMINATING


@pytest.mark.parametrize("phase", ["Failed", "Succeeded"])
def test_a_finished_sibling_is_no_replica_that_is_short(phase):
    """A ReplicaSet leaves a Failed pod (evicted, its node shut down) and makes another: the
    leftover is not Ready, and must not spare the workload's due pods for ever."""
    workloads: dict[str, int] = {}
    note_workload(workloads, facts(name="left", debug={}, ready=False, phase=phase))
    note_workload(workloads, facts(name="left2", debug={}, ready=False, phase=phase,
                                   deleting=True))
    assert workloads == {"shop/rs-1": 0}
    assert action(facts(), workloads) is None
    note_workload(workloads, facts(name="short", debug={}, ready=False, phase="Pending"))
    assert action(facts(), workloads) == "skipped:workload-not-ready"


def test_an_unreadable_sibling_counts_as_not_ready():
    workloads: dict[str, int] = {}
    note_unreadable(workloads, "shop/rs-1")
    note_unreadable(workloads, None)  # its controller cannot be told: nothing to mark
    assert workloads == {"shop/rs-1": NOT_READY}
    assert action(facts(), workloads) == "skipped:workload-not-ready"


def test_a_skip_for_no_time_says_why():
    p = facts(debug={"d": running(9 * HOUR)}, created=2 * HOUR)
    decision = plan(p, {}, 1, OPTIONS, Limits())
    assert decision.action == "skipped:no-start-time"
    assert decision.reason.startswith("debug container d has no usable time: it started "
                                      "before the pod was created")


def test_one_eviction_per_workload_and_the_global_limit():
    limits = Limits()
    a, b = facts(name="a"), facts(name="b")
    c = facts(name="c", owners=[owner(uid="rs-2")])
    assert action(a, limits=limits) is None
    limits.record(a, "evicted")
    assert action(b, limits=limits) == "skipped:workload-limit"
    assert action(c, limits=limits, options=Options(max_evictions=1)) == \
        "skipped:max-evictions"
    assert action(c, limits=limits, options=Options(max_evictions=2)) is None
    assert action(a, options=Options(max_evictions=0)) == "skipped:max-evictions"


@pytest.mark.parametrize(("done", "next_allowed", "count"), [
    ("evicted", False, 1), ("would-evict", False, 1), ("unknown", False, 1),
    ("pdb-blocked", False, 0), ("throttled", False, 0),
    # The workload changed since the list: its new pod is likely not Ready yet.
    ("gone", False, 0), ("replaced", False, 0), ("changed", False, 0),
    ("skipped:api-error", True, 0),  # refused outright: nothing happened to it
])
def test_what_uses_up_a_workload(done, next_allowed, count):
    limits = Limits()
    limits.record(facts(name="a"), done)
    assert (action(facts(name="b"), limits=limits) is None) == next_allowed
    assert limits.evictions == count


@pytest.mark.parametrize(("answer", "dry_run", "expected"), [
    (Answer(201), False, "evicted"),
    (Answer(200), False, "evicted"),
    (Answer(201), True, "would-evict"),
    (Answer(429, "TooManyRequests", ("DisruptionBudget",)), False, "pdb-blocked"),
    (Answer(429, "TooManyRequests", ("DisruptionBudget",)), True, "pdb-blocked"),
    (Answer(429, "TooManyRequests"), False, "throttled"),
    (Answer(404, "NotFound"), False, "gone"),
    # kube-apiserver 1.37's two precondition messages (eviction.go; the dry run's delete says
    # "Precondition failed: UID in precondition: ...").
    (Answer(409, "Conflict", message='Operation cannot be fulfilled on Pod "a": the UID in the '
            "precondition (u1) does not match the UID in record (u2). The object might have "
            "been deleted and then recreated"), False, "replaced"),
    (Answer(409, "Conflict", message="Precondition failed: UID in precondition: u1, UID in "
            "object meta: u2"), True, "replaced"),
    (Answer(409, "Conflict", message='Operation cannot be fulfilled on Pod "a": the '
            "ResourceVersion in the precondition (7) does not match the ResourceVersion in "
            "record (8). The object might have been modified"), False, "changed"),
    (Answer(409, "Conflict"), False, "changed"),
    (Answer(None), False, "unknown"),
    (Answer(403, "Forbidden"), False, "skipped:api-error"),
    (Answer(403, "Forbidden", ("NamespaceTerminating",)), False, "namespace-terminating"),
    (Answer(403, "Forbidden", ("NamespaceTerminating",)), True, "namespace-terminating"),
    (Answer(422, "Invalid"), False, "skipped:api-error"),
    (Answer(202), False, "evicted"),
    # It may have gone through: kube-apiserver's 504 timeout, an etcd timeout, a proxy's 502.
    (Answer(500), False, "unknown"),
    (Answer(504, "Timeout"), False, "unknown"),
    (Answer(502), False, "unknown"),
    (Answer(302), False, "unknown"),
])
def test_outcomes(answer, dry_run, expected):
    assert outcome(answer, dry_run) == expected


def test_scope():
    options = Options(namespaces=("a", "kube-system"),
                      exclude_namespaces=exclusions(("a", "kube-system"), ("b",)))
    assert options.in_scope("a") and options.in_scope("kube-system")
    assert not options.in_scope("c")
    default = Options(exclude_namespaces=exclusions((), ("b",)))
    assert default.in_scope("c") and not default.in_scope("kube-system")
    assert not default.in_scope("b")
    selected = Options(exclude_selector=parse_selector("app=web"))
    assert not selected.selected(facts())
    assert selected.selected(facts(labels={"app": "db"}))


def test_the_line_carries_every_field():
    decision = plan(facts(), {}, 0, OPTIONS, Limits())
    line = decision.line()
    assert set(line) == {"namespace", "pod", "uid", "owner", "container", "image", "started",
                         "terminated", "reason", "status", "action"}
    assert line["action"] == "no-pdb" and line["container"] == "d" and line["image"] == "img-d"
    assert line["terminated"].endswith("Z") and line["owner"]["uid"] == "rs-1"
