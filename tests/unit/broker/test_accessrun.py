"""The broker's loop decides from plain facts here (its run against the real kube-apiserver is
tests/realcluster/test_access_requests.py): what a request's creation time says of the
admission policies that should have checked it."""

from __future__ import annotations

from cred_helper.broker.accessguard import ADMISSION_GRACE
from cred_helper.broker.accessrun import _made_before

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
