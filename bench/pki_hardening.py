"""Benchmark: PKI init/check, x509 authentication throughput, node check. Prints figures; no assertions.

Run: python bench/pki_hardening.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from cryptography.x509.oid import ExtendedKeyUsageOID

from kubeward.engines.authn import authenticate
from kubeward.pki.checks import check
from kubeward.pki.files import load_cert, load_key
from kubeward.pki.inventory import read_dir
from kubeward.pki.issue import LeafSpec, new_key, sign_leaf
from kubeward.pki.layout import InitOptions, init
from kubeward.pki.users import issue_user


def timed(label: str, fn, repeat: int = 1) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    print(f"{label:<52} {best * 1000:9.1f} ms")
    return best


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        n = [0]

        def fresh(kt: str) -> None:
            n[0] += 1
            init(base / f"{kt}{n[0]}", InitOptions(node_name="cp1", key_type=kt))

        timed("pki init (RSA-2048, 10 certs + sa)", lambda: fresh("rsa"), 3)
        timed("pki init (ECDSA-P256, 10 certs + sa)", lambda: fresh("ecdsa"), 3)
        root = base / "ecdsa5"
        users = 500
        for i in range(users):
            issue_user(root, f"user{i}", ("dev",), key_type="ecdsa")
        inv_t = timed(f"pki check: read dir ({10 + users} certs + keys)", lambda: read_dir(root), 3)
        inv = read_dir(root)
        chk_t = timed(f"pki check: judge {len(inv.certs)} certs", lambda: check(inv), 3)
        print(f"{'  per certificate (read + judge)':<52} {(inv_t + chk_t) / len(inv.certs) * 1e6:9.0f} us")
        ca = load_cert(root / "ca.crt")
        ca_key = load_key(root / "ca.key")
        leaves = [sign_leaf(LeafSpec(f"u{i}", ("g",), (ExtendedKeyUsageOID.CLIENT_AUTH,)), new_key("ecdsa"), ca, ca_key)
                  for i in range(1000)]
        t = timed("authn: authenticate 1000 client certs", lambda: [authenticate([c], [ca]) for c in leaves], 3)
        print(f"{'  authentications per second':<52} {1000 / t:9.0f}")
    print(f"python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
