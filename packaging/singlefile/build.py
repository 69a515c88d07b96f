"""Builds the single-file cred-helper: a PEX in venv mode with a /bin/sh boot header.

    .venv/bin/python packaging/singlefile/build.py [--wheel WHEEL] [--output dist/cred-helper]

Why PEX (bench/channels.py measured shiv, PEX and PyInstaller on one machine, in one run;
docs/performance.md has the figures): the first run unpacks the file once into a venv under
~/.cache/pex, and from then on the `--sh-boot` header, a few lines of POSIX sh, execs that
venv's interpreter directly with `-IS`. A cache hit so costs one `sh` plus a start without
site processing. shiv imports its zip bootstrap (zipfile, hashlib, shutil ...) on
every run and PyInstaller's one-file mode unpacks everything into a temporary directory on
every run; both are several times slower on the hit path.

Two changes to PEX's header (`fast_header`):
- on a hit it execs the venv's own `bin/cred-helper` script, isolated and without site
  processing (`-IS`), instead of the venv's `__main__.py` with `-I`, whose PEX runner imports
  runpy, importlib.util and contextlib on every run (x1.42 of the venv script measured, against
  x1.0 with `-I` and x0.99 with `-IS`). The script finds the venv's site-packages itself
  (bin/cred-helper); a miss runs site processing for it (cred_helper/__main__.py);
- it exports the name it was run by as CRED_HELPER_RUN_AS, for `setup`.
The PEX stays a valid zip: Python finds a zip's members from its end, so the prefix may change
length.

Needs `build` and `pex` (the test extra has both). Python >= 3.10 on the target machine,
found on PATH by the header the first time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build_wheel(out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
                   check=True, stdout=subprocess.DEVNULL)
    (wheel,) = out.glob("cred_helper-*.whl")
    return wheel


def pex_command(wheel: Path, output: Path) -> list[str]:
    return [sys.executable, "-m", "pex", str(wheel),
            "--venv",                    # unpack once into a venv; later runs exec it
            "--sh-boot",                 # a sh header finds that venv without Python code
            # Named, so the header and PEX's runtime agree: by default the runtime honours
            # XDG_CACHE_HOME but the sh header looks in ~/.cache/pex only, and every run with
            # XDG_CACHE_HOME set then takes the 1.5 s slow path (measured by bench/channels.py).
            "--runtime-pex-root", "~/.cache/pex",
            "-e", "cred_helper.__main__:main",
            "--python-shebang", "/usr/bin/env python3",
            "-o", str(output)]


PEX_EXEC = b'exec "${INSTALLED_PEX}/bin/python" ${VENV_PYTHON_ARGS} "${INSTALLED_PEX}" \\\n'
# -IS, one word as on a shebang line: isolated and without site processing. bin/cred-helper
# then puts the venv's site-packages on sys.path itself; a miss runs site processing after all
# (cred_helper/__main__.py).
FAST_EXEC = b'exec "${INSTALLED_PEX}/bin/python" -IS "${INSTALLED_PEX}/bin/cred-helper" \\\n'


# The name it was run by, for `setup` (krew runs it as kubectl-cred_helper): PEX's own $PEX
# holds it on a hit but the resolved file on the first run, which unpacks.
SET_EU = b"set -eu\n"
RUN_AS = b'set -eu\nexport CRED_HELPER_RUN_AS="$0"\n'


def fast_header(pex: bytes) -> bytes:
    """The PEX with its sh header's hit branch pointed at the venv's cred-helper script and
    the name it was run by exported."""
    header, zip_start, rest = pex.partition(b"PK\x03\x04")
    if header.count(PEX_EXEC) != 1 or header.count(SET_EU) != 1:
        raise SystemExit("build: this PEX's sh header has no single venv exec line to point "
                         "at bin/cred-helper; pin pex to a version whose header has one")
    return header.replace(PEX_EXEC, FAST_EXEC).replace(SET_EU, RUN_AS) + zip_start + rest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--wheel", type=Path, help="a built wheel (else one is built here)")
    parser.add_argument("--output", type=Path, default=ROOT / "dist" / "cred-helper")
    args = parser.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or build_wheel(Path(tmp))
        subprocess.run(pex_command(wheel, args.output), check=True)
    args.output.write_bytes(fast_header(args.output.read_bytes()))
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
