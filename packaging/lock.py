"""Writes packaging/lock.json: cred-helper's runtime dependencies, resolved, with sdists.

    .venv/bin/python packaging/lock.py

Resolves the runtime dependencies as a user's install would (cred-helper into a clean venv,
then `pip freeze`), and records each as name, version, and its sdist's URL and sha256 from
PyPI's JSON API. The Homebrew formula is generated from this file (packaging/homebrew/
generate.py): Homebrew builds every resource from source, so sdists, not wheels.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "packaging" / "lock.json"


def resolve() -> list[tuple[str, str]]:
    """(name, version) of every package a clean install of cred-helper brings in."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "venv", tmp], check=True)
        pip = [f"{tmp}/bin/python", "-m", "pip", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "install", str(ROOT)], check=True)
        frozen = subprocess.run([*pip, "freeze", "--all"], check=True, capture_output=True,
                                text=True).stdout
    pins = []
    for line in frozen.splitlines():
        name, sep, version = line.partition("==")
        if sep and name.lower() not in ("cred-helper", "cred_helper", "pip", "setuptools"):
            pins.append((name, version))
    return sorted(pins, key=lambda pin: pin[0].lower())


def public_url(url: str) -> str:
    """The file's public address. Some PyPI mirrors answer with a path relative to
    themselves (`../../packages/packages/45/37/<hash>/name.tar.gz`); the part after
    `packages/` is the same blob path files.pythonhosted.org serves."""
    if url.startswith("https://"):
        return url
    _, sep, blob = url.partition("packages/packages/")
    if not sep:
        raise SystemExit(f"lock: cannot tell the public address of {url!r}")
    return f"https://files.pythonhosted.org/packages/{blob}"


def sdist(name: str, version: str) -> dict[str, str]:
    # The project document lists every release (the per-version one is not served everywhere).
    url = f"https://pypi.org/pypi/{name}/json"
    with urllib.request.urlopen(url, timeout=30) as response:
        project = json.load(response)
    for file in project.get("releases", {}).get(version, []):
        if file.get("packagetype") == "sdist":
            return {"name": name, "version": version, "url": public_url(file["url"]),
                    "sha256": file["digests"]["sha256"]}
    raise SystemExit(f"lock: {name} {version} has no sdist on PyPI")


def main() -> int:
    entries = [sdist(name, version) for name, version in resolve()]
    LOCK.write_text(json.dumps({"python": f"{sys.version_info[0]}.{sys.version_info[1]}",
                                "packages": entries}, indent=2) + "\n")
    print(f"{LOCK}: {len(entries)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
