"""Who gets into the gateway, and when they are put out: certificates an attacker (or a careless
signer) could hold are refused at login, and open sessions end at the certificate's end and
within 5 s of a denial or deletion, after which new connections are refused."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from cred_helper import accessrequest as ar
from tests.support import gateway as gw

pytestmark = pytest.mark.realcluster

EXEC = (("echo", "**"), ("sh", "-c", "*"))


@pytest.fixture(scope="module")
def world(gateway_world):
    return gateway_world


def grant(world) -> dict:
    return gw.grant(world.payments, exec_patterns=EXEC)


def refused(world, key, login, *, cert: str | None = None, options=()) -> str:
    """ssh's stderr for a login that must fail before any command runs."""
    if cert is not None:
        key.write_cert(cert)
    done = gw.ssh(world.gateway, key, login, "exec", "api-1", "--", "echo", "in",
                  options=options)
    assert done.returncode == 255, (done.stdout, done.stderr)
    assert done.stdout == ""
    return done.stderr


def trail_reason(world, login: str) -> str:
    line = world.gateway.wait_trail(lambda t: t["kind"] == "session" and
                                    t.get("request") == login and t["decision"] == "refused")
    return line["reason"]


def signed(world, key: gw.Key, name: str, *, ca: gw.UserCA | None = None, after: float = -60,
           before: float = 1800, principals: tuple[str, ...] | None = None, **kw) -> str:
    now = time.time()
    return (ca or world.ca).sign(key.public_line, list((name,) if principals is None
                                                     else principals),
                                 key_id=ar.key_id(name, "alice@example.com"),
                                 valid_after=now + after, valid_before=now + before, **kw)


def test_a_certificate_of_another_ca_is_refused(world):
    name, key = world.request(grant(world))
    # The client presents a certificate of its own CA for its key and this request.
    assert "Permission denied (publickey)" in refused(world, key, name,
                                                      cert=signed(world, key, name,
                                                                  ca=gw.UserCA()))
    assert "presented certificate is not signed by the gateway's SSH user CA" in \
        trail_reason(world, name)
    # The request's own certificate, signed by another CA (a broker with the wrong key).
    other, other_key = world.request(grant(world), approve_it=False)
    gw.approve(world.plane, world.ca, other, other_key, grant(world),
               certificate=signed(world, other_key, other, ca=gw.UserCA()))
    refused(world, other_key, other)
    assert "not signed by the gateway's SSH user CA" in trail_reason(world, other)


def test_expired_and_not_yet_valid_certificates_are_refused(world):
    name, key = world.request(grant(world), approve_it=False)
    gw.approve(world.plane, world.ca, name, key, grant(world),
               certificate=signed(world, key, name, after=-600, before=-60))
    refused(world, key, name)
    assert "is not valid now" in trail_reason(world, name)
    later, later_key = world.request(grant(world), approve_it=False)
    gw.approve(world.plane, world.ca, later, later_key, grant(world),
               certificate=signed(world, later_key, later, after=600, before=1800))
    refused(world, later_key, later)
    assert "is not valid now" in trail_reason(world, later)


def test_a_host_certificate_is_refused(world):
    name, key = world.request(grant(world), approve_it=False)
    gw.approve(world.plane, world.ca, name, key, grant(world),
               certificate=signed(world, key, name, host=True))
    refused(world, key, name)
    # ssh does not even offer a host certificate to log in; the plain key beside it is
    # refused (a client that offers it: tests/unit/gateway/test_server.py).
    assert "presented key is not an OpenSSH certificate" in trail_reason(world, name)


def test_a_certificate_of_another_requests_key_is_refused(world):
    # alice holds request A's key and certificate; request B is bob's.
    _, a_key = world.request(grant(world))
    b_name, _ = world.request(grant(world), who=world.bob)
    # Logging in as B with A's certificate: not B's certificate, and A's principal.
    refused(world, a_key, b_name)
    assert f"presented certificate does not name {b_name} as its one principal" in \
        trail_reason(world, b_name)
    # Even a certificate of the right CA naming B for A's key (a signer's mistake, or a CA
    # shared with something else), written into B's status: refused, it is not B's key.
    c_name, c_key = world.request(grant(world), who=world.bob, approve_it=False)
    forged = signed(world, a_key, c_name)
    gw.approve(world.plane, world.ca, c_name, c_key, grant(world), certificate=forged,
               write_cert=False)
    refused(world, a_key, c_name, cert=forged)
    assert "is not for the request's key" in trail_reason(world, c_name)


def test_a_certificate_for_every_principal_or_with_a_critical_option_is_refused(world):
    name, key = world.request(grant(world), approve_it=False)
    gw.approve(world.plane, world.ca, name, key, grant(world),
               certificate=signed(world, key, name, principals=()))
    refused(world, key, name)
    assert "one principal" in trail_reason(world, name)
    other, other_key = world.request(grant(world), approve_it=False)
    gw.approve(world.plane, world.ca, other, other_key, grant(world),
               certificate=signed(world, other_key, other,
                                  critical={"cred-helper@example.com": "x"}))
    refused(world, other_key, other)
    assert "carries critical options" in trail_reason(world, other)


def test_plain_keys_and_passwords_are_refused(world):
    name, key = world.request(grant(world))
    # The request's own key, offered without its certificate (ssh would pick up
    # `KEY-cert.pub` beside it: the copy has none).
    bare = key.path.parent / "bare" / key.path.name
    bare.parent.mkdir(exist_ok=True)
    bare.write_bytes(key.path.read_bytes())
    bare.chmod(0o600)
    plain = subprocess.run(
        gw.ssh_argv(world.gateway, key, name, "whoami", identity=False,
                    options=("-o", f"IdentityFile={bare}")),
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert plain.returncode == 255 and "Permission denied (publickey)" in plain.stderr
    assert "presented key is not an OpenSSH certificate" in trail_reason(world, name)
    # The server offers nothing but publickey: no password, no keyboard-interactive.
    done = subprocess.run(
        gw.ssh_argv(world.gateway, key, name, "whoami", identity=False,
                    options=("-v", "-o", "PreferredAuthentications=password,"
                                         "keyboard-interactive")),
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 255
    assert "Authentications that can continue: publickey\r\n" in done.stderr or \
        "Authentications that can continue: publickey\n" in done.stderr
    assert "password" not in done.stderr.split("can continue:")[1].splitlines()[0]


def test_pending_denied_and_unknown_requests_are_refused(world):
    pending, key = world.request(grant(world), approve_it=False)
    key.write_cert(signed(world, key, pending))
    refused(world, key, pending)
    assert "is not approved yet" in trail_reason(world, pending)
    denied, denied_key = world.request(grant(world))
    gw.deny(world.plane, denied, reason="not during the freeze")
    refused(world, denied_key, denied)
    assert "was denied by admin: not during the freeze" in \
        trail_reason(world, denied)
    # A certificate of the CA for a name no request has (the request deleted since).
    refused(world, denied_key, "ar-nonexistent",
            cert=signed(world, denied_key, "ar-nonexistent"))
    assert "there is no access request ar-nonexistent" in trail_reason(world, "ar-nonexistent")
    refused(world, denied_key, "root")
    assert "presented certificate does not name root as its one principal" in \
        trail_reason(world, "root")
    refused(world, denied_key, "Admin_1")
    assert "not an access request's name" in trail_reason(world, "Admin_1")


def long_command(world, key, name) -> subprocess.Popen:
    """A command that runs for two minutes, once it runs in the pod."""
    proc = subprocess.Popen(gw.ssh_argv(world.gateway, key, name, "exec", "api-1", "--",
                                        "sh", "-c", "'echo started; exec sleep 120'"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout.readline() == "started\n", proc.communicate()
    return proc


def ended_within(proc: subprocess.Popen, seconds: float) -> tuple[float, str]:
    start = time.monotonic()
    _, err = proc.communicate(timeout=seconds + 10)
    took = time.monotonic() - start
    assert took <= seconds, f"took {took:.1f} s: {err}"
    return took, err


@pytest.mark.parametrize("how", ["denied", "deleted"])
def test_a_session_ends_within_5_seconds_of_denial_or_deletion(world, how):
    name, key = world.request(grant(world))
    proc = long_command(world, key, name)
    start = time.monotonic()
    if how == "denied":
        gw.deny(world.plane, name, reason="incident over")
        why = "was denied by admin: incident over"
    else:
        world.plane.kubectl("delete", "accessrequest", name, "--wait=false")
        why = "was deleted"
    _, err = ended_within(proc, 5)
    took = time.monotonic() - start
    print(f"session ended {took:.2f} s after the request was {how} (kubectl's run included)")
    assert took <= 5
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1] == \
        f"cred-helper: error: session ended: access request {name} {why}"
    line = world.gateway.wait_trail(lambda t: t["kind"] == "session" and
                                    t.get("request") == name and t["decision"] == "accepted")
    assert why in line["reason"]
    # And no new connection gets in.
    refused(world, key, name)


def test_a_session_ends_at_the_certificates_end(world):
    name, key = world.request(grant(world), lifetime=8)
    ends = json.loads(world.plane.kubectl("get", "accessrequest", name, "-o", "json"))[
        "status"]["expiresAt"]
    proc = long_command(world, key, name)
    _, err = ended_within(proc, 12)
    assert err.strip().splitlines()[-1] == \
        f"cred-helper: error: session ended: access request {name} ended at {ends}"
    assert time.time() >= ar.parse_time(ends, "expiresAt")
    refused(world, key, name)


def test_an_idle_session_is_ended(world, tmp_path):
    gateway = gw.start_gateway(world.plane, world.ca, tmp_path / "gateway",
                               "--idle-timeout=2s")
    try:
        name, key = world.request(grant(world))
        proc = subprocess.Popen(gw.ssh_argv(gateway, key, name, "exec", "api-1", "--", "sh",
                                            "-c", "'echo started; exec sleep 60'"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)
        assert proc.stdout.readline() == "started\n"
        took, err = ended_within(proc, 6)
        assert took >= 1.5
        assert err.strip().splitlines()[-1] == \
            "cred-helper: error: session ended: idle for 2 s (the gateway's --idle-timeout)"
    finally:
        gateway.stop()


def test_what_cannot_be_recorded_does_not_run(world, tmp_path):
    gateway = gw.start_gateway(world.plane, world.ca, tmp_path / "gateway",
                               "--recording-limit=1")
    try:
        name, key = world.request(grant(world))
        # Past the recording's limit (1 MiB) the command is ended, and what did not fit
        # never reaches the client.
        done = gw.ssh(gateway, key, name, "exec", "api-1", "--", "sh", "-c",
                      "'yes 0123456789 | head -c 3000000'")
        assert done.returncode == 1
        assert len(done.stdout) < 1 << 20
        assert "cred-helper: error: command ended: the recording" in done.stderr
        assert "reached 1048576 bytes" in done.stderr
        # A recordings directory that cannot be written: nothing runs.
        day = time.strftime("%Y-%m-%d", time.gmtime())
        (gateway.recordings / day).rename(gateway.recordings / "moved")
        (gateway.recordings / day).write_text("in the way")
        done = gw.ssh(gateway, key, name, "exec", "api-1", "--", "sh", "-c",
                      "'echo ran > ran.txt'")
        assert done.returncode == 1
        assert "cannot record this command" in done.stderr
        assert not (world.pod_dirs["api-1"] / "ran.txt").exists()
    finally:
        gateway.stop()
