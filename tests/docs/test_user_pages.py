"""The commands of the user's pages (README's quick start, setup, everyday use), typed as a
person types them into a shell: a fresh home directory, `cred-helper` and `kubectl` on PATH,
no KUBECONFIG and no XDG variables, the files the page names in the working directory. Only
the page's example server and provider become the test's own (the local API server, which
approves at once, and the real OpenID provider)."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support import doccommands
from tests.support.apiserver import LocalAPIServer, OIDCAuthenticator
from tests.support.harness import BIN, find_kubectl
from tests.support.needs import needs

pytestmark = pytest.mark.kubectl
BROWSER = f"{sys.executable} {Path(__file__).parents[1] / 'support' / 'browser_command.py'} %s"
EXAMPLE_SERVER = "https://prod.example.com:6443"


@dataclass
class Shell:
    """A person's shell: their home, a working directory, PATH with the two commands."""

    home: Path
    cwd: Path
    env: dict[str, str]
    replace: dict[str, str]

    def run(self, command: str, **extra: str):
        done = doccommands.run(command, cwd=self.cwd, env={**self.env, **extra},
                               replace=self.replace)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        return done

    def run_all(self, block: doccommands.Block, count: int, **extra: str) -> list:
        """Every runnable command of the block, in order; `count` says how many the page
        shows, so a command added to the page without a look here fails."""
        assert len(block.runnable) == count, block.runnable
        return [self.run(command, **extra) for command in block.runnable]


@pytest.fixture
def server():
    with LocalAPIServer() as srv:
        srv.tokens["alices-bootstrap-token"] = ("alice@example.com", ["oncall", "sre"])
        srv.auto_approve = lambda csr: True
        yield srv


@pytest.fixture
def shell(tmp_path, server) -> Shell:
    kubectl = find_kubectl()
    assert kubectl, "no kubectl: scripts/setup installs one"
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "kubectl").symlink_to(kubectl)
    (tools / "cred-helper").symlink_to(BIN / "cred-helper")
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    # what the administrators handed over: the cluster's CA, and alice's token
    (cwd / "prod-ca.crt").write_bytes(server.ca.cert_pem)
    (cwd / "prod-bootstrap.token").write_text("alices-bootstrap-token\n")
    env = {"HOME": str(home), "PATH": f"{tools}{os.pathsep}/usr/bin:/bin", "LANG": "C.UTF-8"}
    return Shell(home, cwd, env, {EXAMPLE_SERVER: server.url})


def test_the_token_then_setup_then_kubectl(shell, server):
    """docs/setup.md: the bootstrap token kept where every page says, setup, kubectl."""
    shell.run_all(doccommands.block("docs/setup.md", "Where a bootstrap identity comes from"),
                  1)
    token = shell.home / ".config" / "cred-helper" / "prod-bootstrap.token"
    assert oct(token.stat().st_mode & 0o777) == "0o600"
    _, whoami = shell.run_all(doccommands.block("docs/setup.md", "Run setup"), 2)
    assert "alice@example.com" in whoami.stdout
    assert server.csr_creations == 1


def test_the_readmes_quick_start(shell, server):
    """README steps 2 and 3: the token kept where docs/setup.md keeps it, setup, kubectl."""
    readme = doccommands.block("README.md", "Quick start", index=1)
    kept = doccommands.block("docs/setup.md", "Where a bootstrap identity comes from")
    assert readme.commands[0] == kept.commands[0], "one token path everywhere"
    shell.run_all(readme, 2)
    (whoami,) = shell.run_all(doccommands.block("README.md", "Quick start", index=2), 1)
    assert "alice@example.com" in whoami.stdout


def test_the_manual_entry_is_what_setup_writes(shell):
    """docs/setup.md's kubeconfig entry by hand, and its profile, are what setup wrote for the
    page's first example (the CA's data, the token's full path and the command aside)."""
    shell.run_all(doccommands.block("docs/setup.md", "Where a bootstrap identity comes from"),
                  1)
    shell.run(doccommands.block("docs/setup.md", "Run setup").commands[0])
    written = yaml.safe_load((shell.home / ".kube" / "config").read_text())
    shown = yaml.safe_load(doccommands.block("docs/setup.md", "A kubeconfig entry by hand",
                                             "yaml").text)
    written["clusters"][0]["cluster"]["certificate-authority-data"] = "LS0tLS1CRUdJTi..."
    written["clusters"][0]["cluster"]["server"] = EXAMPLE_SERVER
    # the one difference the page states: setup's command is its fast launcher
    exec_entry = written["users"][0]["user"]["exec"]
    assert exec_entry["command"] == str(shell.home / ".local/share/cred-helper/bin/cred-helper")
    exec_entry["command"] = "cred-helper"
    for key in ("clusters", "users", "contexts", "apiVersion", "kind"):
        assert shown[key] == written[key], key
    profile = (shell.home / ".config" / "cred-helper" / "config.toml").read_text()
    shown_profile = doccommands.block("docs/setup.md", "A kubeconfig entry by hand", "toml").text
    assert profile == shown_profile.replace("~", str(shell.home))


def test_everyday_use(shell, server):
    """docs/usage.md after setup: log in, see it, forget it; say why; who am I; completion."""
    shell.run_all(doccommands.block("docs/setup.md", "Where a bootstrap identity comes from"),
                  1)
    shell.run(doccommands.block("docs/setup.md", "Run setup").commands[0])

    login, status, logout = shell.run_all(
        doccommands.block("docs/usage.md", "Log in before a script, see what is cached, "
                                           "forget it"), 3)
    assert "alice@example.com" in login.stderr
    assert "prod" in status.stdout and "alice@example.com" in status.stdout
    assert "removed 1 credential" in logout.stderr + logout.stdout

    before = set(server.csrs)
    shell.run_all(doccommands.block("docs/usage.md", "Say why"), 1)
    (made,) = set(server.csrs) - before  # --force: a new one, whatever is cached
    assert server.csrs[made]["metadata"]["annotations"]["cred-helper/reason"] == \
        "INC-42: payments are failing"

    (whoami,) = shell.run_all(doccommands.block("docs/usage.md", "Who am I"), 1)
    assert "alice@example.com" in whoami.stdout

    shell.run_all(doccommands.block("docs/usage.md", "Shell completion"), 2)
    bash = shell.home / ".local/share/bash-completion/completions/cred-helper"
    assert "complete" in bash.read_text()
    assert (shell.home / ".config/fish/completions/cred-helper.fish").read_text()


@needs(bool(shutil.which("node")), "needs Node.js")
def test_setup_with_an_oidc_login(shell, server):
    """docs/setup.md's second way: the cluster of a context the person has, their own login
    (the provider's client is `kubectl`, as the page names it), then kubectl."""
    from tests.support.oidc_provider import OIDCProvider, provider_clients

    public = next(c for c in provider_clients() if c["client_id"] == "public")
    with OIDCProvider([{**public, "client_id": "kubectl"}]) as provider:
        server.oidc = OIDCAuthenticator(provider.issuer, "kubectl")
        shell.replace["https://login.example.com"] = provider.issuer
        admin = shell.home / ".kube" / "config"
        admin.parent.mkdir()
        admin.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "prod-cluster", "cluster": server.cluster_entry()}],
            "users": [{"name": "prod-admin", "user": {"token": "an-admins-token"}}],
            "contexts": [{"name": "prod-admin", "context": {"cluster": "prod-cluster",
                                                            "user": "prod-admin"}}]}))
        _, login, whoami = shell.run_all(doccommands.block("docs/setup.md", "Run setup",
                                                           index=1), 3, BROWSER=BROWSER)
    assert "logged in as alice@example.com" in login.stderr
    assert "alice@example.com" in whoami.stdout
    (csr,) = server.csrs.values()
    assert csr["spec"]["username"] == "alice@example.com", "her OIDC login made the CSR"
