"""A newcomer's first ten minutes: a bare command on a terminal, `login --cluster` with a profile
alone, misspelt and missing profiles, errors naming flag and profile key, key material on a
terminal, and shell completion."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import doccommands
from tests.support.harness import BIN, CRED_HELPER, on_terminal, one_error, profile_kubeconfig


def _profile(sandbox, text: str) -> None:
    config = sandbox.root / "config" / "cred-helper"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(text)


def _on_terminal(sandbox, *args: str, extra_env: dict | None = None) -> tuple[int, str]:
    return on_terminal([CRED_HELPER, *args], {**sandbox.env, **(extra_env or {})})


def test_bare_command_on_a_terminal_prints_usage(sandbox):
    code, out = _on_terminal(sandbox)
    assert code == 2
    assert out.startswith("Usage: cred-helper [get] --cluster NAME")
    assert "cred-helper login --cluster NAME" in out
    assert "no issuer" not in out


def test_login_with_a_profile_alone(sandbox):
    _profile(sandbox, f'[clusters.prod]\nissuer = "csr"\n'
                      f'bootstrap-token-file = "{sandbox.token_file}"\n')
    profile_kubeconfig(sandbox, ["--cluster", "prod"])
    login = sandbox.run("login", "--cluster", "prod")
    assert login.returncode == 0, login.stderr
    assert "logged in as alice@example.com" in login.stderr
    # kubectl's own run then hits what login cached: the same spec.cluster, the same key
    got = sandbox.run("--cluster", "prod", exec_info=sandbox.exec_info())
    assert got.returncode == 0, got.stderr
    assert sandbox.server.csr_creations == 1


def test_misspelt_profile_names_file_profiles_and_closest(sandbox):
    _profile(sandbox, '[clusters.prod]\nissuer = "csr"\n[clusters.staging]\nissuer = "csr"\n')
    result = sandbox.run("login", "--cluster", "prdo")
    assert result.returncode == 2
    path = sandbox.root / "config" / "cred-helper" / "config.toml"
    assert (f"cred-helper: error: no profile 'prdo': {path} has the profiles prod, staging"
            in result.stderr)
    assert "hint: did you mean --cluster prod?" in result.stderr


def test_missing_profile_file_is_mentioned(sandbox):
    result = sandbox.run("login", "--cluster", "prod")
    assert result.returncode == 2
    path = sandbox.root / "config" / "cred-helper" / "config.toml"
    assert f"the profile file {path} does not exist" in result.stderr
    bare = sandbox.run("login")
    assert f"no profile chosen and no issuer set (the profile file {path} does not exist)" \
        in bare.stderr
    assert "--issuer" in bare.stderr and "--cluster NAME" in bare.stderr


def test_setting_errors_name_flag_and_profile_key(sandbox):
    _profile(sandbox, '[clusters.prod]\nissuer = "csr"\ncache = "redis"\n')
    from_profile = sandbox.run("--cluster=prod")
    assert "profile key cache in [clusters.prod]" in from_profile.stderr
    assert "(flag --cache)" in from_profile.stderr
    from_flag = sandbox.run("--cluster=prod", "--cache=redis")
    assert "--cache: 'redis' is not one of file, keyring, none (profile key cache)" \
        in from_flag.stderr


def test_get_warns_before_printing_a_key_to_a_terminal(sandbox):
    args = sandbox.base_args(f"--server={sandbox.server.url}",
                             f"--certificate-authority={sandbox.ca_file}")
    code, out = _on_terminal(sandbox, "get", *args)
    assert code == 0, out
    warning = out.index("cred-helper: warning: printing a private key (clientKeyData)")
    assert warning < out.index("PRIVATE KEY")
    # kubectl (KUBERNETES_EXEC_INFO set, stdout a pipe) gets no warning
    plain = sandbox.run(*args, exec_info=sandbox.exec_info())
    assert plain.returncode == 0 and "warning" not in plain.stderr


def test_completion_scripts_and_profile_names(sandbox):
    for shell, marker in (("bash", "complete -o nosort -F"), ("zsh", "#compdef cred-helper"),
                          ("fish", "complete --no-files --command cred-helper")):
        script = sandbox.run("completion", shell)
        assert script.returncode == 0 and marker in script.stdout, script.stdout[:200]
    _profile(sandbox, '[clusters.prod]\n[clusters.preprod]\n[clusters.staging]\n')

    def complete(words: str) -> list[str]:
        env = {"_CRED_HELPER_COMPLETE": "bash_complete", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
        done = sandbox.run(extra_env=env)
        return [line.split(",", 1)[1] for line in done.stdout.splitlines()]

    assert complete("cred-helper login --cluster p") == ["preprod", "prod"]
    assert "doctor" in complete("cred-helper d")
    assert "--cluster" in complete("cred-helper doctor --cl")


# ---- finding the commands (issue 25, item 5) --------------------------------------------------

def test_bare_usage_names_every_command(sandbox):
    code, out = _on_terminal(sandbox)
    assert code == 2
    # Before: setup, the first command a newcomer needs, was missing.
    assert "cred-helper setup --cluster NAME" in out
    listed = out.replace(",", " ").split()
    for command in ("get", "setup", "login", "status", "logout", "doctor", "keys",
                    "completion", "approver", "janitor", "help", "version"):
        assert command in listed or f"[{command}]" in listed, (command, out)


@pytest.mark.parametrize(("typed", "error", "hint"), [
    ("stauts", "no command 'stauts'; did you mean status?",
     "`cred-helper --help` lists the commands"),
    ("lo", "no command 'lo'; did you mean login or logout?",
     "`cred-helper --help` lists the commands"),
    ("prod", "no command 'prod'; did you mean --cluster prod?",
     "`cred-helper login --cluster prod` logs in"),
    ("keys lst", "no command 'lst' in `cred-helper keys`; did you mean list?",
     "`cred-helper keys --help` lists the commands"),
    ("--cluster prod login", "no command 'login' after options: the command comes first",
     "cred-helper login --cluster prod"),
    ("--cluster prod stauts", "no command 'stauts'; did you mean status?", ""),
    ("help stauts", "no command 'stauts'; did you mean status?", ""),
])
def test_an_unknown_word_gets_the_closest_command(sandbox, typed, error, hint):
    _profile(sandbox, '[clusters.prod]\nissuer = "csr"\n')
    result = sandbox.run(*typed.split())
    # Before: "Got unexpected extra argument (stauts)" and a hint to read get's help.
    assert result.returncode == 2 and result.stdout == ""
    assert one_error(result.stderr) == f"cred-helper: error: {error}"
    assert hint in result.stderr and "unexpected extra argument" not in result.stderr


def test_help_and_version_as_people_type_them(sandbox):
    top = sandbox.run("help")
    assert top.returncode == 0 and top.stdout == sandbox.run("--help").stdout
    assert top.stdout.startswith("Usage: cred-helper [OPTIONS] COMMAND [ARGS]...")
    one = sandbox.run("help", "keys", "generate")
    assert one.returncode == 0 and one.stdout == sandbox.run("keys", "generate", "--help").stdout
    assert one.stdout.startswith("Usage: cred-helper keys generate [OPTIONS] URI")
    version = sandbox.run("version")
    assert version.returncode == 0 and version.stdout == sandbox.run("--version").stdout
    assert version.stdout.startswith("cred-helper, version ")
    nested = sandbox.run("help", "status", "more")
    assert nested.returncode == 2
    assert one_error(nested.stderr) == "cred-helper: error: `cred-helper status` has no commands"


# ---- one answer to a misspelt profile, from every command (item 6) ----------------------------

def test_every_command_refuses_an_unknown_profile_the_same_way(sandbox):
    _profile(sandbox, '[clusters.prod]\nissuer = "csr"\n[clusters.staging]\nissuer = "csr"\n')
    path = sandbox.root / "config" / "cred-helper" / "config.toml"
    expected = (f"cred-helper: error: no profile 'prdo': {path} has the profiles prod, "
                "staging\nhint: did you mean --cluster prod?\n")
    for command in (["get"], ["login"], ["status"], ["logout"], ["doctor"]):
        result = sandbox.run(*command, "--cluster", "prdo")
        # Before: status said "no cached credentials", logout "removed 0 ...", both exit 0;
        # doctor printed a FAIL line among eight SKIPs and exited 1.
        assert (result.returncode, result.stdout, result.stderr) == (2, "", expected), command
    env = sandbox.run("status", extra_env={"CRED_HELPER_CLUSTER": "prdo"})
    assert env.returncode == 2 and env.stderr == expected


def test_a_profile_known_only_to_the_cache_is_known(sandbox):
    """A profile given by flags alone (`--cluster idp --issuer ...`) has no [clusters.idp]; its
    cached credentials make the name known to status and logout."""
    args = sandbox.base_args("--cluster=flags-only", f"--server={sandbox.server.url}",
                             f"--certificate-authority={sandbox.ca_file}")
    assert sandbox.run(*args, exec_info=sandbox.exec_info()).returncode == 0
    assert sandbox.run("status", "--cluster=flags-only").returncode == 0
    logout = sandbox.run("logout", "--cluster=flags-only")
    assert logout.returncode == 0 and "removed 1 credential" in logout.stderr
    again = sandbox.run("logout", "--cluster=flags-only")
    assert again.returncode == 2 and "no profile 'flags-only'" in again.stderr


# ---- kubectl's command typed by hand (item 4) ----------------------------------------------

def test_kubectls_command_typed_by_hand_after_a_login(sandbox):
    _profile(sandbox, f'[clusters.prod]\nissuer = "csr"\n'
                      f'bootstrap-token-file = "{sandbox.token_file}"\n')
    profile_kubeconfig(sandbox, ["--cluster=prod"])
    assert sandbox.run("login", "--cluster", "prod").returncode == 0
    by_hand = sandbox.run("--cluster", "prod")
    # Before: "no API server to send the certificate request to" / "set provideClusterInfo".
    assert by_hand.returncode == 0, by_hand.stderr
    assert json.loads(by_hand.stdout)["status"]["clientCertificateData"]
    assert sandbox.server.csr_creations == 1  # the credential the login cached, as kubectl gets
    # ... and kubectl's own run is served the same entry
    assert sandbox.run("--cluster", "prod", exec_info=sandbox.exec_info()).returncode == 0
    assert sandbox.server.csr_creations == 1
    code, out = _on_terminal(sandbox, "--cluster", "prod")
    assert code == 0 and out.index("`cred-helper status` shows what is cached") \
        < out.index("PRIVATE KEY")


def test_kubectls_command_by_hand_without_a_kubeconfig_entry(sandbox):
    _profile(sandbox, f'[clusters.prod]\nissuer = "csr"\n'
                      f'bootstrap-token-file = "{sandbox.token_file}"\n')
    result = sandbox.run("--cluster", "prod")
    assert result.returncode == 2 and result.stdout == ""
    error = one_error(result.stderr)
    assert error == ("cred-helper: error: no API server: `cred-helper --cluster=prod` is what "
                     "kubectl runs, passing the server; by hand it looks for it in your "
                     "kubeconfig, and no kubeconfig context runs `cred-helper --cluster=prod`")
    assert "`cred-helper setup --cluster prod` writes one" in result.stderr
    assert "`cred-helper login --cluster prod --context CONTEXT`" in result.stderr
    assert "`cred-helper status`" in result.stderr
    assert sandbox.server.csr_creations == 0

    profile_kubeconfig(sandbox, ["--cluster=prod"], provide=False)
    result = sandbox.run("--cluster", "prod")
    assert result.returncode == 2
    assert "the kubeconfig user 'oncall' runs `cred-helper --cluster=prod` without " \
           "provideClusterInfo: true" in result.stderr
    # kubectl itself (KUBERNETES_EXEC_INFO set) still gets the plain protocol error
    by_kubectl = sandbox.run("--cluster", "prod", exec_info=sandbox.exec_info(cluster=False))
    assert "set provideClusterInfo: true in the kubeconfig exec entry" in by_kubectl.stderr


def _two_clusters(sandbox, current: str) -> Path:
    """A kubeconfig whose contexts east and west (two clusters: the same server under two
    names, so two cache entries) both run `cred-helper --cluster=prod`, and a context
    `admin` that does not."""
    path = sandbox.kubeconfig(["--cluster=prod"])
    doc = yaml.safe_load(path.read_text())
    east = sandbox.server.cluster_entry()
    west = dict(east, server=east["server"].replace("127.0.0.1", "localhost"))
    doc["clusters"] = [{"name": "east", "cluster": east}, {"name": "west", "cluster": west}]
    doc["users"].append({"name": "admin", "user": {"token": "not-used"}})
    doc["contexts"] = [{"name": name, "context": {"cluster": cluster, "user": user}}
                       for name, cluster, user in [("east", "east", "oncall"),
                                                   ("west", "west", "oncall"),
                                                   ("admin", "east", "admin")]]
    doc["current-context"] = current
    path.write_text(yaml.safe_dump(doc))
    sandbox.env["KUBECONFIG"] = str(path)
    return path


def test_by_hand_and_login_take_the_cluster_of_kubectls_current_context(sandbox, kubectl):
    """Before: the first context that ran the profile (east), whatever kubectl's current
    context (west): `login` logged in for east, and the command typed by hand printed east's
    credential as the one kubectl would get."""
    _profile(sandbox, f'[clusters.prod]\nissuer = "csr"\n'
                      f'bootstrap-token-file = "{sandbox.token_file}"\n')
    kubeconfig = _two_clusters(sandbox, current="west")
    whoami = sandbox.kubectl(kubectl, kubeconfig, "auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    assert sandbox.server.csr_creations == 1  # kubectl's credential, for west
    login = sandbox.run("login", "--cluster", "prod")
    assert login.returncode == 0 and "logged in as alice@example.com" in login.stderr
    by_hand = sandbox.run("--cluster", "prod")
    assert by_hand.returncode == 0, by_hand.stderr
    assert sandbox.server.csr_creations == 1  # both served kubectl's own entry
    served = json.loads(by_hand.stdout)["status"]["clientCertificateData"]
    again = sandbox.run("--cluster", "prod", exec_info=dict(sandbox.exec_info(), spec={
        "interactive": False, "cluster": yaml.safe_load(kubeconfig.read_text())["clusters"][1]
        ["cluster"]}))
    assert json.loads(again.stdout)["status"]["clientCertificateData"] == served
    doctor = json.loads(sandbox.run("doctor", "--cluster", "prod", "-o", "json").stdout)
    entry = next(c for c in doctor["checks"] if c["name"] == "exec entry")
    assert entry["status"] == "OK" and "context 'west'" in entry["detail"], entry


def test_by_hand_with_two_clusters_and_neither_current_asks_which(sandbox):
    _profile(sandbox, f'[clusters.prod]\nissuer = "csr"\n'
                      f'bootstrap-token-file = "{sandbox.token_file}"\n')
    _two_clusters(sandbox, current="admin")
    for command in (["--cluster", "prod"], ["login", "--cluster", "prod"]):
        result = sandbox.run(*command)
        assert result.returncode == 2 and result.stdout == ""
        error = one_error(result.stderr)
        assert error == ("cred-helper: error: the kubeconfig contexts 'east' and 'west' run "
                         "`cred-helper --cluster=prod` for different clusters, and kubectl's "
                         "current context 'admin' is none of them: which one is meant?")
        assert "`cred-helper login --cluster prod --context east`" in result.stderr
        assert "`kubectl config use-context east`" in result.stderr
    assert sandbox.server.csr_creations == 0
    assert sandbox.run("login", "--cluster", "prod", "--context", "west").returncode == 0


# ---- completion and help agree (item 9) -------------------------------------------------------

def _complete(sandbox, words: str) -> list[str]:
    env = {"_CRED_HELPER_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    done = sandbox.run(extra_env=env)
    return [line.split(",", 1)[1] for line in done.stdout.splitlines()]


def test_completion_offers_what_each_command_takes(sandbox):
    _profile(sandbox, '[clusters.prod]\n[clusters.preprod]\n[clusters.staging]\n')
    # Before: command names, since `--cluster` at the front belongs to the default command.
    assert _complete(sandbox, "cred-helper --cluster ") == ["preprod", "prod", "staging"]
    assert "--cluster" in _complete(sandbox, "cred-helper --cl")
    for command in ("status", "logout", "doctor", "get", "login"):
        assert _complete(sandbox, f"cred-helper {command} --cluster st") == ["staging"]
    # values with fixed alternatives complete in every command that takes them
    assert _complete(sandbox, "cred-helper --issuer ") == ["csr", "oidc"]
    assert _complete(sandbox, "cred-helper setup --issuer ") == ["csr", "oidc"]
    assert _complete(sandbox, "cred-helper login --cache k") == ["keyring"]
    assert _complete(sandbox, "cred-helper janitor --bare-pods ") == ["skip", "evict"]
    assert _complete(sandbox, "cred-helper status -o ") == ["table", "json"]
    assert _complete(sandbox, "cred-helper help ke") == ["keys"]
    assert _complete(sandbox, "cred-helper help keys ") == ["generate", "list", "public"]


def test_completion_in_a_real_bash(sandbox):
    _profile(sandbox, '[clusters.prod]\n[clusters.staging]\n')
    script = sandbox.run("completion", "bash").stdout
    (sandbox.root / "completion.bash").write_text(script)
    bash = ("source completion.bash; COMP_WORDS=(cred-helper --cluster ''); COMP_CWORD=2; "
            "_cred_helper_completion cred-helper; printf '%s\\n' \"${COMPREPLY[@]}\"")
    done = subprocess.run(["bash", "-c", bash], cwd=sandbox.root, capture_output=True,
                          text=True, timeout=60,
                          env={**sandbox.env, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"})
    assert done.stdout.split() == ["prod", "staging"], done.stderr


def test_one_install_line_per_shell(sandbox):
    from cred_helper.cli import COMPLETION_INSTALL

    readme = "\n".join((doccommands.ROOT / page).read_text() for page in doccommands.pages())
    shown = sandbox.run("completion", "--help").stdout
    everywhere = [line for line in readme.splitlines() if "cred-helper completion" in line
                  and (">" in line or "source" in line or "eval" in line)]
    # Before: `>> ~/.bashrc` in --help, a completions directory in the README.
    assert sorted(everywhere) == sorted(COMPLETION_INSTALL.values())
    for line in COMPLETION_INSTALL.values():
        assert line in shown
    assert ">> ~/.bashrc" not in sandbox.run("--help").stdout
