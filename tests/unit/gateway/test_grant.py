"""grant.py: every "may I" of the gateway, as a table."""

from __future__ import annotations

import pytest

from cred_helper.accessrequest import Grant
from cred_helper.gateway.commands import Command, parse
from cred_helper.gateway.grant import argv_allowed, decide, decide_forward, pod_allowed

GRANT = Grant(namespace="payments", pods=("payment-api-*", "worker-0"),
              commands=("pods", "logs", "exec"),
              exec=(("ps", "aux"), ("cat", "/var/log/*"), ("ls", "**"), ("env",),
                    ("kill", "-[0-9]", "*")),
              shell=False, ports=(8080, 9090))
NOTHING = Grant(namespace="payments", pods=(), commands=(), exec=(), shell=False, ports=())
ANY_POD_SHELL = Grant(namespace="payments", pods=(), commands=("exec",), exec=(("ps",),),
                      shell=True, ports=())


@pytest.mark.parametrize(("grant", "line", "allowed", "why"), [
    (NOTHING, "help", True, ""),
    (NOTHING, "whoami", True, ""),
    (NOTHING, "pods", False, "`pods` is not in your grant (granted: none)"),
    (GRANT, "pods", True, ""),
    (GRANT, "logs payment-api-7d4f", True, ""),
    (GRANT, "logs payment-api-7d4f -f --tail 10", True, ""),
    (GRANT, "logs db-0", False, "pod 'db-0' is not in your grant"),
    (GRANT, "logs worker-0", True, ""),
    (GRANT, "logs worker-00", False, "not in your grant"),
    (GRANT, "exec payment-api-7d4f -- ps aux", True, ""),
    (GRANT, "exec payment-api-7d4f -- ps", False, "'ps' is not in your grant"),
    (GRANT, "exec payment-api-7d4f -- ps aux -e", False, "not in your grant"),
    (GRANT, "exec payment-api-7d4f -- ps AUX", False, "not in your grant"),  # case counts
    (GRANT, "exec payment-api-7d4f -- cat /var/log/app.log", True, ""),
    # fnmatch's * crosses /: the pattern says what it matches, no more, no less.
    (GRANT, "exec payment-api-7d4f -- cat /var/log/../../etc/shadow", True, ""),
    (GRANT, "exec payment-api-7d4f -- cat /etc/shadow", False, "not in your grant"),
    (GRANT, "exec payment-api-7d4f -- ls", True, ""),  # ** includes none
    (GRANT, "exec payment-api-7d4f -- ls -la /tmp", True, ""),
    (GRANT, "exec payment-api-7d4f -- env", True, ""),
    (GRANT, "exec payment-api-7d4f -- env sh", False, "not in your grant"),
    (GRANT, "exec payment-api-7d4f -- kill -9 1", True, ""),
    (GRANT, "exec payment-api-7d4f -- kill -99 1", False, "not in your grant"),
    # A shell is never reached through exec: the argv is matched word for word, never run
    # through a shell, and `sh` is in no pattern.
    (GRANT, "exec payment-api-7d4f -- sh -c 'ps aux'", False, "not in your grant"),
    (GRANT, "exec payment-api-7d4f -- ps aux; rm -rf /", False, "not in your grant"),
    (GRANT, "exec payment-api-7d4f -- -- ps aux", False, "not in your grant"),
    (GRANT, "exec db-0 -- ps aux", False, "pod 'db-0' is not in your grant"),
    (GRANT, "shell payment-api-7d4f", False, "a shell is not in your grant"),
    (ANY_POD_SHELL, "shell anything-at-all", True, ""),
    (ANY_POD_SHELL, "exec anything -- ps", True, ""),
    (ANY_POD_SHELL, "logs anything", False, "`logs` is not in your grant (granted: exec)"),
])
def test_the_table(grant, line, allowed, why):
    verdict = decide(grant, parse(line, 4096))
    assert verdict.allowed is allowed
    assert why in verdict.reason
    assert "\n" not in verdict.reason


def test_an_unknown_verb_is_never_allowed():
    assert not decide(GRANT, Command("delete", pod="payment-api-1")).allowed


@pytest.mark.parametrize(("pod", "port", "allowed", "why"), [
    ("payment-api-1", 8080, True, ""),
    ("payment-api-1", 9090, True, ""),
    ("payment-api-1", 22, False, "port 22 is not in your grant (granted ports: 8080, 9090)"),
    ("db-0", 8080, False, "pod 'db-0' is not in your grant"),
    ("localhost", 8080, False, "pod 'localhost' is not in your grant"),
    ("payment-api-1", 0, False, "port 0"),
])
def test_forwarding(pod, port, allowed, why):
    verdict = decide_forward(GRANT, pod, port)
    assert (verdict.allowed, why in verdict.reason) == (allowed, True)


ANY_POD_PORT = Grant(namespace="payments", pods=(), commands=(), exec=(), shell=False,
                     ports=(8080,))


@pytest.mark.parametrize("grant", [GRANT, ANY_POD_PORT])
@pytest.mark.parametrize("pod", [
    # ssh -L's host becomes a part of the API server's path: a glob in the grant (`*`
    # crosses `/`) or no pod list at all must not let it steer the call.
    "payment-api-1/portforward?ports=5432#", "payment-api-1/portforward?ports=5432&x=",
    "payment-api-1/../../../kube-system/pods/etcd-0", "../../kube-system/pods/etcd-0",
    "payment-api-%31", "payment-api-1 ", "payment-api-1\r\nX: y", "Payment-api-1",
    "payment-api-1.", "", "payment-api-*", "payment-api-1\x00"])
def test_forwarding_needs_a_pod_name(grant, pod):
    verdict = decide_forward(grant, pod, 8080)
    assert not verdict.allowed and verdict.reason.endswith("is not a pod name")


def test_forwarding_without_ports_says_none():
    assert "granted ports: none" in decide_forward(NOTHING, "x", 80).reason


@pytest.mark.parametrize(("patterns", "pod", "allowed"), [
    ((), "anything", True),
    (("api-?",), "api-1", True),
    (("api-?",), "api-10", False),
    (("api-[0-9]*",), "api-7d4f", True),
    (("api-*",), "API-1", False),
])
def test_pods(patterns, pod, allowed):
    assert pod_allowed(patterns, pod) is allowed


def test_argv_matching_is_element_by_element():
    assert argv_allowed((("echo", "*"),), ("echo", "a b c"))
    assert not argv_allowed((("echo", "*"),), ("echo", "a", "b"))
    assert argv_allowed((("echo", "**"),), ("echo", "a", "b"))
    assert not argv_allowed((("echo", "**"),), ("ech",))
    assert not argv_allowed((), ("echo",))
