"""A newcomer's first ten minutes: a bare command on a terminal, `login --cluster` with a profile
alone, misspelt and missing profiles, errors naming flag and profile key, key material on a
terminal, and shell completion."""

from __future__ import annotations

from tests.support.harness import CRED_HELPER, on_terminal, profile_kubeconfig


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
