"""Keys on a real PKCS#11 token (SoftHSM2): generated non-extractable, signing CSRs and JWTs
through the cryptography key objects, `cred-helper keys`, PINs, and every lookup error."""

from __future__ import annotations

import base64
import json
import os
import subprocess

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from cred_helper.errors import CredHelperError
from cred_helper.keys import pkcs11 as tokens
from cred_helper.keys.manage import generate
from tests.support.harness import (
    CRED_HELPER,
    as_kubectl_would,
    assert_no_secrets,
    on_terminal,
    one_error,
)
from tests.support.needs import needs
from tests.support.softhsm import MODULE, USER_PIN, SoftHSM, available, spy_module

pytestmark = needs(available(), "softhsm2 is installed by scripts/setup")
KINDS = ("p256", "ed25519", "rsa2048")


# ---- in this process: one module load, a fresh token per test --------------------------------

@pytest.fixture(scope="module")
def hsm(tmp_path_factory):
    box = SoftHSM(tmp_path_factory.mktemp("softhsm"))
    os.environ["SOFTHSM2_CONF"] = str(box.conf)  # read once, when the module initialises
    yield box
    os.environ.pop("SOFTHSM2_CONF", None)


@pytest.fixture
def token(hsm):
    label = hsm.new_token()
    tokens.load(MODULE).reinitialize()  # SoftHSM sees tokens made since it started
    return label


def _open(uri: str, pin_source: str = "env:PIN"):
    return tokens.open_key(uri, MODULE, pin_source, False, {"PIN": USER_PIN}, _no_prompt,
                           lambda m: None)


def _no_prompt(prompt: str) -> str:
    raise AssertionError("no prompt when not interactive")


def _session(label: str, rw: bool = False):
    lib = tokens.load(MODULE)
    token, info = tokens.find_token(lib, tokens.uris.parse(f"pkcs11:token={label}"), MODULE)
    return info, tokens.logged_in(token, info, "env:PIN", False, {"PIN": USER_PIN},
                                  _no_prompt, lambda m: None, lambda: 0, rw=rw)


def _generate(label: str, name: str, kind: str) -> str:
    info, opened = _session(label, rw=True)
    with opened as session:
        uri, _ = generate(session, info, name, None, kind)
    return uri


@pytest.mark.parametrize("kind", KINDS)
def test_token_keys_sign_csrs_and_jwts_that_verify(token, kind):
    uri = _generate(token, f"k-{kind}", kind)
    with _open(uri) as key:
        public = key.public_key()
        expected = {"p256": ec.EllipticCurvePrivateKey, "ed25519": ed25519.Ed25519PrivateKey,
                    "rsa2048": rsa.RSAPrivateKey}[kind]
        assert isinstance(key, expected)

        digest = None if kind == "ed25519" else hashes.SHA256()
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")]))
               .sign(key, digest))
        assert csr.is_signature_valid
        assert csr.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
            public.public_bytes(serialization.Encoding.DER,
                                serialization.PublicFormat.SubjectPublicKeyInfo)

        algorithm = {"p256": "ES256", "ed25519": "EdDSA", "rsa2048": "RS256"}[kind]
        token_jwt = jwt.encode({"sub": "alice"}, key, algorithm=algorithm)
        assert jwt.decode(token_jwt, public, algorithms=[algorithm]) == {"sub": "alice"}

        # and the raw signatures, as cryptography itself verifies them
        if kind == "p256":
            public.verify(key.sign(b"data", ec.ECDSA(hashes.SHA256())), b"data",
                          ec.ECDSA(hashes.SHA256()))
        elif kind == "ed25519":
            public.verify(key.sign(b"data"), b"data")
        else:
            public.verify(key.sign(b"data", padding.PKCS1v15(), hashes.SHA256()), b"data",
                          padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize("kind", KINDS)
def test_generated_private_keys_cannot_be_read(token, kind):
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    _generate(token, "secret", kind)
    _, opened = _session(token)
    with opened as session:
        (private,) = session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.EXTRACTABLE] is False
        secret = Attribute.VALUE if kind != "rsa2048" else Attribute.PRIVATE_EXPONENT
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            _ = private[secret]
    with _open(f"pkcs11:token={token};object=secret") as key, \
            pytest.raises(CredHelperError, match="cannot be read or exported"):
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())


def test_generate_refuses_to_overwrite(token):
    _generate(token, "mine", "p256")
    with pytest.raises(CredHelperError, match="does not overwrite"):
        _generate(token, "mine", "ed25519")


def test_lookup_errors_say_what_was_looked_for_and_found(token):
    _generate(token, "a", "p256")
    _generate(token, "b", "p256")
    def fails(uri: str, match: str) -> None:
        with pytest.raises(CredHelperError, match=match), _open(uri):
            pass

    fails(f"pkcs11:token={token}", r"2 private keys match any key on .*'a' \(id %01")
    fails(f"pkcs11:token={token};object=c",
          r"no private key matching object=c .*private keys there: 'a'")
    fails("pkcs11:token=absent;object=a",
          rf"no token matching token=absent in {MODULE}; tokens present: .*'{token}'")
    with _open(f"pkcs11:token={token};object=b") as key:
        assert isinstance(key, ec.EllipticCurvePrivateKey)


# ---- through the command, each run its own process and token directory --------------------

@pytest.fixture
def box(tmp_path):
    hsm = SoftHSM(tmp_path / "hsm")
    hsm.label = hsm.new_token("ci")  # type: ignore[attr-defined]
    return hsm


def _cli(box, *args, module=MODULE, spy=False, pin=USER_PIN):
    env = {"PATH": os.environ["PATH"], "HOME": str(box.root),
           **(box.spy_env() if spy else box.env), "PIN": pin}
    return subprocess.run(as_kubectl_would(CRED_HELPER, *args, f"--pkcs11-module={module}"),
                          env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_keys_generate_list_public(box):
    made = _cli(box, "keys", "generate", "pkcs11:token=ci;object=oncall%20key;id=%09",
                "--type=ed25519", "--pin-source=env:PIN")
    assert made.returncode == 0, made.stderr
    assert made.stdout == "pkcs11:token=ci;object=oncall%20key;id=%09\n"

    listed = _cli(box, "keys", "list", "--login", "--pin-source=env:PIN")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines() if line.startswith("ci ")]
    assert [r[:2] + r[3:] for r in rows] == [
        ["ci", "oncall", "%09", "ed25519", "private", "no",
         "pkcs11:token=ci;object=oncall%20key;id=%09"],
        ["ci", "oncall", "%09", "ed25519", "public", "-",
         "pkcs11:token=ci;object=oncall%20key;id=%09"]]

    jwk = json.loads(_cli(box, "keys", "public", made.stdout.strip(), "--format=jwk").stdout)
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and len(jwk["kid"]) == 43
    pem = _cli(box, "keys", "public", made.stdout.strip()).stdout
    public = serialization.load_pem_public_key(pem.encode())
    assert base64.urlsafe_b64encode(public.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode().rstrip("=") == \
        jwk["x"]
    ssh = _cli(box, "keys", "public", made.stdout.strip(), "--format=ssh").stdout
    assert ssh.startswith("ssh-ed25519 ") and ssh.endswith(" ci/oncall key\n")

    again = _cli(box, "keys", "generate", "pkcs11:token=ci;object=other;id=%09",
                 "--pin-source=env:PIN")
    assert again.returncode == 1 and "does not overwrite" in one_error(again.stderr)


def test_keys_public_warns_before_printing_to_a_terminal(box):
    """On a terminal the warning comes first; into a pipe (above) or a file, no warning."""
    uri = "pkcs11:token=ci;object=shown"
    assert _cli(box, "keys", "generate", uri, "--pin-source=env:PIN").returncode == 0
    piped = _cli(box, "keys", "public", uri)
    assert piped.returncode == 0 and piped.stderr == ""
    code, seen = on_terminal([CRED_HELPER, "keys", "public", uri, f"--pkcs11-module={MODULE}"],
                             {"PATH": os.environ["PATH"], "HOME": str(box.root), **box.env})
    assert code == 0, seen
    warning = seen.index("printing key material to the terminal: this is the PUBLIC half")
    assert warning < seen.index("-----BEGIN PUBLIC KEY-----")
    assert seen[seen.index("-----BEGIN PUBLIC KEY-----"):] == piped.stdout


@needs(spy_module() is not None, "pkcs11-spy (opensc-pkcs11) is installed by scripts/setup")
def test_a_wrong_pin_is_tried_once_and_reported_with_the_tokens_word(box):
    made = _cli(box, "keys", "generate", "pkcs11:token=ci;object=k", "--pin-source=env:PIN")
    assert made.returncode == 0, made.stderr
    assert "tries" not in _token_line(box), "no failed login yet"

    wrong = _cli(box, "keys", "list", "--login", "--pin-source=env:PIN", module=spy_module(),
                 spy=True, pin="000000")
    assert wrong.returncode == 1
    assert "rejected the PIN; the token says few tries are left" in one_error(wrong.stderr)
    assert "never retries" in wrong.stderr
    assert box.calls("C_Login") == 1, "one login attempt, never a second"
    assert_no_secrets(wrong.stderr, "000000", USER_PIN)
    # SoftHSM has no retry counter to read, only CKF_USER_PIN_COUNT_LOW: it moved.
    assert _token_line(box).endswith(": the token says few tries are left")


def _token_line(box) -> str:
    """What `keys list` says of the token, its PIN state included (read without a login)."""
    listed = _cli(box, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    return next(line for line in listed.stdout.splitlines() if line.startswith("token 'ci'"))


@pytest.mark.parametrize(("flag", "expected"), [
    (tokens.CKF_USER_PIN_LOCKED, "is locked; cred-helper will not try it"),
    (tokens.CKF_USER_PIN_FINAL_TRY, "has one PIN try left; cred-helper will not spend it"),
])
def test_locked_and_final_try_tokens_are_not_tried(box, flag, expected):
    box.add_token_flags("ci", flag)
    result = _cli(box, "keys", "list", "--login", "--pin-source=env:PIN",
                  module=spy_module() or MODULE, spy=spy_module() is not None)
    assert result.returncode == 1
    assert expected in one_error(result.stderr)
    assert box.calls("C_Login") == 0


@pytest.mark.parametrize(("args", "expected"), [
    (["keys", "list", "--pkcs11-module=/nonexistent/libykcs11.so"],
     "the PKCS#11 module /nonexistent/libykcs11.so does not exist"),
    (["keys", "list", "--pkcs11-module=/etc/hostname"], "cannot be loaded as a PKCS#11 module"),
    (["keys", "public", "pkcs11:token=absent;object=k"], "no token matching token=absent"),
    (["keys", "public", "pkcs11:token=ci;object=k;object=j"], "object is given twice"),
    (["keys", "public", "token=ci"], "does not start with pkcs11:"),
    (["keys", "public", "pkcs11:token=ci;id=%zz"], "two hex digits"),
    (["keys", "public", "pkcs11:token=ci?pin-value=123456"], "pin-value are refused"),
    (["keys", "public", "pkcs11:token=ci;object=nothing"], "no key matching object=nothing"),
    (["keys", "list", "--login", "--pin-source=stdin"], "is not prompt, env:VAR"),
])
def test_clear_errors(box, args, expected):
    module = next((a.split("=", 1)[1] for a in args if a.startswith("--pkcs11-module=")),
                  MODULE)
    result = _cli(box, *[a for a in args if not a.startswith("--pkcs11-module=")],
                  module=module)
    assert result.returncode in (1, 2)
    assert expected in one_error(result.stderr)
    assert_no_secrets(result.stderr, USER_PIN)


def test_ambiguous_key_uri(box):
    for name in ("a", "b"):
        assert _cli(box, "keys", "generate", f"pkcs11:token=ci;object={name}",
                    "--pin-source=env:PIN").returncode == 0
    result = _cli(box, "keys", "public", "pkcs11:token=ci", "--format=jwk")
    assert result.returncode == 1
    assert "2 keys match any key" in one_error(result.stderr)


def test_prompt_without_a_terminal_is_a_clear_error(box):
    result = _cli(box, "keys", "list", "--login")
    assert result.returncode == 1
    assert "needs its PIN, and there is no terminal" in one_error(result.stderr)


def test_the_prompt_asks_on_the_terminal_without_echo(box):
    """With a terminal, --pin-source prompt asks there; what is typed is not shown."""
    import pty
    import select

    assert _cli(box, "keys", "generate", "pkcs11:token=ci;object=k",
                "--pin-source=env:PIN").returncode == 0
    env = {"PATH": os.environ["PATH"], "HOME": str(box.root), **box.env}
    pid, fd = pty.fork()
    if pid == 0:  # the child: cred-helper on the pseudo-terminal
        os.execve(CRED_HELPER, [CRED_HELPER, "keys", "list", "--login",
                                f"--pkcs11-module={MODULE}"], env)
    seen = b""

    def read_until(marker: bytes) -> None:
        nonlocal seen
        while marker not in seen:
            ready, _, _ = select.select([fd], [], [], 20)
            assert ready, seen
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                return
            if not chunk:
                return
            seen += chunk

    read_until(b"PIN for 'ci'")
    os.write(fd, USER_PIN.encode() + b"\n")
    read_until(b"\x00")  # never printed: reads to the end of output
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert USER_PIN.encode() not in seen, "the PIN was echoed"
    assert b"private" in seen, "logged in: private keys are listed"
