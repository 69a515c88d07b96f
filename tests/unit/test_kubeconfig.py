"""spec.cluster read from a kubeconfig context (`login --context`): a hostile file is one
usage error, never an exception from a library."""

from __future__ import annotations

import pytest

from cred_helper.errors import UsageError
from cred_helper.kubeconfig import cluster_info

HEAD = "contexts: [{name: c, context: {user: u, cluster: k}}]\nusers: [{name: u, user: {}}]\n"


def _kubeconfig(tmp_path, cluster: str):
    path = tmp_path / "kubeconfig"
    path.write_text(HEAD + f"clusters: [{{name: k, cluster: {cluster}}}]\n")
    return str(path)


def test_the_cluster_kubectl_would_send(tmp_path):
    info = cluster_info(_kubeconfig(tmp_path, "{server: 'https://a:6443', "
                                              "tls-server-name: b, "
                                              "certificate-authority-data: QUJD}"), "c")
    assert (info.server, info.tls_server_name, info.ca_data) == ("https://a:6443", "b", b"ABC")
    assert info.insecure_skip_tls_verify is False


@pytest.mark.parametrize("cluster, message", [
    ("{server: 5}", "server"),
    ("{server: 'https://a', tls-server-name: [x]}", "tls-server-name"),
    ("{server: 'https://a', certificate-authority: \"a\\0b\"}", "contains a NUL character"),
    ("{server: 'https://a', certificate-authority-data: '!!'}", "not base64"),
])
def test_a_hostile_cluster_is_one_usage_error(tmp_path, cluster, message):
    with pytest.raises(UsageError, match=message):
        cluster_info(_kubeconfig(tmp_path, cluster), "c")
