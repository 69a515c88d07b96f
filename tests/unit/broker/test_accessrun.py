"""The broker's loop decides from plain facts here (its run against the real kube-apiserver is
tests/realcluster/test_access_requests.py): what a request's creation time says of the
admission policies that should have checked it."""

from __future__ import annotations

from cred_helper.broker.accessguard import ADMISSION_GRACE
from cred_helper.broker.accessrun import AccessBroker, _made_before
from tests.unit.test_kubelist import Server

from .accessbuild import access_object

SINCE = 1_900_000_000.0  # the policies were last installed or changed


def test_a_request_made_before_kube_apiserver_surely_enforces_the_policies_is_not_signed():
    """kube-apiserver reloads admission policies every second after its informer sees them:
    a request made in the seconds after they are installed may have passed unchecked."""
    assert "never checked" in _made_before(access_object(created=SINCE), SINCE)
    for after in (1, ADMISSION_GRACE):
        assert "before kube-apiserver surely enforced them" in _made_before(
            access_object(created=SINCE + after), SINCE)
    assert _made_before(access_object(created=SINCE + ADMISSION_GRACE + 1), SINCE) is None


class _Quiet(Server):
    """An API server with no access requests and a watch that brings nothing."""

    def watch(self, path: str, params: dict, seconds: float):
        return iter(())


def _broker(policy: object, server: Server | None, beats: list[int], sleeps: int):
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)

    broker = AccessBroker(server, lambda: policy, None, decider="broker",  # type: ignore[arg-type]
                          guard=None, out=lambda line: None,  # type: ignore[arg-type]
                          warn=lambda text: None, clock=lambda: 0.0, sleep=sleep,
                          wall=lambda: SINCE, beat=lambda: beats.append(len(slept)))
    broker.run(until=lambda: len(slept) >= sleeps)
    return slept


def test_the_access_loop_shows_signs_of_life_while_it_waits_and_while_it_follows():
    """The approver's /livez (health.py) fails when a part stops beating: the access loop
    beats on every pass, both while the policy has no access: section and while it watches,
    so a hung access loop restarts the pod as a hung CSR loop does."""
    beats: list[int] = []
    _broker(None, None, beats, sleeps=3)
    assert beats[:3] == [0, 1, 2]  # once a pass while it waits for an access: section
    beats.clear()
    server = _Quiet([])
    _broker(object(), server, beats, sleeps=3)
    assert server.asked and len(set(beats)) >= 3  # between every pause of its watch
