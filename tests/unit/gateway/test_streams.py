"""The streaming protocols' pure parts: exec's query and final status, resize, refusals."""

from __future__ import annotations

import json

import pytest

from cred_helper.gateway import streams


def test_exec_query_keeps_argv_words_apart_and_in_order():
    assert streams.exec_query("app", ["sh", "-c", "echo a b"], tty=False) == [
        ("command", "sh"), ("command", "-c"), ("command", "echo a b"), ("container", "app"),
        ("stdin", "true"), ("stdout", "true"), ("stderr", "true"), ("tty", "false")]
    # On a terminal stderr is the terminal: Kubernetes refuses tty with a stderr stream.
    assert ("stderr", "false") in streams.exec_query("", ["sh"], tty=True)
    assert not [q for q in streams.exec_query("", ["sh"], tty=True) if q[0] == "container"]


@pytest.mark.parametrize(("status", "expected"), [
    ({"status": "Success"}, (0, "")),
    ({"status": "Failure", "reason": "NonZeroExitCode", "message": "exit 3",
      "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}, (3, "")),
    ({"status": "Failure", "reason": "NonZeroExitCode",
      "details": {"causes": [{"reason": "ExitCode", "message": "300"}]}},
     (1, "the command failed in the pod")),
    ({"status": "Failure", "reason": "NonZeroExitCode",
      "details": {"causes": [{"reason": "ExitCode", "message": "-1"}]}},
     (1, "the command failed in the pod")),
    ({"status": "Failure", "message": "exec: \"nope\": executable file not found\n\x1b[31m"},
     (1, 'exec: "nope": executable file not found ?[31m')),
    ([], (1, "the API server sent an unreadable exec status")),
    ({"status": "Failure", "reason": "NonZeroExitCode", "details": {"causes": 5}},
     (1, "the command failed in the pod")),
])
def test_exit_status(status, expected):
    assert streams.exit_status(json.dumps(status).encode()) == expected


def test_an_unreadable_status_is_a_failure():
    assert streams.exit_status(b"{")[0] == 1
    assert streams.exit_status(b"[" * 100000)[0] == 1


def test_resize_message():
    assert streams.resize_message(120, 40) == b'\x04{"Width": 120, "Height": 40}'


def test_a_refused_upgrade_says_what_the_api_server_said():
    body = json.dumps({"kind": "Status", "message": 'pods "x" is forbidden: User "alice" '
                       'cannot get resource "pods/exec"', "code": 403}).encode()
    assert streams._refusal(403, body).startswith('forbidden: pods "x" is forbidden')
    assert streams._refusal(404, b"not json\nsecond line") == "not json second line"
    assert streams._refusal(500, b"") == "HTTP 500"


def test_an_upgrade_answered_with_a_redirect_is_refused_not_followed(tmp_path):
    """websockets follows up to 10 redirects by default, sending the gateway's token and the
    person's impersonation headers on to wherever Location points: another pod, namespace
    or command than the grant judged. A 3xx is a refusal, and nothing else is asked."""
    import asyncio
    import ssl

    from cred_helper.kube import BearerAuth, Endpoint
    from tests.support.pki import CA

    ca = CA()
    cert, key = ca.server_cert()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    asked: list[bytes] = []

    async def answer(reader, writer) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        asked.append(head.split(b"\r\n", 1)[0])
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: /api/v1/namespaces/other/pods/db-0/exec"
                     b"?command=sh\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def run() -> streams.StreamError:
        server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        target = streams.Target(Endpoint(f"https://127.0.0.1:{port}", ca.cert_pem),
                                BearerAuth("gateway-token"),
                                (("Impersonate-User", "alice@example.com"),))
        try:
            with pytest.raises(streams.StreamError) as refused:
                await streams.open_stream(target, "/api/v1/namespaces/payments/pods/api-1/exec",
                                          [("command", "ps")], "v5.channel.k8s.io")
            return refused.value
        finally:
            server.close()
            await server.wait_closed()

    refused = asyncio.run(run())
    assert refused.status == 302
    assert asked == [b"GET /api/v1/namespaces/payments/pods/api-1/exec?command=ps HTTP/1.1"]
