import pytest
import requests

from cred_helper.errors import CredHelperError
from cred_helper.issuers.loopback import LoopbackRedirect, check_response


def test_a_code_with_the_right_state():
    answer = check_response("code=abc&state=s1", "s1")
    assert (answer.code, answer.error) == ("abc", None)


def test_wrong_or_missing_state_is_refused_even_with_a_code():
    for query in ("code=abc&state=s2", "code=abc", "code=abc&state=",
                  "error=access_denied&state=s2"):
        answer = check_response(query, "s1")
        assert answer.code == "" and answer.stray and "state" in answer.error.message


def test_provider_errors_are_worded_for_people():
    answer = check_response("error=access_denied&error_description=End-User+aborted&state=s1",
                            "s1")
    assert answer.error.message == ("the OpenID provider refused the login (access_denied: "
                                    "End-User aborted)")
    assert check_response("state=s1", "s1").error.message.endswith("no authorization code")


def test_listener_answers_once_and_ignores_other_paths():
    with LoopbackRedirect("s1") as redirect:
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
    with LoopbackRedirect("s1") as redirect:
        for query in ("?code=evil&state=s2", "?code=evil", "", "?error=access_denied"):
            page = requests.get(redirect.redirect_uri + query, timeout=5)
            assert page.status_code == 400 and "Not this login" in page.text
        with pytest.raises(CredHelperError, match="in time"):
            redirect.wait(0.3)  # still waiting: nothing above ended the login
        page = requests.get(redirect.redirect_uri + "?code=good&state=s1", timeout=5)
        assert page.status_code == 200
        assert redirect.wait(5) == "good"


def test_a_provider_error_with_the_right_state_ends_the_login():
    with LoopbackRedirect("s1") as redirect:
        page = requests.get(redirect.redirect_uri + "?error=access_denied&state=s1", timeout=5)
        assert page.status_code == 400 and "Login failed" in page.text
        with pytest.raises(CredHelperError, match="refused the login"):
            redirect.wait(5)
