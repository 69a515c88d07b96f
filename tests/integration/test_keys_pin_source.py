"""`keys list` with a URI that names its own PIN source, and the hint of a refused
`keys generate`, on a real SoftHSM2 token."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.harness import CRED_HELPER, as_kubectl_would, assert_no_secrets, one_error
from tests.support.needs import needs
from tests.support.softhsm import MODULE, USER_PIN, SoftHSM, available

pytestmark = needs(available(), "SoftHSM2 is installed by scripts/setup")


@pytest.fixture
def hsm(tmp_path):
    box = SoftHSM(tmp_path / "hsm")
    box.new_token("ci")
    return box


def _cli(hsm, *args, pin=""):
    env = {"PATH": os.environ["PATH"], "HOME": str(hsm.root), **hsm.env, "PIN": pin}
    return subprocess.run(as_kubectl_would(CRED_HELPER, *args, f"--pkcs11-module={MODULE}"),
                          env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_keys_list_uses_the_uris_pin_source(hsm, tmp_path):
    made = _cli(hsm, "keys", "generate", "pkcs11:token=ci;object=k;id=%01", "--pin-source=env:PIN",
                pin=USER_PIN)
    assert made.returncode == 0, made.stderr
    pin_file = tmp_path / "pin"
    pin_file.write_text(USER_PIN + "\n")
    pin_file.chmod(0o600)
    # No --pin-source: the default (prompt) has no terminal here, so only the URI's source works.
    listed = _cli(hsm, "keys", "list", "--login", f"pkcs11:token=ci?pin-source=file:{pin_file}")
    assert listed.returncode == 0, listed.stderr
    assert any(line.split()[4:6] == ["private", "no"] for line in listed.stdout.splitlines()
               if line.startswith("ci ")), listed.stdout
    assert_no_secrets(listed.stdout + listed.stderr, USER_PIN)

    pin_file.chmod(0o644)  # a PIN file others can read is refused, and says chmod 600
    refused = _cli(hsm, "keys", "list", "--login", f"pkcs11:token=ci?pin-source=file:{pin_file}")
    assert refused.returncode == 1
    assert str(pin_file) in one_error(refused.stderr)
    assert f"hint: chmod 600 {pin_file}" in refused.stderr


def test_a_refused_generate_names_options_that_exist(hsm):
    args = ("keys", "generate", "pkcs11:token=ci;object=k;id=%01", "--pin-source=env:PIN")
    assert _cli(hsm, *args, pin=USER_PIN).returncode == 0
    again = _cli(hsm, *args, pin=USER_PIN)
    assert again.returncode == 1 and "does not overwrite" in one_error(again.stderr)
    hint = again.stderr.split("hint: ", 1)[1]
    assert "object=" in hint and "id=" in hint
    for named in ("--label", "--id"):
        assert named not in hint
    help_text = _cli(hsm, "keys", "generate", "--help").stdout
    assert all(flag in help_text for flag in ("--type", "--pin-source", "--pkcs11-module"))
