"""SoftHSM2 tokens for tests: a private token directory (its own SOFTHSM2_CONF) and fresh
tokens in it, and OpenSC's pkcs11-spy in front of the module to count calls such as C_Login."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import uuid
from pathlib import Path

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
USER_PIN, SO_PIN = "123456", "12345678"


def available() -> bool:
    return os.path.exists(MODULE) and bool(_which("softhsm2-util"))


def spy_module() -> str | None:
    found = sorted(glob.glob("/usr/lib/*/pkcs11/pkcs11-spy.so"))
    return found[0] if found else None


def _which(name: str) -> str | None:
    from shutil import which

    return which(name)


class SoftHSM:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "tokens").mkdir(parents=True, exist_ok=True)
        self.conf = root / "softhsm2.conf"
        self.conf.write_text(f"directories.tokendir = {root / 'tokens'}\n"
                             "objectstore.backend = file\nlog.level = ERROR\n")
        self.spy_log = root / "spy.log"

    @property
    def env(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf)}

    def spy_env(self) -> dict[str, str]:
        """Environment for loading pkcs11-spy.so, which logs every call, then SoftHSM's."""
        return {**self.env, "PKCS11SPY": MODULE, "PKCS11SPY_OUTPUT": str(self.spy_log)}

    def calls(self, name: str) -> int:
        if not self.spy_log.exists():
            return 0
        return sum(1 for line in self.spy_log.read_text(errors="replace").splitlines()
                   if line.split(": ", 1)[-1] == name)

    def new_token(self, label: str | None = None) -> str:
        label = label or f"t-{uuid.uuid4().hex[:8]}"
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label,
                        "--pin", USER_PIN, "--so-pin", SO_PIN], env={**os.environ, **self.env},
                       check=True, capture_output=True)
        return label

    def import_certificate(self, token: str, der: bytes, label: str, cka_id: bytes) -> None:
        """Store an X.509 certificate object on a token, as ykcs11 shows a YubiKey's PIV
        certificates (its attestations among them). In a child process: SoftHSM reads
        SOFTHSM2_CONF once per process."""
        script = (
            "import sys, pkcs11\n"
            "from cryptography import x509\n"
            "from pkcs11 import Attribute, ObjectClass, CertificateType\n"
            "module, token, pin, label, cka_id = sys.argv[1:6]\n"
            "der = sys.stdin.buffer.read()\n"
            "subject = x509.load_der_x509_certificate(der).subject.public_bytes()\n"
            "t = pkcs11.lib(module).get_token(token_label=token)\n"
            "with t.open(rw=True, user_pin=pin) as s:\n"
            "    s.create_object({Attribute.CLASS: ObjectClass.CERTIFICATE,\n"
            "        Attribute.CERTIFICATE_TYPE: CertificateType.X_509, Attribute.TOKEN: True,\n"
            "        Attribute.PRIVATE: False, Attribute.LABEL: label,\n"
            "        Attribute.ID: bytes.fromhex(cka_id), Attribute.VALUE: der,\n"
            "        Attribute.SUBJECT: subject})\n")
        done = subprocess.run([sys.executable, "-c", script, MODULE, token, USER_PIN, label,
                               cka_id.hex()], input=der, env={**os.environ, **self.env},
                              capture_output=True)
        if done.returncode:
            raise RuntimeError(done.stderr.decode(errors="replace").strip().splitlines()[-1])

    def add_token_flags(self, label: str, flags: int) -> None:
        """Set flags in a token's stored state, for states SoftHSM never reaches by itself
        (it has no retry counter: a PIN is never LOCKED or on its FINAL_TRY there)."""
        padded = label.encode().ljust(32)
        for path in (self.root / "tokens").glob("*/token.object"):
            data = bytearray(path.read_bytes())
            if padded not in data:
                continue
            # attribute CKA_OS_TOKENFLAGS (0x8000534B), an unsigned long (tag 2), big-endian
            marker = bytes.fromhex("000000008000534b0000000000000002")
            at = data.index(marker) + len(marker)
            value = int.from_bytes(data[at:at + 8], "big") | flags
            data[at:at + 8] = value.to_bytes(8, "big")
            path.write_bytes(bytes(data))
            return
        raise LookupError(label)
