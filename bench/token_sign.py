"""Time of one signature on a PKCS#11 token (SoftHSM2), per key type, through the same
cryptography key objects cred-helper signs CSRs and JWTs with.

    .venv/bin/python bench/token_sign.py [--runs N]

Makes a throwaway token in a temporary SOFTHSM2_CONF, generates a P-256, an Ed25519 and an
RSA-2048 key on it (non-extractable), and prints the median and 90th percentile of N
signatures of a JWT-sized message each, next to the same signature by a software key, and the
one-off cost of loading the module, finding the token and logging in.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from tests.support.softhsm import MODULE, USER_PIN, SoftHSM

MESSAGE = b"x" * 600  # about a client assertion's signing input
SIGN = {
    "p256": lambda k: k.sign(MESSAGE, ec.ECDSA(hashes.SHA256())),
    "ed25519": lambda k: k.sign(MESSAGE),
    "rsa2048": lambda k: k.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256()),
}
SOFTWARE = {
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "rsa2048": lambda: rsa.generate_private_key(65537, 2048),
}


def timed(fn, runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    hsm = SoftHSM(Path(tempfile.mkdtemp(prefix="bench-softhsm-")))
    hsm.new_token("bench")
    os.environ.update(hsm.env)

    from cred_helper.keys import pkcs11
    from cred_helper.keys.manage import generate

    start = time.perf_counter()
    lib = pkcs11.load(MODULE)
    token, info = pkcs11.find_token(lib, pkcs11.uris.parse("pkcs11:token=bench"), MODULE)
    with pkcs11.logged_in(token, info, "env:PIN", False, {"PIN": USER_PIN}, input, print,
                          lambda: 0, rw=True) as session:
        opened = (time.perf_counter() - start) * 1000
        for kind in SIGN:
            generate(session, info, kind, None, kind)
    print(f"module load + token lookup + login: {opened:.1f} ms (once per issuance)")
    print(f"{'key':9} {'token median':>13} {'p90':>8} {'software median':>16}")
    for kind, sign in SIGN.items():
        with pkcs11.open_key(f"pkcs11:token=bench;object={kind}", MODULE, "env:PIN", False,
                             {"PIN": USER_PIN}, input, print) as key:
            median, p90 = timed(lambda k=key, s=sign: s(k), args.runs)
        soft = SOFTWARE[kind]()
        soft_median, _ = timed(lambda k=soft, s=sign: s(k), args.runs)
        print(f"{kind:9} {median:10.3f} ms {p90:6.3f} ms {soft_median:13.3f} ms")


if __name__ == "__main__":
    main()
