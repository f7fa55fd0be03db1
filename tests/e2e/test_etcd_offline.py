"""etcd client pieces that need no server: range ends, endpoint and TLS-material errors (fast, no etcd)."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from kubeward.cli.etcd import split_key
from kubeward.cli.main import cli
from kubeward.sources.etcd import EtcdClient, EtcdError, prefix_end


@given(st.binary(min_size=1, max_size=12), st.binary(max_size=6))
def test_prefix_end_bounds_every_key_with_the_prefix(prefix: bytes, suffix: bytes) -> None:
    end = prefix_end(prefix)
    if end == b"\x00":
        assert set(prefix) == {0xFF}
    else:
        assert prefix <= prefix + suffix < end
        assert not (prefix + suffix).startswith(end)


def test_prefix_end_examples() -> None:
    assert prefix_end(b"/registry/secrets/") == b"/registry/secrets0"
    assert prefix_end(b"a\xff") == b"b"


@pytest.mark.parametrize(("endpoint", "message"), [
    ("127.0.0.1:2379", "not an http(s)://host:port endpoint"),
    ("https://127.0.0.1:99999", "invalid port"),
])
def test_bad_endpoints(endpoint: str, message: str) -> None:
    with pytest.raises(EtcdError, match=re.escape(message)):
        EtcdClient(endpoint)


def test_missing_and_garbage_tls_material(tmp_path: Path) -> None:
    with pytest.raises(EtcdError, match="no such file"):
        EtcdClient("https://127.0.0.1:2379", cacert=str(tmp_path / "nope.crt"))
    (tmp_path / "junk.crt").write_text("junk")
    with pytest.raises(EtcdError, match="not a usable CA certificate"):
        EtcdClient("https://127.0.0.1:2379", cacert=str(tmp_path / "junk.crt"))
    with pytest.raises(EtcdError, match="--cert and --key go together"):
        EtcdClient("https://127.0.0.1:2379", cert=str(tmp_path / "junk.crt"))


def test_silent_server_times_out_in_one_line(tmp_path: Path) -> None:
    # a listener that never answers the TLS handshake: the timeout must end it
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        res = CliRunner().invoke(cli, ["etcd", "secrets-at-rest", "--endpoint", f"https://127.0.0.1:{port}",
                                       "--cacert", "/etc/ssl/certs/ca-certificates.crt", "--cert", "x", "--key", "y",
                                       "--timeout", "0.5"])
    finally:
        srv.close()
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.output.count("\n") == 1 and res.output.startswith("kubeward: ")


def test_silent_server_handshake_timeout(tmp_path: Path) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        with pytest.raises(EtcdError, match=re.escape("timed out after 0.5s")):
            EtcdClient(f"https://127.0.0.1:{port}", timeout=0.5).version()
    finally:
        srv.close()


def test_split_key() -> None:
    assert split_key(b"/registry/secrets/ns/name", b"/registry/secrets/") == ("/registry/secrets/ns/name", "ns", "name")
    assert split_key(b"/registry/secrets/odd", b"/registry/secrets/") == ("/registry/secrets/odd", None, "odd")
