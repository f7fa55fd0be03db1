"""Start a real etcd (Debian's etcd-server) on loopback with kubeward-made certificates; always stopped."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubeward.sources.etcd import EtcdClient, EtcdError

ETCD = shutil.which("etcd") or ("/usr/bin/etcd" if os.path.exists("/usr/bin/etcd") else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Etcd:
    endpoint: str
    pki: Path
    client_cert_auth: bool

    def client(self) -> EtcdClient:
        p = self.pki
        return EtcdClient(self.endpoint, cacert=str(p / "etcd/ca.crt"), cert=str(p / "apiserver-etcd-client.crt"),
                          key=str(p / "apiserver-etcd-client.key"), timeout=5)


@contextmanager
def running_etcd(pki: Path, workdir: Path, *, client_cert_auth: bool, tls: bool = True,
                 cipher_suites: str | None = None) -> Iterator[Etcd]:
    if ETCD is None:
        pytest.skip("etcd is not installed (apt-get install -y etcd-server)")
    client, peer = free_port(), free_port()
    endpoint = f"{'https' if tls else 'http'}://127.0.0.1:{client}"
    args = [ETCD, "--name", "e2e", "--data-dir", str(workdir / "data"),
            "--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"e2e=http://127.0.0.1:{peer}"]
    if tls:
        args += ["--cert-file", str(pki / "etcd/server.crt"), "--key-file", str(pki / "etcd/server.key")]
    if cipher_suites:
        args += ["--cipher-suites", cipher_suites]
    if client_cert_auth:
        args += ["--client-cert-auth", "--trusted-ca-file", str(pki / "etcd/ca.crt")]
    log = open(workdir / "etcd.log", "wb")  # noqa: SIM115  closed in finally
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        etcd = Etcd(endpoint, pki, client_cert_auth)
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"etcd exited: {(workdir / 'etcd.log').read_text()[-2000:]}")
            try:
                etcd.client().version()
                break
            except EtcdError:
                if time.monotonic() > deadline:
                    raise RuntimeError("etcd did not become ready in 30s") from None
                time.sleep(0.2)
        yield etcd
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()
