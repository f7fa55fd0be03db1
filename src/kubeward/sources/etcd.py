"""A small etcd v3 client over the gRPC-gateway (HTTP/JSON on the client URL, etcd 3.4+), with mTLS.

Why not a gRPC library: the only Python packages (etcd3) are unmaintained and clash with current protobuf;
the gateway (`POST /v3/kv/range`, `/v3/kv/put`, base64 keys and values) is part of every etcd server, so the
standard library (ssl + http.client) is enough. Every socket has a timeout: nothing here can hang.
See etcd's Documentation/dev-guide/api_grpc_gateway.md and api/etcdserverpb/rpc.proto (RangeRequest).
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

MAX_RESPONSE = 64 << 20  # one page of values; etcd's own request limit is 1.5 MiB per value


class EtcdError(Exception):
    """One line: what failed talking to etcd, and why."""


@dataclass(frozen=True, slots=True)
class TLSInfo:
    version: str
    cipher: str


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def prefix_end(prefix: bytes) -> bytes:
    """clientv3.GetPrefixRangeEnd: increment the last byte below 0xff, dropping trailing 0xff bytes."""
    b = bytearray(prefix)
    for i in range(len(b) - 1, -1, -1):
        if b[i] < 0xFF:
            b[i] += 1
            return bytes(b[: i + 1])
    return b"\x00"  # the whole keyspace


def tls_context(cacert: str | None, cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    try:
        if cacert:
            ctx.load_verify_locations(cafile=cacert)
    except FileNotFoundError:
        raise EtcdError(f"{cacert}: no such file") from None
    except (ssl.SSLError, OSError) as exc:
        raise EtcdError(f"{cacert}: not a usable CA certificate ({_reason(exc)})") from None
    if cert or key:
        if not (cert and key):
            raise EtcdError("--cert and --key go together")
        try:
            ctx.load_cert_chain(cert, key)
        except FileNotFoundError as exc:
            raise EtcdError(f"{exc.filename or cert}: no such file") from None
        except ssl.SSLError as exc:
            raise EtcdError(f"{cert}: certificate and key unusable ({_reason(exc)})") from None
        except OSError as exc:
            raise EtcdError(f"{cert}: {exc.strerror or exc}") from None
    return ctx


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"server certificate not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return (exc.reason or str(exc)).lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


class EtcdClient:
    def __init__(self, endpoint: str, *, cacert: str | None = None, cert: str | None = None,
                 key: str | None = None, timeout: float = 5.0, context: ssl.SSLContext | None = None) -> None:
        url = urlparse(endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise EtcdError(f"{endpoint}: not an http(s)://host:port endpoint")
        self.endpoint = endpoint
        self.host = url.hostname
        try:
            self.port = url.port or 2379
        except ValueError:
            raise EtcdError(f"{endpoint}: invalid port") from None
        self.tls = url.scheme == "https"
        self.timeout = timeout
        self.context = context if context is not None else (tls_context(cacert, cert, key) if self.tls else None)
        self.last_tls: TLSInfo | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.tls:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def call(self, path: str, body: dict[str, object] | None = None, *,
             conn: http.client.HTTPConnection | None = None) -> dict[str, object]:
        """POST (or GET without body) one gateway call; every failure becomes one EtcdError line.

        With `conn` the (keep-alive) connection is reused and left open for the caller to close.
        """
        own = conn is None
        conn = conn or self._connection()
        where = f"{self.endpoint}"
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request("POST" if data is not None else "GET", path, body=data,
                         headers={"Content-Type": "application/json"})
            sock = conn.sock
            if isinstance(sock, ssl.SSLSocket):
                cipher = sock.cipher()
                self.last_tls = TLSInfo(sock.version() or "?", cipher[0] if cipher else "?")
            resp = conn.getresponse()
            raw = resp.read(MAX_RESPONSE + 1)
        except ConnectionRefusedError:
            raise EtcdError(f"{where}: connection refused (nothing listening?)") from None
        except TimeoutError:
            raise EtcdError(f"{where}: timed out after {self.timeout:g}s") from None
        except ssl.SSLCertVerificationError as exc:
            raise EtcdError(f"{where}: TLS handshake failed: {_reason(exc)}") from None
        except ssl.SSLError as exc:
            raise EtcdError(f"{where}: TLS handshake failed: {_reason(exc)}") from None
        except (ConnectionResetError, BrokenPipeError):
            raise EtcdError(f"{where}: connection closed by the server (TLS refused?)") from None
        except http.client.RemoteDisconnected:
            raise EtcdError(f"{where}: server closed the connection without a response "
                            "(TLS endpoint spoken to in plain HTTP?)") from None
        except (http.client.HTTPException, socket.gaierror, OSError) as exc:
            raise EtcdError(f"{where}: {_reason(exc)}") from None
        finally:
            if own:
                conn.close()
        if len(raw) > MAX_RESPONSE:
            raise EtcdError(f"{where}: response larger than {MAX_RESPONSE >> 20} MiB")
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            raise EtcdError(f"{where}: not an etcd gateway response (HTTP {resp.status})") from None
        if resp.status != 200:
            msg = doc.get("message") or doc.get("error") if isinstance(doc, dict) else None
            raise EtcdError(f"{where}{path}: HTTP {resp.status}: {msg or 'request failed'}")
        if not isinstance(doc, dict):
            raise EtcdError(f"{where}: not an etcd gateway response")
        return doc

    def version(self) -> dict[str, object]:
        return self.call("/version")

    def put(self, key: bytes, value: bytes) -> None:
        self.call("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})

    def range_prefix(self, prefix: bytes, *, page: int = 100) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) under `prefix`, sorted by key, fetched `page` at a time."""
        start, end = prefix, prefix_end(prefix)
        conn = self._connection()  # one TLS session for every page
        try:
            yield from self._pages(conn, start, end, page)
        finally:
            conn.close()

    def _pages(self, conn: http.client.HTTPConnection, start: bytes, end: bytes,
               page: int) -> Iterator[tuple[bytes, bytes]]:
        while True:
            doc = self.call("/v3/kv/range", {"key": _b64(start), "range_end": _b64(end), "limit": page}, conn=conn)
            kvs = doc.get("kvs") or []
            if not isinstance(kvs, list):
                raise EtcdError(f"{self.endpoint}: malformed range response")
            last = b""
            for kv in kvs:
                last = base64.b64decode(kv.get("key", ""))
                yield last, base64.b64decode(kv.get("value", ""))
            if not doc.get("more") or not kvs:
                return
            start = last + b"\x00"


@dataclass(slots=True)
class ProbeResult:
    """What a real connection showed; None = not tested (material not given) or not determinable."""

    endpoint: str
    tls: bool
    tls_version: str | None = None
    cipher: str | None = None
    version: str | None = None
    client_cert_accepted: bool | None = None
    anonymous_refused: bool | None = None
    anonymous_error: str | None = None
    cluster_cert_refused: bool | None = None
    cluster_cert_error: str | None = None
    cluster_ca_trusts_server: bool | None = None
    legacy_tls_refused: bool | None = None
    weak_ciphers: list[str] | None = None  # TLS 1.2 suites (IANA names) the server agreed to

    def to_json(self) -> dict[str, object]:
        return {
            "endpoint": self.endpoint, "tls": self.tls, "tlsVersion": self.tls_version, "cipher": self.cipher,
            "etcdVersion": self.version, "clientCertAccepted": self.client_cert_accepted,
            "clientCertRequired": self.anonymous_refused, "clusterCertRefused": self.cluster_cert_refused,
            "clusterCaTrustsServer": self.cluster_ca_trusts_server, "legacyTlsRefused": self.legacy_tls_refused,
            "weakCiphersAccepted": self.weak_ciphers,
        }


def _attempt(client: EtcdClient) -> str | None:
    """None when a request got through; otherwise the refusal as one line."""
    try:
        client.version()
    except EtcdError as exc:
        return str(exc).split(": ", 1)[-1]
    return None


def _connection_problem(msg: str) -> bool:
    return any(s in msg for s in ("connection refused", "timed out", "name or service", "no route", "unreachable"))


def probe(endpoint: str, *, cacert: str, cert: str | None = None, key: str | None = None,
          cluster_ca: str | None = None, cluster_cert: str | None = None, cluster_key: str | None = None,
          timeout: float = 5.0) -> ProbeResult:
    """Connect for real: with the given client cert, without any, with a cluster-CA cert, over old TLS."""
    base = EtcdClient(endpoint, cacert=cacert, cert=cert, key=key, timeout=timeout)
    res = ProbeResult(endpoint, base.tls)
    try:
        res.version = str(base.version().get("etcdserver"))
        err = None
    except EtcdError as exc:
        err = str(exc).split(": ", 1)[-1]
    if err is not None and (_connection_problem(err) or "not trusted" in err):
        raise EtcdError(f"{endpoint}: {err}")
    if cert:
        res.client_cert_accepted = err is None
        if err is not None:
            raise EtcdError(f"{endpoint}: the given client certificate was refused: {err}")
    if base.last_tls:
        res.tls_version, res.cipher = base.last_tls.version, base.last_tls.cipher
    anon = EtcdClient(endpoint, cacert=cacert, timeout=timeout)
    res.anonymous_error = _attempt(anon)
    res.anonymous_refused = res.anonymous_error is not None
    if res.tls_version is None and anon.last_tls:
        res.tls_version, res.cipher = anon.last_tls.version, anon.last_tls.cipher
    if not base.tls:
        return res
    if cluster_cert or cluster_key:
        cc = EtcdClient(endpoint, cacert=cacert, cert=cluster_cert, key=cluster_key, timeout=timeout)
        res.cluster_cert_error = _attempt(cc)
        res.cluster_cert_refused = res.cluster_cert_error is not None
    if cluster_ca:
        # Does the cluster CA validate etcd's serving cert? (kubeadm keeps them apart: etcd/ca.crt)
        ctx = tls_context(cluster_ca)
        ctx.check_hostname = False  # only the chain matters here
        trial = EtcdClient(endpoint, timeout=timeout, context=ctx)
        msg = _attempt(trial)
        res.cluster_ca_trusts_server = msg is None or "not trusted" not in msg
    res.legacy_tls_refused = _legacy_refused(base, cacert, timeout)
    res.weak_ciphers = _weak_ciphers(base, cacert, cert, key, timeout)
    return res


# TLS 1.2 suites without forward secrecy or with CBC (OpenSSL name -> IANA name, as Go's --cipher-suites spells them)
WEAK_TLS12 = {
    "ECDHE-ECDSA-AES128-SHA": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "ECDHE-ECDSA-AES256-SHA": "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "ECDHE-RSA-AES128-SHA": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "ECDHE-RSA-AES256-SHA": "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "ECDHE-ECDSA-AES128-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "ECDHE-RSA-AES128-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "AES128-SHA": "TLS_RSA_WITH_AES_128_CBC_SHA",
    "AES256-SHA": "TLS_RSA_WITH_AES_256_CBC_SHA",
    "AES128-GCM-SHA256": "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "AES256-GCM-SHA384": "TLS_RSA_WITH_AES_256_GCM_SHA384",
}


def _weak_ciphers(base: EtcdClient, cacert: str, cert: str | None, key: str | None,
                  timeout: float) -> list[str] | None:
    """Offer one weak TLS 1.2 suite at a time; a completed handshake means the server accepts it."""
    accepted: list[str] = []
    tested = 0
    for ossl, iana in WEAK_TLS12.items():
        try:
            ctx = tls_context(cacert, cert, key)
            ctx.check_hostname = False
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers(f"{ossl}:@SECLEVEL=0")
        except (ssl.SSLError, EtcdError):
            continue  # this OpenSSL cannot offer it
        tested += 1
        try:
            with socket.create_connection((base.host, base.port), timeout=timeout) as raw, \
                    ctx.wrap_socket(raw, server_hostname=base.host):
                accepted.append(iana)
        except (ssl.SSLError, OSError):
            pass
    return accepted if tested else None


def _legacy_refused(base: EtcdClient, cacert: str, timeout: float) -> bool | None:
    """Offer only TLS 1.0/1.1; None when this OpenSSL cannot even offer them."""
    try:
        ctx = tls_context(cacert)
        with warnings.catch_warnings():  # offering old versions on purpose, to see if the server takes them
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ssl.SSLError, ValueError, EtcdError):
        return None
    try:
        with socket.create_connection((base.host, base.port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=base.host):
            return False
    except ssl.SSLError as exc:
        text = str(exc).lower()
        if "no protocols available" in text or "no ciphers available" in text:
            return None
        return True
    except OSError:
        return True
