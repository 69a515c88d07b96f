import requests

from cred_helper.issuers.loopback import LoopbackRedirect, check_response


def test_a_code_with_the_right_state():
    answer = check_response("code=abc&state=s1", "s1")
    assert (answer.code, answer.error) == ("abc", None)


def test_wrong_or_missing_state_is_refused_even_with_a_code():
    for query in ("code=abc&state=s2", "code=abc", "code=abc&state="):
        answer = check_response(query, "s1")
        assert answer.code == "" and "state" in answer.error.message


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
