import base64
import json

from cred_helper.execcred import V1, V1BETA1, render, rfc3339
from cred_helper.execinfo import parse_exec_info


def _info(**spec):
    return json.dumps({"apiVersion": V1, "kind": "ExecCredential", "spec": spec})


def test_missing_variable_is_v1_and_follows_the_terminal():
    assert parse_exec_info(None, True) == (parse_exec_info("", True)[0], None)
    info, warning = parse_exec_info(None, False)
    assert (info.api_version, info.interactive, warning) == (V1, False, None)


def test_cluster_info():
    ca = b"-----BEGIN CERTIFICATE-----\n"
    info, warning = parse_exec_info(_info(interactive=True, cluster={
        "server": "https://k8s:6443", "tls-server-name": "api",
        "certificate-authority-data": base64.b64encode(ca).decode()}), False)
    assert warning is None and info.interactive
    assert (info.cluster.server, info.cluster.tls_server_name, info.cluster.ca_data) == (
        "https://k8s:6443", "api", ca)


def test_v1beta1_without_interactive():
    raw = json.dumps({"apiVersion": V1BETA1, "kind": "ExecCredential", "spec": {}})
    info, warning = parse_exec_info(raw, True)
    assert (info.api_version, info.interactive, warning) == (V1BETA1, True, None)


def test_bad_cluster_is_ignored_with_a_warning():
    info, warning = parse_exec_info(_info(interactive=False, cluster={
        "server": "https://x", "certificate-authority-data": "%%%"}), False)
    assert info.api_version == V1 and info.cluster is None
    assert "spec.cluster" in warning


def test_malformed_falls_back_to_v1_with_a_warning():
    for raw in ("{", "[1]", _info(interactive="yes"), json.dumps({"apiVersion": "x"})):
        info, warning = parse_exec_info(raw, False)
        assert info.api_version == V1 and warning


def test_render_is_valid_json_with_escaping():
    out = render(V1, {"token": 'a"b\nc', "expirationTimestamp": rfc3339(0)})
    assert out.endswith("\n")
    assert json.loads(out) == {"apiVersion": V1, "kind": "ExecCredential", "status": {
        "token": 'a"b\nc', "expirationTimestamp": "1970-01-01T00:00:00Z"}}
