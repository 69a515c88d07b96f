"""The janitor against the real kube-apiserver: it validates ephemeral containers, runs the
Eviction API and its PDB checks itself; kube-controller-manager's `disruption` controller
computes each PodDisruptionBudget's status (a control plane of this module's own, with that
controller added).

There is no kubelet or scheduler: the tests create pods owned by real ReplicaSet, StatefulSet
and Job objects (no controller acts on them), add a debug container through the
`pods/ephemeralcontainers` subresource, and write the pod's status (Running, Ready, the debug
container's running or terminated times) through `pods/status` as the admin. Pods have no
`spec.nodeName`, so an evicted pod is deleted at once (an unscheduled pod has no grace).

Time: a pod cannot be created in the past, and the janitor believes no debug container that
started before its pod was created or before it was added. So the janitor reaches the server
through a proxy whose Date header runs SHIFT (10 h) ahead (tests/support/clockproxy.py): it
judges ages by that clock, and a container that "exited an hour ago" is written as exiting 9 h
from now, after its pod was created and the container added, as on a real node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from cred_helper.errors import ServerError
from cred_helper.janitor.decide import Options
from cred_helper.janitor.run import Janitor
from cred_helper.kube import BearerAuth, Endpoint, KubeClient
from tests.support.clockproxy import ClockProxy
from tests.support.controlplane import ControlPlane

pytestmark = pytest.mark.realcluster

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600
SHIFT = 10 * HOUR  # how far ahead the janitor's view of the server's clock runs


@pytest.fixture(scope="module")
def plane(control_plane_bin):
    with ControlPlane(control_plane_bin, extra_controllers=("disruption",)) as p:
        yield p


@pytest.fixture(scope="module")
def proxy(plane):
    with ClockProxy(plane.url, plane.ca, SHIFT) as p:
        yield p


def admin(plane, url: str = "") -> KubeClient:
    return KubeClient(Endpoint(url or plane.url, ca_pem=plane.ca.cert_pem),
                      BearerAuth(plane.admin_token, source="admin"))


def stamp(seconds_ago: float) -> str:
    """The time `seconds_ago` before the janitor's now (the proxy's clock)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ",
                         time.gmtime(time.time() + SHIFT - seconds_ago))


def real_stamp(seconds_ago: float) -> str:
    """By the real clock, as a node whose clock is wrong would write it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))


class Cluster:
    """Objects in one namespace of its own, written as the admin; the janitor runs behind
    the clock proxy."""

    def __init__(self, plane, tmp: Path, proxy: ClockProxy) -> None:
        self.plane = plane
        self.proxy = proxy
        self.api = admin(plane)
        self.ns = f"jan-{uuid.uuid4().hex[:8]}"
        self.api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": self.ns}})
        # No serviceaccount controller: pods need the default ServiceAccount made by hand.
        self.api.post(f"/api/v1/namespaces/{self.ns}/serviceaccounts", {
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})
        direct = plane.write_kubeconfig(tmp / "direct.kubeconfig", {"token": plane.admin_token})
        self.kubeconfig = proxy.kubeconfig(direct, tmp / "janitor.kubeconfig")

    def _template(self, app: str, restart: str = "Always") -> dict:
        return {"metadata": {"labels": {"app": app}},
                "spec": {"restartPolicy": restart,
                         "containers": [{"name": "app", "image": "busybox"}]}}

    def replicaset(self, app: str, replicas: int) -> dict:
        return self.api.post(f"/apis/apps/v1/namespaces/{self.ns}/replicasets", {
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": app},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "template": self._template(app)}})

    def statefulset(self, app: str, replicas: int) -> dict:
        return self.api.post(f"/apis/apps/v1/namespaces/{self.ns}/statefulsets", {
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": app},
            "spec": {"replicas": replicas, "serviceName": app,
                     "selector": {"matchLabels": {"app": app}},
                     "template": self._template(app)}})

    def job(self, app: str) -> dict:
        return self.api.post(f"/apis/batch/v1/namespaces/{self.ns}/jobs", {
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": app},
            "spec": {"template": self._template(app, "Never")}})

    def pod(self, name: str, app: str, owner: dict | None = None, node: str = "",
            annotations: dict | None = None, env: list | None = None) -> dict:
        meta: dict = {"name": name, "labels": {"app": app}, "annotations": annotations or {}}
        if owner:
            meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"],
                                        "kind": owner["kind"],
                                        "name": owner["metadata"]["name"],
                                        "uid": owner["metadata"]["uid"], "controller": True}]
        # A pod of 1.4 MiB comes back as up to 8.2 MiB of JSON: read it with room.
        return self.api.request("POST", f"/api/v1/namespaces/{self.ns}/pods", body={
            "apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "app", "image": "busybox", "env": env or []}],
                     **({"nodeName": node} if node else {})}}, max_body=16 << 20).json()

    def debug(self, name: str, container: str = "debugger") -> None:
        """Attach a debug container, as `kubectl debug` does (the ephemeralcontainers
        subresource)."""
        path = f"/api/v1/namespaces/{self.ns}/pods/{name}"
        pod = self.api.get(path)
        pod["spec"].setdefault("ephemeralContainers", []).append(
            {"name": container, "image": "nicolaka/netshoot", "targetContainerName": "app",
             "stdin": True, "tty": True})
        self.api.put(f"{path}/ephemeralcontainers", pod)

    def status(self, name: str, ready: bool = True, debug: dict | None = None,
               phase: str = "Running") -> None:
        """Running (or `phase`), Ready or not, and the debug containers' states (by name), as
        a kubelet would write them."""
        path = f"/api/v1/namespaces/{self.ns}/pods/{name}"
        pod = self.api.get(path)
        pod["status"] = {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "app", "image": "busybox", "imageID": "",
                                   "ready": ready, "restartCount": 0,
                                   "state": {"running": {"startedAt": stamp(10 * HOUR)}}}],
            "ephemeralContainerStatuses": [
                {"name": n, "image": "nicolaka/netshoot", "imageID": "", "ready": False,
                 "restartCount": 0, "state": state} for n, state in (debug or {}).items()],
        }
        self.api.put(f"{path}/status", pod)

    def stale_pod(self, name: str, app: str, owner: dict | None, ready: bool = True) -> dict:
        """A pod whose debug container exited an hour ago."""
        self.pod(name, app, owner)
        self.debug(name)
        self.status(name, ready, {"debugger": exited(HOUR)})
        return self.get(name)

    def pair(self, app: str) -> tuple[dict, dict]:
        """A ReplicaSet of two Ready pods, `<app>-a` stale and `<app>-b` with no debug
        container, under a budget that allows one disruption: (the ReplicaSet, the stale pod)."""
        rs = self.replicaset(app, 2)
        pod = self.stale_pod(f"{app}-a", app, rs)
        self.pod(f"{app}-b", app, rs)
        self.status(f"{app}-b")
        self.pdb(app, 1, allowed=1)
        return rs, pod

    def pdb(self, app: str, min_available: int, allowed: int,
            selector: dict | None = None) -> None:
        """A PodDisruptionBudget (on the pods labelled app=<app>, or `selector`), once the
        disruption controller has computed it."""
        path = f"/apis/policy/v1/namespaces/{self.ns}/poddisruptionbudgets"
        self.api.post(path, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                             "metadata": {"name": app},
                             "spec": {"minAvailable": min_available, "selector":
                                      {"matchLabels": {"app": app}} if selector is None
                                      else selector}})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pdb = self.api.get(f"{path}/{app}")
            status = pdb.get("status") or {}
            if status.get("observedGeneration", 0) >= pdb["metadata"]["generation"] \
                    and status.get("disruptionsAllowed") == allowed:
                return
            time.sleep(0.2)
        raise AssertionError(f"PDB {app} not computed as {allowed}: {status}")

    def get(self, name: str) -> dict | None:
        try:
            return self.api.get(f"/api/v1/namespaces/{self.ns}/pods/{name}")
        except ServerError as error:
            if error.status == 404:
                return None
            raise

    def events(self, uid: str) -> list[dict]:
        items = self.api.get(f"/api/v1/namespaces/{self.ns}/events")["items"]
        return [e for e in items if e["involvedObject"].get("uid") == uid]

    def janitor(self, *args: str, everywhere: bool = False) -> tuple[int, list[dict], str]:
        scope = () if everywhere else ("--namespace", self.ns)
        done = subprocess.run(
            [sys.executable, "-m", "cred_helper", "janitor", "--kubeconfig",
             str(self.kubeconfig), *scope, *args],
            capture_output=True, text=True, timeout=120, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        return done.returncode, lines, done.stderr


    def decided(self, *args: str) -> dict[str, dict]:
        """One pass that must complete (exit 0): its lines by pod name."""
        rc, lines, err = self.janitor(*args)
        assert rc == 0, err
        return {line["pod"]: line for line in lines}


def exited(seconds_ago: float) -> dict:
    return {"terminated": {"exitCode": 0, "reason": "Completed",
                           "startedAt": stamp(seconds_ago + 600),
                           "finishedAt": stamp(seconds_ago)}}


@pytest.fixture
def cluster(plane, proxy, tmp_path) -> Cluster:
    return Cluster(plane, tmp_path, proxy)


def test_evicts_a_stale_pod_and_says_so_on_the_pod(cluster):
    rs, pod = cluster.pair("web")

    rc, lines, err = cluster.janitor()

    assert rc == 0, err
    assert len(lines) == 1, lines  # web-b has no debug container: no decision to report
    line = lines[0]
    assert line["action"] == "evicted" and line["status"] == 201
    assert line["uid"] == pod["metadata"]["uid"] and line["container"] == "debugger"
    assert line["image"] == "nicolaka/netshoot"
    assert line["owner"]["kind"] == "ReplicaSet" and line["owner"]["uid"] == rs["metadata"]["uid"]
    assert line["terminated"].endswith("Z") and line["started"] < line["terminated"]
    assert cluster.get("web-a") is None
    assert cluster.get("web-b") is not None
    events = cluster.events(pod["metadata"]["uid"])
    assert [e["reason"] for e in events] == ["DebugPodEvicted"]
    assert events[0]["involvedObject"]["kind"] == "Pod"
    assert events[0]["source"]["component"] == "cred-helper-janitor"


def test_a_budget_that_blocks_is_reported_and_announced_once(cluster):
    rs = cluster.replicaset("db", 1)
    pod = cluster.stale_pod("db-0", "db", rs)
    cluster.pdb("db", 1, allowed=0)

    first = cluster.janitor()
    second = cluster.janitor()

    for rc, lines, err in (first, second):
        assert rc == 0, err  # a block is a completed pass
        assert [(ln["action"], ln["status"]) for ln in lines] == [("pdb-blocked", 429)]
        assert lines[0]["reason"].endswith("would violate the pod's disruption budget.")
    assert cluster.get("db-0")["metadata"]["uid"] == pod["metadata"]["uid"]
    events = cluster.events(pod["metadata"]["uid"])
    assert [e["reason"] for e in events] == ["DebugPodEvictionBlocked"]
    assert events[0]["type"] == "Warning" and events[0]["count"] == 1


def test_dry_run_changes_nothing(cluster):
    _, pod = cluster.pair("api")

    rc, lines, err = cluster.janitor("--dry-run")

    assert rc == 0, err
    assert [(ln["action"], ln["status"]) for ln in lines] == [("would-evict", 201)]
    assert cluster.get("api-a")["metadata"]["uid"] == pod["metadata"]["uid"]
    assert cluster.events(pod["metadata"]["uid"]) == []
    budget = cluster.api.get(f"/apis/policy/v1/namespaces/{cluster.ns}/poddisruptionbudgets/api")
    assert budget["status"]["disruptionsAllowed"] == 1
    assert not budget["status"].get("disruptedPods")


def test_no_budget_is_left_and_job_pods_are_left(cluster):
    rs = cluster.replicaset("cache", 1)
    cluster.stale_pod("cache-0", "cache", rs)
    job = cluster.job("batch")
    cluster.stale_pod("batch-x", "batch", job)
    cluster.pdb("batch", 0, allowed=1)

    got = cluster.decided()

    assert got["cache-0"]["action"] == "no-pdb"
    assert got["batch-x"]["action"] == "skipped:owner-kind"
    assert got["batch-x"]["owner"]["kind"] == "Job"
    assert cluster.get("cache-0") is not None and cluster.get("batch-x") is not None


def test_an_empty_budget_selector_covers_the_namespace(cluster):
    """policy/v1's `{}` selects every pod: one pod under it alone is blocked by it; one also
    under a budget of its own has two, which the Eviction API refuses, so it is `no-pdb`."""
    solo, both = cluster.replicaset("solo", 1), cluster.replicaset("both", 1)
    cluster.stale_pod("solo-0", "solo", solo)
    cluster.stale_pod("both-0", "both", both)
    cluster.pdb("both", 0, allowed=1)
    cluster.pdb("everyone", 2, allowed=0, selector={})

    got = cluster.decided()

    assert (got["solo-0"]["action"], got["solo-0"]["status"]) == ("pdb-blocked", 429)
    assert got["both-0"]["action"] == "no-pdb"
    assert got["both-0"]["reason"].startswith("2 PodDisruptionBudgets cover it")


def test_bare_pods_only_with_bare_pods_evict(cluster):
    pod = cluster.stale_pod("lonely", "lonely", None)

    rc, lines, _ = cluster.janitor("--without-pdb", "evict")
    assert rc == 0
    assert [ln["action"] for ln in lines] == ["skipped:bare-pod"]
    assert cluster.get("lonely") is not None

    rc, lines, err = cluster.janitor("--without-pdb", "evict", "--bare-pods", "evict")
    assert rc == 0, err
    assert [ln["action"] for ln in lines] == ["evicted"]
    assert lines[0]["uid"] == pod["metadata"]["uid"] and lines[0]["owner"] is None
    assert cluster.get("lonely") is None


def test_one_pod_per_workload_per_run(cluster):
    rs = cluster.replicaset("queue", 3)
    for name in ("queue-a", "queue-b", "queue-c"):
        cluster.stale_pod(name, "queue", rs)
    cluster.pdb("queue", 1, allowed=2)

    rc, lines, err = cluster.janitor()

    assert rc == 0, err
    actions = sorted(ln["action"] for ln in lines)
    assert actions == ["evicted", "skipped:workload-limit", "skipped:workload-limit"]
    left = [n for n in ("queue-a", "queue-b", "queue-c") if cluster.get(n) is not None]
    assert len(left) == 2


def test_a_sibling_not_ready_spares_the_workload(cluster):
    rs = cluster.replicaset("pay", 2)
    pod = cluster.stale_pod("pay-a", "pay", rs)
    cluster.pod("pay-b", "pay", rs)
    cluster.status("pay-b", ready=False)
    cluster.pdb("pay", 0, allowed=1)

    rc, lines, err = cluster.janitor()

    assert rc == 0, err
    assert [ln["action"] for ln in lines] == ["skipped:workload-not-ready"]
    assert cluster.get("pay-a")["metadata"]["uid"] == pod["metadata"]["uid"]


def test_a_terminating_sibling_spares_the_workload(cluster):
    """A scheduled pod (spec.nodeName) stays Terminating after its delete: no kubelet confirms
    it. While it does, its workload is left alone."""
    rs = cluster.replicaset("mq", 2)
    pod = cluster.stale_pod("mq-a", "mq", rs)
    cluster.pod("mq-b", "mq", rs, node="node-1")
    cluster.status("mq-b")
    cluster.pdb("mq", 0, allowed=2)
    cluster.api.request("DELETE", f"/api/v1/namespaces/{cluster.ns}/pods/mq-b")
    assert cluster.get("mq-b")["metadata"].get("deletionTimestamp")

    got = cluster.decided()

    assert got["mq-a"]["action"] == "skipped:workload-terminating"
    assert cluster.get("mq-a")["metadata"]["uid"] == pod["metadata"]["uid"]


def test_fresh_and_running_debug_containers(cluster):
    rs = cluster.replicaset("svc", 3)
    for name, states in {
        "svc-fresh": {"debugger": exited(60)},  # exited a minute ago
        "svc-open": {"debugger": {"running": {"startedAt": stamp(HOUR)}}},
        "svc-mixed": {"debugger": exited(HOUR), "second": exited(60)},
    }.items():
        cluster.pod(name, "svc", rs)
        for container in states:
            cluster.debug(name, container)
        cluster.status(name, debug=states)
    cluster.pdb("svc", 0, allowed=3)

    got = cluster.decided()

    assert got["svc-fresh"]["action"] == "skipped:fresh"
    assert got["svc-open"]["action"] == "skipped:fresh"
    assert got["svc-mixed"]["action"] == "skipped:fresh"
    assert got["svc-mixed"]["container"] == "second"

    # Past --max-age the open session is cut off.
    assert cluster.decided("--max-age", "30m")["svc-open"]["action"] == "evicted"
    assert cluster.get("svc-open") is None


def test_waiting_container_uses_the_managed_fields_time(cluster):
    """A debug container with no status yet: its `ephemeralcontainers` managedFields entry
    (written by the server when it was added, SHIFT before the janitor's now) bounds its age
    from below: fresh under a --max-age longer than that, stale under a shorter one."""
    rs = cluster.replicaset("wait", 1)
    cluster.pod("wait-0", "wait", rs)
    cluster.debug("wait-0")
    cluster.status("wait-0", debug={"debugger": {"waiting": {"reason": "ContainerCreating"}}})
    cluster.pdb("wait", 0, allowed=1)

    rc, lines, err = cluster.janitor("--max-age", "11h")
    assert rc == 0, err
    assert [ln["action"] for ln in lines] == ["skipped:fresh"]
    assert lines[0]["started"] is None

    rc, lines, err = cluster.janitor("--max-age", "9h", "--dry-run")
    assert rc == 0, err
    assert [ln["action"] for ln in lines] == ["would-evict"]


class Racing(KubeClient):
    """The real server (behind the clock proxy), with something done to the pod just before
    its eviction is sent."""

    def __init__(self, plane, proxy: ClockProxy, before_evict) -> None:
        super().__init__(Endpoint(proxy.url, ca_pem=plane.ca.cert_pem),
                         BearerAuth(plane.admin_token, source="admin"))
        self.before_evict = before_evict

    def request(self, method, path, *args, **kw):
        if method == "POST" and path.endswith("/eviction") and self.before_evict:
            hook, self.before_evict = self.before_evict, None
            hook()
        return super().request(method, path, *args, **kw)


def run_in_process(plane, cluster, hook, **options) -> tuple[int, list[dict]]:
    lines: list[str] = []
    janitor = Janitor(Racing(plane, cluster.proxy, hook),
                      Options(namespaces=(cluster.ns,), **options),
                      out=lines.append, warn=lambda _: None, wall=time.time)
    rc = janitor.run()
    return rc, [json.loads(line) for line in lines]


def test_a_pod_recreated_under_the_same_name_is_not_hit(plane, cluster):
    rs = cluster.replicaset("cron", 1)
    old = cluster.stale_pod("cron-0", "cron", rs)

    def recreate() -> None:
        cluster.api.request("DELETE", f"/api/v1/namespaces/{cluster.ns}/pods/cron-0")
        cluster.pod("cron-0", "cron", rs)
        cluster.status("cron-0")

    rc, lines = run_in_process(plane, cluster, recreate, without_pdb=True)

    assert rc == 0
    assert [(ln["action"], ln["status"]) for ln in lines] == [("replaced", 409)]
    assert lines[0]["uid"] == old["metadata"]["uid"]
    new = cluster.get("cron-0")
    assert new is not None and new["metadata"]["uid"] != old["metadata"]["uid"]


def test_a_pod_deleted_between_list_and_evict_is_gone(plane, cluster):
    rs = cluster.replicaset("tmp", 1)
    cluster.stale_pod("tmp-0", "tmp", rs)

    def delete() -> None:
        cluster.api.request("DELETE", f"/api/v1/namespaces/{cluster.ns}/pods/tmp-0")

    rc, lines = run_in_process(plane, cluster, delete, without_pdb=True)

    assert rc == 0
    assert [(ln["action"], ln["status"]) for ln in lines] == [("gone", 404)]


def test_excluded_namespace_and_selector(cluster):
    rs = cluster.replicaset("skip", 1)
    cluster.stale_pod("skip-a", "skip", rs)
    cluster.pdb("skip", 0, allowed=1)
    cluster.api.request("PUT", f"/api/v1/namespaces/{cluster.ns}/pods/skip-a",
                        body=_labelled(cluster.get("skip-a"), {"debug-keep": "yes"}))

    rc, lines, err = cluster.janitor("--exclude-namespace", cluster.ns)
    assert rc == 0 and lines == [], err
    rc, lines, err = cluster.janitor("--exclude-selector", "debug-keep=yes")
    assert rc == 0 and lines == [], err
    assert cluster.get("skip-a") is not None


def _labelled(pod: dict, labels: dict) -> dict:
    pod["metadata"]["labels"] = {**pod["metadata"]["labels"], **labels}
    return pod


def test_owner_kinds(cluster):
    """A StatefulSet's pod is evicted by default; a DaemonSet's only when opted in; a custom
    resource's never (its owner references are written as such controllers write them; no
    garbage collector runs to check them)."""
    sts = cluster.statefulset("kv", 1)
    cluster.stale_pod("kv-0", "kv", sts)
    daemon = {"apiVersion": "apps/v1", "kind": "DaemonSet",
              "metadata": {"name": "agent", "uid": str(uuid.uuid4())}}
    cluster.stale_pod("agent-x", "agent", daemon)
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "ReplicaSet",
               "metadata": {"name": "canary", "uid": str(uuid.uuid4())}}
    cluster.stale_pod("canary-x", "canary", rollout)

    got = cluster.decided("--without-pdb", "evict")
    assert got["kv-0"]["action"] == "evicted" and got["kv-0"]["owner"]["kind"] == "StatefulSet"
    assert got["agent-x"]["action"] == "skipped:owner-kind"
    assert got["canary-x"]["action"] == "skipped:custom-owner"

    got = cluster.decided("--without-pdb", "evict", "--owner-kinds", "DaemonSet")
    assert got["agent-x"]["action"] == "evicted"
    assert got["canary-x"]["action"] == "skipped:custom-owner"
    assert cluster.get("agent-x") is None and cluster.get("canary-x") is not None


def test_an_unreachable_api_server_is_one_clean_error(cluster, tmp_path):
    dead = tmp_path / "dead.kubeconfig"
    port = cluster.proxy.url.rsplit(":", 1)[1]
    doc = cluster.kubeconfig.read_text().replace(f":{port}", ":1")
    dead.write_text(doc)
    done = subprocess.run([sys.executable, "-m", "cred_helper", "janitor", "--kubeconfig",
                           str(dead)], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("cred-helper: error: cannot reach the API server")
    assert "Traceback" not in done.stderr


# ---- issue 23: the janitor under attack ------------------------------------------------------

def test_a_debug_session_started_between_the_list_and_the_eviction_is_not_cut(plane, cluster):
    """`kubectl debug` on a due pod after the janitor listed it: the eviction carries the
    listed resourceVersion, the ephemeralcontainers update changed it, and kube-apiserver
    answers 409. Before, with the uid alone, the pod was evicted (201) seconds after the
    engineer attached."""
    _, pod = cluster.pair("live")

    def attach() -> None:
        plane.kubectl("debug", "live-a", "-n", cluster.ns, "--image=nicolaka/netshoot",
                      "--attach=false", "-c", "second")

    rc, lines = run_in_process(plane, cluster, attach)

    assert rc == 0
    assert [(ln["action"], ln["status"]) for ln in lines] == [("changed", 409)]
    assert "the ResourceVersion in the precondition" in lines[0]["reason"]
    now = cluster.get("live-a")
    assert now["metadata"]["uid"] == pod["metadata"]["uid"]
    assert [c["name"] for c in now["spec"]["ephemeralContainers"]] == ["debugger", "second"]
    assert [e["reason"] for e in cluster.events(pod["metadata"]["uid"])] == ["DebugPodChanged"]


def test_a_dry_run_with_nothing_to_do_says_so(cluster):
    """It printed nothing at all (issue 25). Behind the clock proxy, the clock line shows
    too: ages are the API server's."""
    cluster.pod("plain", "plain")

    rc, lines, err = cluster.janitor("--dry-run")

    assert (rc, lines) == (0, [])
    said = err.splitlines()
    assert said[0].startswith("cred-helper janitor: this machine's clock is ")
    assert said[0].endswith("s behind the API server's; ages are judged by the API server's")
    assert said[1:] == [f"cred-helper janitor: nothing to do: none of the 1 pod(s) in "
                        f"{cluster.ns} has a debug container"]


def test_a_second_janitor_at_the_same_moment_claims_nothing_twice(plane, cluster):
    """Two passes list the same due pod; one evicts it first. The pod is scheduled (a
    nodeName), so it stays Terminating with no kubelet to confirm, and an eviction of a
    terminating pod skips the budget: with the uid alone the second pass was answered 201 as
    well and claimed a second eviction. Its listed resourceVersion is gone now: 409."""
    rs = cluster.replicaset("twice", 2)
    cluster.pod("twice-a", "twice", rs, node="node-1")
    cluster.debug("twice-a")
    cluster.status("twice-a", debug={"debugger": exited(HOUR)})
    pod = cluster.get("twice-a")
    cluster.pod("twice-b", "twice", rs)
    cluster.status("twice-b")
    cluster.pdb("twice", 1, allowed=1)
    first: list = []

    def other_pass() -> None:
        first.append(cluster.janitor())

    rc, lines = run_in_process(plane, cluster, other_pass)

    [(other_rc, other_lines, err)] = first
    assert other_rc == 0, err
    assert [(ln["action"], ln["status"]) for ln in other_lines] == [("evicted", 201)]
    assert rc == 0
    assert [(ln["action"], ln["status"]) for ln in lines] == [("changed", 409)]
    left = cluster.get("twice-a")
    assert left["metadata"]["uid"] == pod["metadata"]["uid"]
    assert left["metadata"].get("deletionTimestamp")


def test_big_pods_anywhere_never_stop_a_pass(control_plane_bin, tmp_path):
    """Pods read 100 to a page, each answer capped at 4 MiB: seventeen pods with 250 KiB of
    annotations, three with 1.4 MiB of environment, even in an excluded namespace, failed every
    pass. And one pod of 1.4 MiB of `<` is 8.2 MiB of JSON alone (kube-apiserver writes
    `\u003c`). A cluster-wide pass now completes and evicts the due pod elsewhere. A plane of
    its own: the pass lists every namespace."""
    with ControlPlane(control_plane_bin) as plane, \
            ClockProxy(plane.url, plane.ca, SHIFT) as proxy:
        (tmp_path / "big").mkdir()
        (tmp_path / "due").mkdir()
        big, due = Cluster(plane, tmp_path / "big", proxy), Cluster(plane, tmp_path / "due", proxy)
        for i in range(17):
            big.pod(f"annotated-{i}", "big", annotations={"blob": "a" * (250 << 10)})
        for i in range(3):
            big.pod(f"env-{i}", "big", env=[{"name": "BLOB", "value": "e" * (1400 << 10)}])
        big.pod("escaped", "big", env=[{"name": "BLOB", "value": "<" * (1400 << 10)}])
        rs = due.replicaset("web", 1)
        pod = due.stale_pod("web-0", "web", rs)

        alone = big.api.request("GET", f"/api/v1/namespaces/{big.ns}/pods/escaped",
                                max_body=16 << 20)
        assert len(alone.content) > 8.2 * (1 << 20)

        rc, lines, err = due.janitor("--without-pdb", "evict", "--exclude-namespace", big.ns,
                                     everywhere=True)
        assert rc == 0, err
        assert [(ln["pod"], ln["action"]) for ln in lines] == [("web-0", "evicted")]
        assert due.get("web-0") is None and lines[0]["uid"] == pod["metadata"]["uid"]


def test_past_a_thousand_debug_containers_a_fresh_one_is_not_ignored(cluster):
    """kube-apiserver 1.37 accepts a pod with 1,001 debug containers. The 1,001st, running for
    a minute, was past the janitor's cap and dropped, and the pod was evicted."""
    rs = cluster.replicaset("many", 1)
    cluster.pod("many-0", "many", rs)
    path = f"/api/v1/namespaces/{cluster.ns}/pods/many-0"
    obj = cluster.api.get(path)
    obj["spec"]["ephemeralContainers"] = [
        {"name": f"d{i}", "image": "busybox", "targetContainerName": "app"} for i in range(1001)]
    cluster.api.put(f"{path}/ephemeralcontainers", obj)
    states = {f"d{i}": exited(HOUR) for i in range(1000)}
    states["d1000"] = {"running": {"startedAt": stamp(60)}}
    cluster.status("many-0", debug=states)
    cluster.pdb("many", 0, allowed=1)

    got = cluster.decided()

    assert got["many-0"]["action"] == "skipped:no-start-time"
    assert "more than 1000 debug containers" in got["many-0"]["reason"]
    assert cluster.get("many-0") is not None


def test_a_failed_leftover_does_not_block_its_workload(cluster):
    """A ReplicaSet's pod left in phase Failed (evicted, its node shut down) is not Ready.
    ReplicaSets keep such pods, so every due pod of the workload was skipped for ever as
    `workload-not-ready`."""
    rs, _ = cluster.pair("kept")
    cluster.pod("kept-c", "kept", rs)
    cluster.status("kept-c", ready=False, phase="Failed")

    got = cluster.decided()

    assert got["kept-a"]["action"] == "evicted"
    assert cluster.get("kept-a") is None and cluster.get("kept-c") is not None


def test_a_node_clock_behind_the_servers_is_caught(cluster):
    """A node 9 h behind writes its debug container's start 9 h before the pod was created
    (by the API server's clock): no time, where it looked past --max-age. The 20-minutes-behind
    case rests on the add time, which a test cannot put far enough after a pod's creation here:
    it is tested on the scripted API (tests/unit/janitor/test_run.py)."""
    rs = cluster.replicaset("skew", 1)
    cluster.pod("skew-0", "skew", rs)
    cluster.debug("skew-0")
    cluster.status("skew-0", debug={"debugger": {"running": {"startedAt": real_stamp(9 * HOUR)}}})
    cluster.pdb("skew", 0, allowed=1)

    got = cluster.decided("--max-age", "8h")

    assert got["skew-0"]["action"] == "skipped:no-start-time"
    assert "it started before the pod was created" in got["skew-0"]["reason"]


# ---- after issue 23: its review ----------------------------------------------------------------

def test_a_pod_in_another_namespace_cannot_speak_for_a_workload(plane, proxy, cluster,
                                                                 tmp_path):
    """kube-apiserver takes a pod whose controller reference names the uid of a ReplicaSet
    in another namespace (an owner reference means an owner in the pod's own namespace). A
    not-Ready pod so made by mallory in her namespace spared shop's due pod as
    `workload-not-ready`, in every pass that listed both."""
    rs, pod = cluster.pair("owned")
    (tmp_path / "mallory").mkdir()
    mallory = Cluster(plane, tmp_path / "mallory", proxy)
    mallory.pod("intruder", "intruder", rs)
    mallory.status("intruder", ready=False)
    assert mallory.get("intruder")["metadata"]["ownerReferences"][0]["uid"] == \
        rs["metadata"]["uid"]

    rc, lines, err = cluster.janitor("--namespace", mallory.ns)

    assert rc == 0, err
    assert [(ln["pod"], ln["action"]) for ln in lines] == [("owned-a", "evicted")]
    assert cluster.get("owned-a") is None and lines[0]["uid"] == pod["metadata"]["uid"]


def test_a_namespace_being_deleted_is_no_api_failure(plane, proxy, tmp_path):
    """In a namespace being deleted kube-apiserver refuses the eviction and the Event alike
    (403, cause NamespaceTerminating). Such a namespace stuck Terminating, with a due pod or a
    terminating one carrying a debug container, failed every pass with exit 1. This plane
    runs no namespace controller, so the namespace stays Terminating, as a stuck one does."""
    (tmp_path / "doomed").mkdir()
    doomed = Cluster(plane, tmp_path / "doomed", proxy)
    _, due = doomed.pair("doom")
    rs = doomed.replicaset("leave", 1)
    doomed.pod("leave-0", "leave", rs, node="node-1")  # on a node: it stays Terminating
    doomed.debug("leave-0")
    doomed.status("leave-0", debug={"debugger": exited(HOUR)})
    doomed.api.request("DELETE", f"/api/v1/namespaces/{doomed.ns}/pods/leave-0")
    plane.kubectl("delete", "namespace", doomed.ns, "--wait=false")
    assert doomed.get("leave-0")["metadata"].get("deletionTimestamp")

    rc, lines, err = doomed.janitor()

    assert (rc, err.count("could not record the Event")) == (0, 0), err
    assert sorted((ln["pod"], ln["action"], ln["status"]) for ln in lines) == [
        ("doom-a", "namespace-terminating", 403), ("leave-0", "skipped:terminating", None)]
    (refused,) = [ln for ln in lines if ln["pod"] == "doom-a"]
    assert refused["reason"].endswith(f"unable to create new content in namespace {doomed.ns} "
                                      "because it is being terminated")
    assert doomed.get("doom-a")["metadata"]["uid"] == due["metadata"]["uid"]


def test_the_api_server_going_away_mid_run_claims_nothing(plane, cluster):
    """kube-apiserver stops after the lists, just before the eviction: the pass ends with an
    error (or an `unknown` line, if the request went out on a connection that then broke),
    never with a pod claimed evicted. Last in the module: it restarts the shared server."""
    rs = cluster.replicaset("late", 1)
    cluster.stale_pod("late-0", "late", rs)
    try:
        lines: list[str] = []
        janitor = Janitor(Racing(plane, cluster.proxy, lambda: plane.halt("kube-apiserver")),
                          Options(namespaces=(cluster.ns,), without_pdb=True),
                          out=lines.append, warn=lambda _: None, wall=time.time)
        try:
            rc = janitor.run()
        except ServerError as error:
            assert error.status is None and "cannot reach the API server" in error.message
            assert lines == []
        else:
            assert rc == 1
            assert [json.loads(ln)["action"] for ln in lines] == ["unknown"]
    finally:
        plane.resume("kube-apiserver")
    assert cluster.get("late-0") is not None


def test_an_expired_continue_token_restarts_the_list(control_plane_bin):
    """kube-apiserver 1.37 answers a continue token whose revision etcd has compacted away with
    410 ("The provided continue parameter is too old ..."): the list starts over (RESTART, then
    the first page again), and nothing is read twice after it. A plane of its own that
    compacts every second; the token expired about 12 s after it was given, tried here."""
    from cred_helper.kubelist import RESTART, pages

    with ControlPlane(control_plane_bin,
                      apiserver_args=("--etcd-compaction-interval=1s",)) as plane:
        api = admin(plane)
        path = "/api/v1/namespaces/default/configmaps"

        def make(i: int) -> None:
            api.post(path, {"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": f"cm-{i}"}})

        for i in range(3):
            make(i)
        listed = pages(api, path, 1)
        first = next(listed)
        assert first is not RESTART and len(first.items) == 1
        # Wait until a token given now has expired: the generator's, older, has too.
        probe = api.get(path, {"limit": "1"})["metadata"]["continue"]
        for i in range(3, 6):
            make(i)  # new revisions, so that compaction passes the token's
        deadline = time.monotonic() + 90
        while True:
            try:
                api.get(path, {"limit": "1", "continue": probe})
            except ServerError as error:
                assert error.status == 410, error.message
                break
            assert time.monotonic() < deadline, "the continue token never expired"
            time.sleep(1)
        assert next(listed) is RESTART
        names = [item["metadata"]["name"] for page in listed if page is not RESTART
                 for item in page.items]
        assert sorted(names) == [f"cm-{i}" for i in range(6)]
