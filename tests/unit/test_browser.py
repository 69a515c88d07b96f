import os

from cred_helper.browser import browser_command

URL = "http://127.0.0.1:1/x?a=1&b=2"


def test_browser_variable_first_with_or_without_placeholder(tmp_path):
    env = {"PATH": os.environ["PATH"], "BROWSER": "nosuchbrowser:sh -c 'exec true' %s"}
    assert browser_command(URL, env, "linux") == ["sh", "-c", "exec true", URL]
    env["BROWSER"] = "true"
    assert browser_command(URL, env, "linux") == ["true", URL]


def test_no_desktop_means_no_browser():
    assert browser_command(URL, {"PATH": os.environ["PATH"]}, "linux") is None
    ssh = {"PATH": os.environ["PATH"], "SSH_CONNECTION": "1 2 3 4"}
    assert browser_command(URL, ssh, "linux") is None


def test_desktops():
    assert browser_command(URL, {}, "darwin") == ["open", URL]
    with_xdg = {"PATH": "/nonexistent", "DISPLAY": ":0"}
    assert browser_command(URL, with_xdg, "linux") is None, "no xdg-open, no browser"
