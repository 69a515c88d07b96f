import os
import socket
import struct

import pytest
import requests

from cred_helper import peeruid
from cred_helper.errors import CredHelperError
from cred_helper.issuers.loopback import LoopbackRedirect, check_response
from tests.support.needs import needs

ISSUER = "https://idp.example.com"
PROVIDER_URL = "https://idp.example.com/auth?state=s1&client_id=c"


def _check(query, state="s1", iss_required=False):
    return check_response(query, state, ISSUER, iss_required)


def test_a_code_with_the_right_state():
    answer = _check("code=abc&state=s1")
    assert (answer.code, answer.error) == ("abc", None)


def test_wrong_or_missing_state_is_refused_even_with_a_code():
    for query in ("code=abc&state=s2", "code=abc", "code=abc&state=",
                  "error=access_denied&state=s2", "code=abc&state=s2&iss=https://evil"):
        answer = _check(query)
        assert answer.code == "" and answer.stray and "state" in answer.error.message


def test_provider_errors_are_worded_for_people():
    answer = _check("error=access_denied&error_description=End-User+aborted&state=s1")
    assert answer.error.message == ("the OpenID provider refused the login (access_denied: "
                                    "End-User aborted)")
    assert _check("state=s1").error.message.endswith("no authorization code")


# ---- RFC 9207: the issuer in the authorization response ----

def test_an_answer_from_another_issuer_is_a_mix_up_naming_both():
    for query in ("code=abc&state=s1&iss=https%3A%2F%2Fidp.other.com",
                  "error=access_denied&state=s1&iss=https%3A%2F%2Fidp.other.com",
                  "code=abc&state=s1&iss="):
        answer = _check(query)
        assert answer.code == "" and not answer.stray, query
        assert "comes from the issuer" in answer.error.message
        assert ISSUER in answer.error.message and "mix-up" in answer.error.hint
    answer = _check("code=abc&state=s1&iss=https%3A%2F%2Fidp.other.com")
    assert "'https://idp.other.com'" in answer.error.message


def test_the_issuer_is_compared_exactly():
    for near in ("https://idp.example.com/", "https://IDP.example.com", "http://idp.example.com"):
        assert _check(f"code=abc&state=s1&iss={near}").error is not None, near


def test_iss_is_required_only_where_discovery_promises_it():
    assert _check("code=abc&state=s1").code == "abc"
    answer = _check("code=abc&state=s1", iss_required=True)
    assert answer.code == "" and "names no issuer" in answer.error.message
    assert _check(f"code=abc&state=s1&iss={ISSUER}", iss_required=True).code == "abc"


def test_the_issuer_is_shown_as_free_text():
    answer = _check("code=abc&state=s1&iss=https%3A%2F%2Fevil%1B%5D0%3Btitle%07%0Aok")
    assert "\x1b" not in answer.error.message and "\n" not in answer.error.message


# ---- the listener ----

def test_listener_answers_once_and_ignores_other_paths():
    with LoopbackRedirect("s1", ISSUER) as redirect:
        assert redirect.redirect_uri.startswith("http://127.0.0.1:")
        base = redirect.redirect_uri.rsplit("/", 1)[0]
        assert requests.get(base + "/favicon.ico", timeout=5).status_code == 404
        page = requests.get(redirect.redirect_uri + "?code=c1&state=s1", timeout=5)
        assert page.status_code == 200 and "Logged in" in page.text
        assert page.headers["Cache-Control"] == "no-store"
        assert redirect.wait(5) == "c1"
        again = requests.get(redirect.redirect_uri + "?code=c2&state=s1", timeout=5)
        assert again.status_code == 404, "a second answer is not taken"


def test_stray_requests_get_an_error_page_and_the_login_waits_on():
    with LoopbackRedirect("s1", ISSUER) as redirect:
        for query in ("?code=evil&state=s2", "?code=evil", "", "?error=access_denied"):
            page = requests.get(redirect.redirect_uri + query, timeout=5)
            assert page.status_code == 400 and "Not this login" in page.text
        with pytest.raises(CredHelperError, match="in time"):
            redirect.wait(0.3)  # still waiting: nothing above ended the login
        page = requests.get(redirect.redirect_uri + "?code=good&state=s1", timeout=5)
        assert page.status_code == 200
        assert redirect.wait(5) == "good"


def test_a_provider_error_with_the_right_state_ends_the_login():
    with LoopbackRedirect("s1", ISSUER) as redirect:
        page = requests.get(redirect.redirect_uri + "?error=access_denied&state=s1", timeout=5)
        assert page.status_code == 400 and "Login failed" in page.text
        with pytest.raises(CredHelperError, match="refused the login"):
            redirect.wait(5)


def test_a_mix_up_ends_the_login_before_the_code_is_used():
    with LoopbackRedirect("s1", ISSUER, iss_required=True) as redirect:
        page = requests.get(redirect.redirect_uri + "?code=c1&state=s1&iss=https://evil",
                            timeout=5)
        assert page.status_code == 400 and "Login failed" in page.text
        with pytest.raises(CredHelperError, match=r"not from https://idp\.example\.com"):
            redirect.wait(5)


# ---- the one-time link ----

def test_the_login_link_redirects_to_the_provider_once():
    with LoopbackRedirect("s1", ISSUER) as redirect:
        link = redirect.login_url(PROVIDER_URL)
        assert link.startswith("http://127.0.0.1:") and "state" not in link
        first = requests.get(link, allow_redirects=False, timeout=5)
        assert first.status_code == 302 and first.headers["Location"] == PROVIDER_URL
        assert first.headers["Cache-Control"] == "no-store"
        with pytest.raises(CredHelperError, match="in time"):
            redirect.wait(0.2)  # one fetch: the login goes on
        requests.get(redirect.redirect_uri + "?code=c1&state=s1", timeout=5)
        assert redirect.wait(5) == "c1"


def test_a_second_fetch_of_the_link_ends_the_login():
    with LoopbackRedirect("s1", ISSUER) as redirect:
        link = redirect.login_url(PROVIDER_URL)
        requests.get(link, allow_redirects=False, timeout=5)
        second = requests.get(link, allow_redirects=False, timeout=5)
        assert second.status_code == 400 and "Location" not in second.headers
        assert PROVIDER_URL not in second.text
        with pytest.raises(CredHelperError, match="opened twice") as failed:
            redirect.wait(5)
        assert "command line" in failed.value.hint
        late = requests.get(redirect.redirect_uri + "?code=c1&state=s1", timeout=5)
        assert late.status_code == 404, "an ended login takes no code"


def test_other_paths_are_not_the_link():
    with LoopbackRedirect("s1", ISSUER) as redirect:
        link = redirect.login_url(PROVIDER_URL)
        for path in ("/login/", "/login/x", link.rsplit("/", 1)[1]):
            answer = requests.get(redirect.redirect_uri.replace("/callback", "") + "/"
                                  + path.lstrip("/"), allow_redirects=False, timeout=5)
            assert answer.status_code == 404, path


def test_a_client_that_resets_its_connection_puts_nothing_on_stderr(capfd):
    """A tab closed mid-answer, or a program that sends a request and resets: before, each
    printed a Python traceback (socketserver's handle_error) into the person's terminal."""
    with LoopbackRedirect("s1", ISSUER) as redirect:
        redirect.login_url(PROVIDER_URL)
        for _ in range(10):
            sock = socket.create_connection(("127.0.0.1", _port(redirect)))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.sendall(b"GET /callback?state=other&code=c&pad=" + b"a" * 60_000 +
                         b" HTTP/1.0\r\n\r\n")
            sock.close()  # with a zero linger: a reset, before the answer is written
        answer = requests.get(redirect.redirect_uri + "?code=c1&state=s1", timeout=5)
        assert answer.status_code == 200 and redirect.wait(5) == "c1"
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err


def test_a_bug_in_the_listener_ends_the_login_in_one_line(capfd):
    def broken() -> str:
        raise ValueError("a bug")

    with LoopbackRedirect("s1", ISSUER, tables=broken) as redirect:
        link = redirect.login_url(PROVIDER_URL)
        with pytest.raises(requests.ConnectionError):
            requests.get(link, timeout=5)
        with pytest.raises(CredHelperError, match="unexpected ValueError in the login listener"):
            redirect.wait(5)
    assert "Traceback" not in capfd.readouterr().err


def _port(redirect: LoopbackRedirect) -> int:
    return int(redirect.redirect_uri.split(":")[2].split("/")[0])


# ---- requests from another user of the machine ----

@needs(os.path.exists("/proc/net/tcp"), "Linux's TCP tables")
def test_another_users_requests_are_refused_and_the_login_goes_on():
    """The listener belongs to a made-up uid, so this process is "another user": its fetch
    of the link and its right-state answer are both refused, said once, and change nothing.
    (tests/integration/test_oidc_local_attacker.py runs a real second user.)"""
    told = []
    with LoopbackRedirect("s1", ISSUER, warn=told.append, uid=os.geteuid() + 4242) as redirect:
        link = redirect.login_url(PROVIDER_URL)
        for url in (link, redirect.redirect_uri + "?code=c1&state=s1", link):
            answer = requests.get(url, allow_redirects=False, timeout=5)
            assert answer.status_code == 403 and "Location" not in answer.headers
            assert "another user" in answer.text
        with pytest.raises(CredHelperError, match="in time"):
            redirect.wait(0.3)
    assert told == [f"refused a request to the login listener from another user of this "
                    f"machine (uid {os.geteuid()}); the login goes on"]


def test_tables_that_cannot_be_read_now_refuse_and_the_login_goes_on():
    """Before: counted as "nobody can tell" and admitted, which another user could bring
    about by using up the process's descriptors."""
    def unreadable() -> str:
        raise peeruid.Unreadable("/proc/net/tcp: Too many open files")

    told = []
    with LoopbackRedirect("s1", ISSUER, warn=told.append, tables=unreadable) as redirect:
        link = redirect.login_url(PROVIDER_URL)
        for url in (link, redirect.redirect_uri + "?code=c1&state=s1"):
            answer = requests.get(url, allow_redirects=False, timeout=5)
            assert answer.status_code == 403 and "Location" not in answer.headers
        with pytest.raises(CredHelperError, match="in time"):
            redirect.wait(0.3)
    assert told == ["could not tell who connects to the login listener (/proc/net/tcp: Too "
                    "many open files), so the request was refused; the login goes on"]


def test_where_nobody_can_tell_the_one_time_rule_still_holds():
    with LoopbackRedirect("s1", ISSUER, tables=lambda: "", uid=os.geteuid() + 4242) as redirect:
        link = redirect.login_url(PROVIDER_URL)
        assert requests.get(link, allow_redirects=False, timeout=5).status_code == 302
        assert requests.get(link, allow_redirects=False, timeout=5).status_code == 400
        with pytest.raises(CredHelperError, match="opened twice"):
            redirect.wait(5)


def test_two_fetches_at_once_give_the_provider_url_to_one_only():
    """The attacker racing the browser: exactly one of them is sent on, and the login ends."""
    from concurrent.futures import ThreadPoolExecutor

    with LoopbackRedirect("s1", ISSUER) as redirect:
        link = redirect.login_url(PROVIDER_URL)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: requests.get(
                link, allow_redirects=False, timeout=5).status_code, range(8)))
        assert sorted(answers) == [302] + [400] * 7
        with pytest.raises(CredHelperError, match="opened twice"):
            redirect.wait(5)
