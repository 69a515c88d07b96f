"""The documentation as tests read it: its pages, their sections by heading, their fenced
blocks, and the commands of each ```sh block as a person would type them.

A test that runs a page's commands takes them from the page with `block(page, heading)`, so
that what it runs is what the page shows; tests/docs/test_commands.py finds those calls and
fails for any ```sh block that no test takes and that is not listed as not runnable here."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOP_PAGES = ("README.md", "CONTRIBUTING.md", "CHANGELOG.md")
# a fence's language says what it holds: commands to type (sh), output (text), files, diagrams
LANGUAGES = frozenset({"sh", "text", "yaml", "toml", "json", "mermaid", "python", "ini"})

_NO_KUBELET = ("attaches to a container: there is no kubelet or container runtime here "
               "(tests/realcluster/test_debug_workflow.py runs it with --attach=false)")
_YUBIKEY = "needs a YubiKey (tests/integration/test_attest.py runs the same path on SoftHSM2)"
_NO_RUNTIME = "builds or pushes an image: there is no container runtime or registry here"
_STATIC_TOKENS = ("edits the static token file of a control plane's kube-apiserver, which "
                  "reads it only when it restarts")
# Commands the pages show that cannot run on these machines, and why. Keep it short: every
# other command of a ```sh block is run by a test that takes it from its page.
NOT_RUNNABLE: dict[str, str] = {
    "scripts/test": "the whole suite: CI runs it (.ci/run); inside the suite it would run itself",
    "kubectl debug -n shop shop-x7k2p -it --image=nicolaka/netshoot -c netshoot --target=app "
    "-- tcpdump -i any -c 100": _NO_KUBELET,
    "kubectl debug -n shop shop-x7k2p --copy-to=shop-x7k2p-debug --image=nicolaka/netshoot "
    "--custom=profile.json -c debugger -it -- sh": _NO_KUBELET,
    "ykman piv keys generate --algorithm ECCP256 --pin-policy ONCE --touch-policy CACHED 9a "
    "pub.pem": _YUBIKEY,
    'ykman piv certificates generate --subject "CN=alice" 9a pub.pem': _YUBIKEY,
    "cred-helper login --cluster prod --attest-with "
    "'pkcs11:token=YubiKey%20PIV%20%2312345678;id=%01' "
    "--pkcs11-module /usr/lib/x86_64-linux-gnu/libykcs11.so.2": _YUBIKEY,
    "token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')": _STATIC_TOKENS,
    'echo "$token,alice@example.com,alice,\\"oncall,oncall-bootstrap\\"" >> '
    "/etc/kubernetes/tokens.csv": _STATIC_TOKENS,
    "printf '%s\\n' \"$token\" > alice.token   # hand it over privately": _STATIC_TOKENS,
    'podman build -f packaging/Containerfile -t "$IMAGE:$VERSION" .': _NO_RUNTIME,
    'podman push "$IMAGE:$VERSION"': _NO_RUNTIME,
    "kubectl -n cred-helper rollout status deployment/cred-helper-approver":
        "waits for the approver's pods to be ready: there is no kubelet here to run them",
    'cred-helper completion zsh > "${fpath[1]}/_cred-helper"':
        "zsh's $fpath: there is no zsh on these machines",
}

_FENCE = re.compile(r"^(\s*)(`{3,})(.*)$")
_HEADING = re.compile(r"^(#{1,6}) (.*?)\s*$")
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")


def pages() -> list[str]:
    """Every page, as a path relative to the checkout."""
    found = [p for p in TOP_PAGES if (ROOT / p).exists()]
    found += sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))
    return found


@dataclass(frozen=True)
class Block:
    page: str
    heading: str  # the nearest heading above it, as written (without the #s)
    lang: str
    text: str
    line: int  # of its opening fence, 1-based

    @property
    def commands(self) -> list[str]:
        """The commands of an sh block: a line ending in a backslash goes on, a heredoc's body
        belongs to its command, and a line that is only a comment is dropped."""
        out: list[str] = []
        lines = self.text.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            i += 1
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            command = line
            while command.endswith("\\") and i < len(lines):
                command = command[:-1].rstrip() + " " + lines[i].strip()
                i += 1
            for _, marker in _HEREDOC.findall(command):
                while i < len(lines):
                    command += "\n" + lines[i]
                    i += 1
                    if lines[i - 1].strip() == marker:
                        break
            while i < len(lines) and not _complete(command):  # `for ...; do` up to `done`
                command += "\n" + lines[i]
                i += 1
            out.append(command)
        return out

    @property
    def runnable(self) -> list[str]:
        """Its commands less those NOT_RUNNABLE here: what a test that takes it runs."""
        return [c for c in self.commands if c not in NOT_RUNNABLE]

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line} ({self.heading})"


def _complete(command: str) -> bool:
    """Whether bash reads `command` as whole (a loop's `done` is not still to come)."""
    return subprocess.run(["bash", "-n", "-c", command], capture_output=True).returncode == 0


def blocks(page: str) -> list[Block]:
    """The fenced blocks of one page, in order."""
    found: list[Block] = []
    heading = ""
    fence: tuple[str, str, int, list[str], str] | None = None
    for number, line in enumerate((ROOT / page).read_text().splitlines(), 1):
        match = _FENCE.match(line)
        if fence is not None:
            indent, ticks, start, body, lang = fence
            if match and match.group(2) == ticks and not match.group(3).strip():
                found.append(Block(page, heading, lang, "\n".join(body) + "\n", start))
                fence = None
            else:
                body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            continue
        if match:
            info = match.group(3).strip()
            lang = info.split()[0] if info else ""
            fence = (match.group(1), match.group(2), number, [], lang)
            continue
        if (head := _HEADING.match(line)) is not None:
            heading = head.group(2)
    return found


def block(page: str, heading: str, lang: str = "sh", index: int = 0) -> Block:
    """The `index`-th block in `lang` under `heading` on `page` (before the next heading)."""
    matching = [b for b in blocks(page) if b.heading == heading and b.lang == lang]
    assert len(matching) > index, f"{page} has no {lang} block {index} under {heading!r}"
    return matching[index]


def section(page: str, heading: str) -> str:
    """The text under a heading, up to the next heading of the same or a higher level."""
    lines = (ROOT / page).read_text().splitlines()
    for i, line in enumerate(lines):
        head = _HEADING.match(line)
        if head and head.group(2) == heading:
            level = len(head.group(1))
            end = next((j for j in range(i + 1, len(lines))
                        if (h := _HEADING.match(lines[j])) and len(h.group(1)) <= level
                        and not _in_fence(lines, j)), len(lines))
            return "\n".join(lines[i + 1:end]) + "\n"
    raise AssertionError(f"{page} has no heading {heading!r}")


def _in_fence(lines: list[str], j: int) -> bool:
    ticks = 0
    for line in lines[:j]:
        if _FENCE.match(line):
            ticks += 1
    return ticks % 2 == 1


def run(command: str, *, cwd: Path, env: dict[str, str], replace: dict[str, str] | None = None,
        timeout: float = 120, stdin: str = "") -> subprocess.CompletedProcess:
    """One command as a person types it into bash, with `replace` applied first (the page's
    example server becomes the test's own, say); stdout and stderr are captured."""
    for old, new in (replace or {}).items():
        command = command.replace(old, new)
    # the trailing `:` keeps bash from exec-ing the command: each command a person types has
    # its shell as parent, never this test process (cred-helper's 401 rule looks at parents)
    return subprocess.run(["bash", "-c", f"set -euo pipefail\n{command}\n:"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, input=stdin)


def start(command: str, *, cwd: Path, env: dict[str, str],
          replace: dict[str, str] | None = None) -> subprocess.Popen:
    """A command that runs until stopped (a broker, say), started as `run` runs one; its
    stdout and stderr are pipes, in text."""
    for old, new in (replace or {}).items():
        command = command.replace(old, new)
    return subprocess.Popen(["bash", "-c", f"set -euo pipefail\n{command}\n:"], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
