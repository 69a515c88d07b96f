"""The janitor's manifests in packaging/kubernetes/ against the real kube-apiserver: every one
passes a server-side dry run, the CronJob's pod passes the `restricted` Pod Security Standard,
and each RBAC variant gives the ServiceAccount exactly what `cred-helper janitor` needs (list
pods and PodDisruptionBudgets, create pods/eviction and Events) and nothing else, asked with
`kubectl auth can-i` on the ServiceAccount's own token (a SelfSubjectAccessReview) and with
`--as` impersonation as an admin would. The CronJob itself cannot run here (no kubelet)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.support.clockproxy import ClockProxy

pytestmark = pytest.mark.realcluster

MANIFESTS = Path(__file__).resolve().parents[2] / "packaging" / "kubernetes"
NAMESPACE, SA = "cred-helper", "cred-helper-janitor"
AS = f"--as=system:serviceaccount:{NAMESPACE}:{SA}"
WATCHED, OTHER = "shop", "janitor-elsewhere"  # the namespaced variant's example, and another
JANITOR_FILES = ("janitor-serviceaccount.yaml", "janitor-rbac-cluster.yaml",
                 "janitor-rbac-namespace.yaml", "janitor-cronjob.yaml")


def ensure_namespace(plane, name: str) -> None:
    plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))


@pytest.fixture(scope="module")
def base(control_plane):
    """The janitor's namespace and ServiceAccount, the example watched namespace and another,
    and a kubeconfig holding a token for the ServiceAccount."""
    control_plane.kubectl("apply", "-f", str(MANIFESTS / "namespace.yaml"))
    control_plane.kubectl("apply", "-f", str(MANIFESTS / "janitor-serviceaccount.yaml"))
    for name in (WATCHED, OTHER):
        ensure_namespace(control_plane, name)
    token = control_plane.kubectl("create", "token", "-n", NAMESPACE, SA,
                                  "--duration=1h").strip()
    return control_plane.write_kubeconfig(control_plane.dir / "janitor-sa.kubeconfig",
                                          {"token": token})


def can_i(plane, sa_kubeconfig: Path, *question: str) -> bool:
    """`kubectl auth can-i` twice: on the ServiceAccount's token (its SelfSubjectAccessReview)
    and as the admin impersonating it. Both must agree."""
    answers = set()
    for args in ([f"--kubeconfig={sa_kubeconfig}"],
                 [f"--kubeconfig={plane.dir / 'admin.kubeconfig'}", AS]):
        done = subprocess.run([plane.kubectl_path, *args, "auth", "can-i", *question],
                              capture_output=True, text=True, timeout=30)
        assert done.stdout.strip() in ("yes", "no"), (question, done.stdout, done.stderr)
        answers.add(done.stdout.strip() == "yes")
    assert len(answers) == 1, f"token and --as disagree on {question}"
    return answers.pop()


def settled(plane, sa_kubeconfig: Path, question: tuple[str, ...], want: bool) -> None:
    """RBAC changes reach the authorizer through an informer: wait until they have."""
    deadline = time.monotonic() + 15
    while can_i(plane, sa_kubeconfig, *question) != want:
        assert time.monotonic() < deadline, f"RBAC never settled for {question}"
        time.sleep(0.2)


NEEDED = [  # what one pass does in a namespace it watches
    ("list", "pods"),
    ("list", "poddisruptionbudgets.policy"),
    ("create", "pods", "--subresource=eviction"),
    ("create", "events"),
]
NEVER = [  # what it must not do anywhere
    ("delete", "pods"),
    ("deletecollection", "pods"),
    ("patch", "pods"),
    ("update", "pods"),
    ("create", "pods"),
    ("get", "pods"),
    ("watch", "pods"),
    ("patch", "pods", "--subresource=ephemeralcontainers"),
    ("update", "pods", "--subresource=status"),
    ("create", "pods", "--subresource=exec"),
    ("get", "pods", "--subresource=log"),
    ("get", "secrets"),
    ("list", "secrets"),
    ("list", "configmaps"),
    ("delete", "events"),
    ("patch", "events"),
    ("delete", "poddisruptionbudgets.policy"),
    ("update", "poddisruptionbudgets.policy"),
    ("update", "deployments.apps"),
    ("delete", "replicasets.apps"),
    ("create", "serviceaccounts", "--subresource=token"),
    ("escalate", "roles.rbac.authorization.k8s.io"),
]


@pytest.fixture
def cluster_variant(control_plane, base):
    control_plane.kubectl("delete", "--ignore-not-found", "-f",
                          str(MANIFESTS / "janitor-rbac-namespace.yaml"))
    control_plane.kubectl("apply", "-f", str(MANIFESTS / "janitor-rbac-cluster.yaml"))
    settled(control_plane, base, ("list", "pods", "-A"), True)
    yield base
    control_plane.kubectl("delete", "-f", str(MANIFESTS / "janitor-rbac-cluster.yaml"))
    settled(control_plane, base, ("list", "pods", "-A"), False)


@pytest.fixture
def namespace_variant(control_plane, base):
    control_plane.kubectl("delete", "--ignore-not-found", "-f",
                          str(MANIFESTS / "janitor-rbac-cluster.yaml"))
    settled(control_plane, base, ("list", "pods", "-A"), False)
    control_plane.kubectl("apply", "-f", str(MANIFESTS / "janitor-rbac-namespace.yaml"))
    settled(control_plane, base, ("list", "pods", "-n", WATCHED), True)
    yield base
    control_plane.kubectl("delete", "-f", str(MANIFESTS / "janitor-rbac-namespace.yaml"))


def test_every_janitor_manifest_passes_a_server_side_dry_run(control_plane, base):
    args = [a for name in JANITOR_FILES for a in ("-f", str(MANIFESTS / name))]
    out = control_plane.kubectl("apply", "--dry-run=server", *args)
    for kind in ("serviceaccount/cred-helper-janitor",
                 "clusterrole.rbac.authorization.k8s.io/cred-helper-janitor",
                 "clusterrolebinding.rbac.authorization.k8s.io/cred-helper-janitor",
                 "role.rbac.authorization.k8s.io/cred-helper-janitor",
                 "rolebinding.rbac.authorization.k8s.io/cred-helper-janitor",
                 "cronjob.batch/cred-helper-janitor"):
        assert kind in out, out


def dry_run_json(plane, path: Path) -> dict:
    return json.loads(plane.kubectl("apply", "--dry-run=server", "-o", "json", "-f", str(path)))


def test_the_cronjob_is_what_the_issue_asks(control_plane, base):
    cron = dry_run_json(control_plane, MANIFESTS / "janitor-cronjob.yaml")
    deployment = dry_run_json(control_plane, MANIFESTS / "deployment.yaml")
    spec = cron["spec"]
    assert spec["schedule"] == "*/10 * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] < 600
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    assert 0 < job["activeDeadlineSeconds"] < 600  # over before the next run is due
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == SA
    assert pod["automountServiceAccountToken"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    (approver,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == approver["image"]  # the approver's image, with its extra
    assert container["args"][0] == "janitor"
    assert container["securityContext"] == {"allowPrivilegeEscalation": False,
                                            "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    # The ServiceAccount token is its only credential: no volume, Secret or env from elsewhere.
    assert "volumes" not in pod and "volumeMounts" not in container
    assert "envFrom" not in container and "env" not in container


def test_the_janitors_pod_passes_the_restricted_pod_security_standard(control_plane, base):
    """The CronJob's pod, as the Job controller would make it, in a namespace that enforces
    `restricted`: admitted, with the projected ServiceAccount token its only volume."""
    namespace = "janitor-psa-restricted"
    ensure_namespace(control_plane, namespace)
    control_plane.kubectl("label", "--overwrite", "namespace", namespace,
                          "pod-security.kubernetes.io/enforce=restricted")
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SA}}))
    cron = yaml.safe_load((MANIFESTS / "janitor-cronjob.yaml").read_text())
    template = cron["spec"]["jobTemplate"]["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "janitor-once", "namespace": namespace,
                        "labels": template["metadata"]["labels"]},
           "spec": template["spec"]}
    admitted = json.loads(control_plane.kubectl("create", "--dry-run=server", "-o", "json",
                                                "-f", "-", stdin=json.dumps(pod)))
    (volume,) = admitted["spec"]["volumes"]
    sources = volume["projected"]["sources"]
    assert [s for s in sources if "serviceAccountToken" in s]
    assert not [s for s in sources if "secret" in s]
    # The same check refuses a pod that is not restricted, so the label is in force.
    loose = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "loose", "namespace": namespace},
             "spec": {"serviceAccountName": SA,
                      "containers": [{"name": "c", "image": "busybox"}]}}
    with pytest.raises(RuntimeError, match='violates PodSecurity "restricted'):
        control_plane.kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(loose))


def test_cluster_wide_rbac_is_least_privilege(control_plane, cluster_variant):
    sa = cluster_variant
    allowed = [(*q, "-n", ns) for q in NEEDED for ns in (WATCHED, OTHER, "default")]
    allowed += [("list", "pods", "-A"), ("list", "poddisruptionbudgets.policy", "-A")]
    refused = [(*q, "-n", ns) for q in NEVER for ns in (WATCHED, NAMESPACE)]
    refused += [("list", "namespaces"), ("get", "nodes"), ("create", "namespaces")]
    assert [q for q in allowed if not can_i(control_plane, sa, *q)] == []
    assert [q for q in refused if can_i(control_plane, sa, *q)] == []


def test_namespaced_rbac_is_least_privilege(control_plane, namespace_variant):
    sa = namespace_variant
    allowed = [(*q, "-n", WATCHED) for q in NEEDED]
    refused = [(*q, "-n", ns) for q in NEEDED for ns in (OTHER, NAMESPACE, "default")]
    refused += [(*q, "-n", WATCHED) for q in NEVER]
    refused += [("list", "pods", "-A"), ("list", "poddisruptionbudgets.policy", "-A"),
                ("list", "namespaces")]
    assert [q for q in allowed if not can_i(control_plane, sa, *q)] == []
    assert [q for q in refused if can_i(control_plane, sa, *q)] == []


# ---- the rights are enough for a real pass --------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600
# The janitor judges ages by the API server's clock and believes no start before its pod's
# creation; it runs behind a proxy whose clock runs this far ahead (as in test_janitor.py).
SHIFT = 10 * HOUR


def stamp(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ",
                         time.gmtime(time.time() + SHIFT - seconds_ago))


def due_pod(plane, namespace: str) -> dict:
    """A ReplicaSet's Running, Ready pod whose debug container exited an hour ago, written as
    the admin as a kubelet would (there is none here)."""
    app = f"shop-{uuid.uuid4().hex[:6]}"
    template = {"metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "app", "image": "busybox"}]}}
    rs = json.loads(plane.kubectl("create", "-o", "json", "-f", "-", stdin=json.dumps({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": app, "namespace": namespace},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}},
                 "template": template}})))
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}))
    pod = json.loads(plane.kubectl("create", "-o", "json", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{app}-x7k2p", "namespace": namespace, "labels": {"app": app},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                          "name": app, "uid": rs["metadata"]["uid"],
                                          "controller": True}]},
        "spec": template["spec"]})))
    name = pod["metadata"]["name"]
    plane.kubectl("debug", name, "-n", namespace, "--image=nicolaka/netshoot",
                  "--attach=false", "-c", "debugger")
    plane.kubectl("patch", "pod", name, "-n", namespace, "--subresource=status",
                  "--type=merge", "-p", json.dumps({"status": {
                      "phase": "Running",
                      "conditions": [{"type": "Ready", "status": "True"}],
                      "containerStatuses": [{
                          "name": "app", "image": "busybox", "imageID": "", "ready": True,
                          "restartCount": 0,
                          "state": {"running": {"startedAt": stamp(10 * HOUR)}}}],
                      "ephemeralContainerStatuses": [{
                          "name": "debugger", "image": "nicolaka/netshoot", "imageID": "",
                          "ready": False, "restartCount": 0,
                          "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                                   "startedAt": stamp(2 * HOUR),
                                                   "finishedAt": stamp(HOUR)}}}]}}))
    return pod


def janitor(plane, sa_kubeconfig: Path, *args: str) -> tuple[int, list[dict], str]:
    with ClockProxy(plane.url, plane.ca, SHIFT) as proxy:
        shifted = proxy.kubeconfig(sa_kubeconfig, sa_kubeconfig.with_suffix(".shifted"))
        done = subprocess.run([sys.executable, "-m", "cred_helper", "janitor", "--kubeconfig",
                               str(shifted), "--without-pdb=evict", *args],
                              capture_output=True, text=True, timeout=120, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], \
        done.stderr


def evicted_with_an_event(plane, pod: dict) -> bool:
    meta = pod["metadata"]
    gone = subprocess.run([plane.kubectl_path, f"--kubeconfig={plane.dir / 'admin.kubeconfig'}",
                           "get", "pod", "-n", meta["namespace"], meta["name"]],
                          capture_output=True, text=True, timeout=30)
    events = json.loads(plane.kubectl("get", "events", "-n", meta["namespace"], "-o", "json"))
    said = [e for e in events["items"] if e["involvedObject"].get("uid") == meta["uid"]]
    return "NotFound" in gone.stderr and bool(said)


def test_the_namespaced_rights_are_enough_for_a_pass(control_plane, namespace_variant):
    pod, elsewhere = due_pod(control_plane, WATCHED), due_pod(control_plane, OTHER)
    code, lines, err = janitor(control_plane, namespace_variant, "--namespace", WATCHED)
    assert code == 0, err
    mine = [line for line in lines if line["uid"] == pod["metadata"]["uid"]]
    assert [line["action"] for line in mine] == ["evicted"], lines
    assert evicted_with_an_event(control_plane, pod)
    # Without --namespace it would list the whole cluster, which these rights refuse: the
    # pass fails cleanly, and nothing elsewhere is touched.
    code, lines, err = janitor(control_plane, namespace_variant)
    assert code == 1 and "forbidden" in err.lower(), err
    assert "Traceback" not in err
    control_plane.kubectl("get", "pod", "-n", OTHER, elsewhere["metadata"]["name"])


def test_the_cluster_wide_rights_are_enough_for_a_pass(control_plane, cluster_variant):
    pod = due_pod(control_plane, OTHER)
    # Every namespace, changing nothing.
    code, lines, err = janitor(control_plane, cluster_variant, "--dry-run")
    assert code == 0, err
    mine = [line for line in lines if line["uid"] == pod["metadata"]["uid"]]
    assert [line["action"] for line in mine] == ["would-evict"], lines
    code, lines, err = janitor(control_plane, cluster_variant, "--namespace", OTHER)
    assert code == 0, err
    assert evicted_with_an_event(control_plane, pod)
