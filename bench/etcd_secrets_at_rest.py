"""Benchmark: `etcd secrets-at-rest` against a real local etcd holding N secrets. Prints figures.

Run: python bench/etcd_secrets_at_rest.py [N]   (needs /usr/bin/etcd: apt-get install -y etcd-server)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))
from etcd_fixture import running_etcd

from kubeward.engines.encryption import classify_value
from kubeward.pki.layout import InitOptions, init


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        init(base / "pki", InitOptions(node_name="bench", key_type="ecdsa"))
        with running_etcd(base / "pki", base, client_cert_auth=True) as etcd:
            c = etcd.client()
            value_enc = b"k8s:enc:aescbc:v1:key1:" + b"\x00" * 1200
            value_plain = b"k8s\x00" + b"\x01" * 1200
            t0 = time.perf_counter()
            for i in range(n):
                c.put(f"/registry/secrets/ns{i % 50}/s{i}".encode(), value_plain if i % 10 == 0 else value_enc)
            put_s = time.perf_counter() - t0
            print(f"{'load: puts (one TLS connection each)':<48} {n / put_s:9.0f} /s")
            for page in (100, 500):
                t0 = time.perf_counter()
                plain = sum(1 for _, v in c.range_prefix(b"/registry/secrets/", page=page)
                            if not classify_value(v[:64]).encrypted)
                dt = time.perf_counter() - t0
                print(f"{f'secrets-at-rest scan, page={page} ({n} secrets)':<48} {dt * 1000:9.1f} ms  "
                      f"{n / dt:9.0f} secrets/s  plaintext={plain}")
    print(f"python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
