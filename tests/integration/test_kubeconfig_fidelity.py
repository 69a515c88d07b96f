"""setup leaves every entry of a kubeconfig exactly as kubectl read it before (issue 21, 1).

A kubeconfig written by kubectl itself, full of values YAML readers disagree on (`"1e3"`, `"y"`,
`"0o17"`, `1:20` ...), in several forms (as kubectl writes it, with comments, CRLF and a BOM,
plain scalars Go reads as strings, JSON, flow style with anchors). Real kubectl reads it before
and after setup (`config view --raw -o json`); the two are compared entry by entry, then kubectl
uses setup's context against the local API server and a foreign context's namespace.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from cred_helper import goyaml
from tests.integration.test_setup import base, setup
from tests.support.harness import CRED_HELPER
from tests.unit.test_goyaml import TABLE

pytestmark = pytest.mark.kubectl

# values YAML readers disagree on (the issue's, and more)
AMBIGUOUS = ["1e3", "y", "n", "Y", "12E5", "0o17", "5e-3", "1:20", "on", "NO", "null", "~",
             "true", "012", "0x1F", "08", "2001-12-14", ".5", "+12", "1_000", "0b101", "-.inf"]
SECRET = "corpus-secret-token-0123456789"


def run_kubectl(kubectl_path: str, kubeconfig: Path, *args: str, home: Path
                ) -> subprocess.CompletedProcess:
    """kubectl with this HOME (and the XDG directories a sandbox keeps under it)."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "KUBECONFIG": str(kubeconfig),
           "XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache")}
    return subprocess.run([kubectl_path, *args], env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def view(kubectl_path: str, kubeconfig: Path, home: Path) -> dict:
    done = run_kubectl(kubectl_path, kubeconfig, "config", "view", "--raw", "-o", "json", home=home)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _numbers_as_floats(value):
    # kubectl prints 2**64 as 18446744073709552000 (a float64): compare numbers as floats
    if isinstance(value, dict):
        return {k: _numbers_as_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_as_floats(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def test_plain_scalars_are_typed_as_kubectl_types_them(tmp_path, kubectl):
    """goyaml's reading, checked against kubectl's: an extension keeps any YAML value."""
    plain = [t for t, _ in TABLE if t not in ("-",)] + [
        "0X1f", "-0x10", "+0o7", "1.5e+3", "-1.", "0b", "1_0_0", "007", "-012", "0.1e-2",
        "9223372036854775807", "9223372036854775808", "-9223372036854775809", "yes!", "~x",
        "2001-1-2", "12:30:45", "1e3x", ".nan"]
    lines = ["apiVersion: v1", "kind: Config", "extensions:", "- name: probe", "  extension:"]
    lines += [f"    k{i}: {text}" for i, text in enumerate(plain) if text != ".nan"]
    path = tmp_path / "config"
    path.write_text("\n".join(lines) + "\n")
    seen = view(kubectl, path, tmp_path)["extensions"][0]["extension"]
    ours = goyaml.load(path.read_text())["extensions"][0]["extension"]
    assert _numbers_as_floats(ours) == _numbers_as_floats(seen)
    # a NaN cannot be JSON: kubectl refuses the file, and so does goyaml
    path.write_text("\n".join(lines[:5]) + "\n    k: .nan\n")
    assert run_kubectl(kubectl, path, "config", "view", home=tmp_path).returncode != 0
    with pytest.raises(goyaml.NotJSON):
        goyaml.load(path.read_text())


def kubectl_written(kubectl_path: str, path: Path, home: Path) -> None:
    """A kubeconfig that kubectl writes itself, with every ambiguous value in a string field."""
    def run(*args: str) -> None:
        done = run_kubectl(kubectl_path, path, "config", *args, home=home)
        assert done.returncode == 0, done.stderr

    run("set-cluster", "1e3", "--server=https://y.example:6443")
    run("set-credentials", "n", f"--token={SECRET}")
    exec_args = [f"--exec-arg={v}" for v in AMBIGUOUS[:6]]
    exec_env = [f"--exec-env=V{i}={v}" for i, v in enumerate(AMBIGUOUS)]
    run("set-credentials", "execuser", "--exec-command=1:20",
        "--exec-api-version=client.authentication.k8s.io/v1", *exec_args, *exec_env)
    for i, value in enumerate(AMBIGUOUS):
        run("set-context", "--cluster=1e3", "--user=n", f"--namespace={value}", "--", value)
        run("set-context", f"ctx{i}", "--cluster=1e3", "--user=execuser",
            f"--namespace={AMBIGUOUS[-1 - i]}")
    run("use-context", "y")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, kubectl) -> str:
    home = tmp_path_factory.mktemp("corpus")
    kubectl_written(kubectl, home / "config", home)
    return (home / "config").read_text(encoding="utf-8")


def with_comments(text: str) -> str:
    out = ["# kept: a comment above everything"]
    for line in text.splitlines():
        out.append(line + ("  # trailing" if line.endswith(":") else ""))
        if not line.startswith((" ", "-")):
            out.append("# between top-level keys")
    return "\n".join(out) + "\n"


def crlf_bom(text: str) -> str:
    return "\ufeff" + text.replace("\n", "\r\n")


def go_strings_unquoted(text: str) -> str:
    # Go reads these plain scalars as strings (PyYAML does not: 1:20 is 80 to it)
    return re.sub(r'"(1:20|2001-12-14)"', r"\1", text)


def as_json(text: str) -> str:
    return json.dumps(goyaml.load(text), indent=1)


def flow_and_anchors(text: str) -> str:
    """Every list in flow style, the token user written once and referred to by an alias."""
    doc = goyaml.load(text)
    users = [u for u in doc["users"] if u["name"] != "n"]
    lines = [f"apiVersion: {goyaml.scalar(doc['apiVersion'])}", "kind: Config",
             f"current-context: {goyaml.scalar(doc['current-context'])}",
             "shared: &tokenuser {" + f'"token": {goyaml.scalar(SECRET)}' + "}",
             f"clusters: {goyaml.scalar(doc['clusters'])}",
             "users: [{name: \"n\", user: *tokenuser}, "
             + ", ".join(goyaml.scalar(u) for u in users) + "]",
             "contexts: [",
             *[f"  {goyaml.scalar(c)}," for c in doc["contexts"]],
             "]"]
    return "\n".join(lines) + "\n"


STYLES = {"as-kubectl-wrote-it": lambda t: t, "comments": with_comments, "crlf-bom": crlf_bom,
          "go-strings-unquoted": go_strings_unquoted, "json": as_json,
          "flow-and-anchors": flow_and_anchors}


def entries(doc: dict, section: str) -> dict:
    return {item["name"]: item for item in doc.get(section) or []}


def _within(old: str, new: str) -> bool:
    """`old`'s characters appear in `new` in order (only insertions between them)."""
    rest = iter(new)
    return all(ch in rest for ch in old)


def assert_kept(before: dict, after: dict, added: dict[str, set[str]]) -> None:
    """kubectl's two readings, entry by entry: every old entry unchanged, exactly `added` new."""
    for section in ("clusters", "users", "contexts"):
        old, new = entries(before, section), entries(after, section)
        for name, item in old.items():
            assert new.get(name) == item, (section, name)
        assert set(new) - set(old) == added[section], section
    for field in ("current-context", "preferences", "extensions"):
        assert after.get(field) == before.get(field)


SETUP_ADDS = {"clusters": {"local"}, "users": {"cred-helper-local"}, "contexts": {"local"}}


def only_insertions(before: str, after: str) -> None:
    """Every character of the old file is still there, in order: setup only added text (or
    turned kubectl's `clusters: null` into the list it starts)."""
    old, new = before.splitlines(), after.splitlines()
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False
                                                      ).get_opcodes():
        if op in ("equal", "insert"):
            continue
        nulls = all(re.fullmatch(r"\w+: null", ln) for ln in old[i1:i2])
        assert op == "replace" and (nulls or _within("\n".join(old[i1:i2]),
                                                     "\n".join(new[j1:j2]))), \
            (op, old[i1:i2], new[j1:j2])


@pytest.mark.parametrize("style", STYLES)
def test_setup_keeps_every_entry_as_kubectl_read_it(sandbox, kubectl, corpus, style):
    home = sandbox.root
    config = home / ".kube" / "config"
    config.parent.mkdir()
    original = STYLES[style](corpus)
    config.write_bytes(original.encode("utf-8"))
    config.chmod(0o600)
    before = view(kubectl, config, home)

    done = setup(sandbox, *base(sandbox))
    assert done.returncode == 0, done.stderr
    assert_kept(before, view(kubectl, config, home), SETUP_ADDS)
    text = config.read_bytes().decode("utf-8")
    assert text.startswith("\ufeff") == original.startswith("\ufeff")
    if style != "json":
        only_insertions(original, text)
    else:
        assert json.loads(text)  # still JSON, for the tools that read it as JSON

    # kubectl uses setup's context (a real call) and a foreign one's ambiguous namespace
    whoami = run_kubectl(kubectl, config, "--context=local", "auth", "whoami", "-o",
                     "jsonpath={.status.userInfo.username}", home=home)
    assert whoami.returncode == 0 and whoami.stdout == "alice@example.com", whoami.stderr
    for name in ("1e3", "0o17", "1:20"):
        ns = run_kubectl(kubectl, config, f"--context={name}", "config", "view", "--minify",
                     "-o", "jsonpath={.contexts[0].context.namespace}", home=home)
        assert ns.returncode == 0 and ns.stdout == name, ns.stderr

    again = setup(sandbox, *base(sandbox))
    assert again.returncode == 0, again.stderr
    assert config.read_bytes().decode("utf-8") == text  # idempotent, byte for byte


def test_overwrite_replaces_the_whole_entry(sandbox, kubectl):
    """Nothing of the old cluster or user survives --overwrite: no old CA file, skip-verify,
    server name, token or auth provider that kubectl would still use."""
    home = sandbox.root
    config = home / ".kube" / "config"
    config.parent.mkdir()
    config.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n"
        "    server: https://old.example:6443\n    insecure-skip-tls-verify: true\n"
        "    tls-server-name: old.example\n    proxy-url: http://127.0.0.1:9\n"
        "users:\n- name: cred-helper-local\n  user:\n"
        f"    token: {SECRET}\n    auth-provider:\n      name: oidc\n      config: {{}}\n"
        "    exec:\n      command: cred-helper\n      args: [--cluster=old]\n"
        "      apiVersion: client.authentication.k8s.io/v1\n"
        "contexts:\n- name: local\n  context: {cluster: local, user: someone, namespace: x}\n")
    refused = setup(sandbox, *base(sandbox))
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    done = setup(sandbox, *base(sandbox), "--overwrite")
    assert done.returncode == 0, done.stderr
    after = view(kubectl, config, home)
    cluster = entries(after, "clusters")["local"]["cluster"]
    assert set(cluster) == {"server", "certificate-authority-data"}
    user = entries(after, "users")["cred-helper-local"]["user"]
    assert set(user) == {"exec"} and user["exec"]["command"] == CRED_HELPER
    assert entries(after, "contexts")["local"]["context"] == {"cluster": "local",
                                                              "user": "cred-helper-local"}
    assert SECRET not in config.read_text()
    whoami = run_kubectl(kubectl, config, "--context=local", "auth", "whoami", home=home)
    assert whoami.returncode == 0, whoami.stderr
