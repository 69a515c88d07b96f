"""doctor's pure verdicts added for issue 25: which profile a bare doctor checks, whether the
exec command runs, and whether a profile uses the keyring at all."""

from __future__ import annotations

import pytest

from cred_helper.doctor.checks import exec_command_check, keyring_use, pick_profile
from cred_helper.errors import UsageError
from cred_helper.execentry import Lookup

PATH = "/home/a/.config/cred-helper/config.toml"


def test_pick_profile_order():
    names = ["dev", "prod"]
    assert pick_profile("dev", "", ("prod", "prod"), names, PATH, True) == ("dev", "")
    assert pick_profile("", "", ("ctx", "prod"), names, PATH, True) == (
        "prod", "the profile kubectl's current context 'ctx' runs")
    assert pick_profile("", "", ("", ""), ["prod"], PATH, True) == (
        "prod", f"the only profile in {PATH}")


def test_pick_profile_never_guesses():
    with pytest.raises(UsageError) as caught:
        pick_profile("", "", ("", ""), ["dev", "prod", "stage"], PATH, True)
    assert caught.value.message == f"doctor checks one profile, and {PATH} has dev, prod, stage"
    assert caught.value.hint.startswith("name one: `cred-helper doctor --cluster dev` (or "
                                        "prod, stage)")
    with pytest.raises(UsageError, match=r"no profile to check: .* does not exist"):
        pick_profile("", "", ("", ""), [], PATH, False)


def test_pick_profile_refuses_unknown_names_saying_where_they_came_from():
    with pytest.raises(UsageError) as caught:
        pick_profile("", "", ("ctx", "prdo"), ["prod"], PATH, True)
    assert caught.value.message == (f"no profile 'prdo' (the profile kubectl's current context "
                                    f"'ctx' runs): {PATH} has the profile prod")
    assert caught.value.hint == "did you mean --cluster prod?"
    with pytest.raises(UsageError, match="from CRED_HELPER_CLUSTER"):
        pick_profile("prdo", "from CRED_HELPER_CLUSTER", ("", ""), ["prod"], PATH, True)


@pytest.mark.parametrize(("settings", "use"), [
    (("file", "csr", "token", "none", ""), ""),
    (("none", "csr", "kubeconfig", "none", ""), ""),
    (("keyring", "csr", "token", "none", ""), "needs"),
    (("file", "oidc", "", "none", ""), "prefers"),
    (("file", "csr", "oidc", "none", ""), "prefers"),
    (("none", "oidc", "", "none", ""), ""),
    (("none", "oidc", "", "client-secret", ""), "needs"),
    (("file", "oidc", "", "client-secret", "/s"), "prefers"),
    # OIDC settings a CSR profile with a token never uses
    (("file", "csr", "token", "client-secret", ""), ""),
])
def test_keyring_use(settings, use):
    assert keyring_use(*settings)[0] == use


def test_exec_command_check():
    found = Lookup("cred-helper", "/usr/bin/cred-helper")
    ok = exec_command_check(found, "cred-helper, version 1.0", "1.0")
    assert (ok.status, ok.detail) == ("OK", "`cred-helper` is /usr/bin/cred-helper "
                                            "(cred-helper, version 1.0)")
    assert exec_command_check(found, "cred-helper, version 0.9", "1.0").status == "WARN"
    broken = exec_command_check(found, "it cannot start (No such file or directory)", "1.0")
    assert broken.status == "FAIL" and "does not start as cred-helper" in broken.detail
    missing = exec_command_check(Lookup("cred-helper", problem="it is not on PATH"), "", "1.0")
    assert (missing.status, missing.detail) == ("FAIL", "kubectl cannot run `cred-helper`: it "
                                                        "is not on PATH")


def test_the_ssh_gateway_check():
    from cred_helper.doctor.checks import FAIL, OK, SKIP, WARN, ssh_gateway_check

    def verdicts(*args):
        return [(c.name, c.status) for c in ssh_gateway_check(*args)]

    assert verdicts([], None, "", "", "/usr/bin/ssh") == [("SSH gateway", SKIP)]
    assert verdicts(["gateway"], ("gateway: 'x:y' is not host:port", ""), "", "", None) == [
        ("SSH gateway", FAIL)]
    assert verdicts(["gateway", "gateway-host-key", "ssh-user-ca"], None, "gw:2222", "1 key(s)",
                    "/usr/bin/ssh") == [("SSH gateway", OK), ("ssh", OK)]
    assert verdicts(["gateway", "gateway-host-key", "ssh-user-ca"], None, "gw:2222", "1 key(s)",
                    None) == [("SSH gateway", OK), ("ssh", FAIL)]
    assert verdicts(["ssh-user-ca"], None, "", "", "/usr/bin/ssh") == [
        ("SSH gateway", WARN), ("ssh", OK)]
