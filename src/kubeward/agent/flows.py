"""Flow monitoring: connections read from each network namespace's socket tables, mapped to pods by IP and checked
with the NetworkPolicy engine (engines/netpol/flows.py FlowChecker, the same code as `netpol check-flows`).

Why socket tables first: they exist in every kernel and every namespace, with no conntrack hooks or tools required; a
connection shows from SYN_SENT (an attempt, even one a firewall drops) until TIME_WAIT ends (60 s after close), so
polling sees short-lived TCP connections too. UDP shows only for connected sockets (connect(2)); a sender using
plain sendto(2) is not visible here (proc(5): /proc/net/udp lists a remote address only when connected).
Where conntrack is active, /proc/net/nf_conntrack of the namespace is read as well (parse_conntrack).
SIGHUP re-reads the snapshot, and connections still open are judged again under the new policies.
Table format: net/ipv4/tcp_ipv4.c get_tcp4_sock / net/ipv6/tcp_ipv6.c get_tcp6_sock; addresses are the kernel's
32-bit words in host byte order, printed as hex.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..alerts import Alert, now_rfc3339
from ..alertsinks import AlertSink
from ..engines.netpol.flows import Flow, FlowChecker
from ..engines.netpol.model import Pod
from .procinfo import read_small

CLONE_NEWNET = 0x40000000
# include/net/tcp_states.h
TCP_ESTABLISHED, TCP_SYN_SENT, TCP_SYN_RECV, TCP_TIME_WAIT, TCP_LISTEN, TCP_CLOSE = 1, 2, 3, 6, 10, 7
_CONNECTION_STATES = frozenset({1, 2, 3, 4, 5, 6, 8, 9, 11})  # all but CLOSE (7) and LISTEN (10)
TABLES = (("tcp", "TCP", 4), ("tcp6", "TCP", 6), ("udp", "UDP", 4), ("udp6", "UDP", 6))

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


@dataclass(frozen=True, slots=True)
class SocketEntry:
    protocol: str
    local: str
    lport: int
    remote: str
    rport: int
    state: int


@dataclass(frozen=True, slots=True)
class Conn:
    """One observed connection, client → server:port."""

    src: str
    dst: str
    port: int
    protocol: str


def _addr(text: str, family: int) -> tuple[str, int]:
    host, port = text.split(":")
    raw = bytes.fromhex(host)
    if family == 4:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(raw[::-1])
    else:  # four 32-bit words, each in host (little-endian) order
        ip = ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
    return str(ip), int(port, 16)


def parse_table(text: str, protocol: str, family: int) -> Iterator[SocketEntry]:
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 4:
            continue
        try:
            local, lport = _addr(parts[1], family)
            remote, rport = _addr(parts[2], family)
            state = int(parts[3], 16)
        except ValueError:
            continue
        yield SocketEntry(protocol, local, lport, remote, rport, state)


def connections(entries: Iterable[SocketEntry]) -> set[Conn]:
    """Client → server:port for every connected socket of one namespace. A socket whose local port is one this
    namespace listens on (TCP LISTEN, or a bound UDP socket) is the server end; any other is the client end."""
    entries = list(entries)
    listening: set[tuple[str, int]] = set()
    for e in entries:
        if e.rport == 0 and (e.protocol == "UDP" or e.state == TCP_LISTEN):
            listening.add((e.protocol, e.lport))
    out: set[Conn] = set()
    for e in entries:
        if e.rport == 0:
            continue
        if e.protocol == "TCP" and e.state not in _CONNECTION_STATES:
            continue
        if _loopback(e.local) or _loopback(e.remote):
            continue
        if (e.protocol, e.lport) in listening:
            out.add(Conn(e.remote, e.local, e.lport, e.protocol))
        else:
            out.add(Conn(e.local, e.remote, e.rport, e.protocol))
    return out


def _loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip == "::1"


_CT_PROTOCOLS = {"tcp": "TCP", "udp": "UDP", "sctp": "SCTP"}


def parse_conntrack(text: str) -> set[Conn]:
    """Original-direction tuples of /proc/net/nf_conntrack (net/netfilter/nf_conntrack_standalone.c ct_seq_show):
    `ipv4 2 tcp 6 117 TIME_WAIT src=A dst=B sport=P dport=Q [reply tuple] …`. Entries exist only once conntrack
    hooks are active in the namespace (kube-proxy, a CNI or any stateful rule), and then they also show UDP sent with
    sendto(2) and traffic that merely passes through the namespace."""
    out: set[Conn] = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 6:
            continue
        proto = _CT_PROTOCOLS.get(parts[2])
        if proto is None:
            continue
        fields: dict[str, str] = {}
        for item in parts[3:]:
            key, sep, value = item.partition("=")
            if sep and key not in fields:  # the first src/dst/dport belong to the original direction
                fields[key] = value
        try:
            src, dst, dport = fields["src"], fields["dst"], int(fields["dport"])
        except (KeyError, ValueError):
            continue
        if not (_loopback(src) or _loopback(dst)) and 0 < dport < 65536:
            out.add(Conn(src, dst, dport, proto))
    return out


def read_tables(proc_net: str) -> list[SocketEntry]:
    out: list[SocketEntry] = []
    for name, proto, family in TABLES:
        data = read_small(f"{proc_net}/{name}", 1 << 24)
        if data:
            out.extend(parse_table(data.decode("ascii", "replace"), proto, family))
    return out


def named_netns(name: str) -> str:
    """`ip netns` keeps named namespaces as bind mounts under /run/netns (ip-netns(8)); a path such as
    /proc/<pid>/ns/net is taken as it is."""
    if name.startswith("/"):
        if not os.path.exists(name):
            raise OSError(2, f"{name}: no such network namespace file")
        return name
    if "/" in name or name in ("", ".", ".."):
        raise OSError(2, f"{name}: not a network namespace name")
    path = f"/run/netns/{name}"
    if not os.path.exists(path):
        raise OSError(2, f"{name}: no such network namespace (/run/netns/{name})")
    return path


def all_netns() -> dict[str, str]:
    """One /proc/<pid>/ns/net path per distinct network namespace on the host (needs hostPID in a pod)."""
    seen: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        path = f"/proc/{entry}/ns/net"
        try:
            ino = os.stat(path).st_ino
        except OSError:
            continue
        seen.setdefault(ino, path)
    return {f"net:[{ino}]": p for ino, p in seen.items()}


class NetnsScanner:
    """Reads socket tables namespace by namespace from one dedicated thread, which setns(2)s into each
    (the network namespace is per thread) and reads /proc/thread-self/net, so the main thread never moves."""

    def __init__(self, namespaces: dict[str, str]) -> None:
        self.namespaces = namespaces

    def scan(self) -> dict[str, set[Conn]]:
        result: dict[str, set[Conn]] = {}
        errors: list[str] = []

        def work() -> None:
            home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                for label, path in self.namespaces.items():
                    try:
                        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                    except OSError as exc:
                        errors.append(f"{label}: {exc.strerror}")
                        continue
                    try:
                        if _libc.setns(fd, CLONE_NEWNET) != 0:
                            errors.append(f"{label}: setns: {os.strerror(ctypes.get_errno())}")
                            continue
                        found = connections(read_tables("/proc/thread-self/net"))
                        ct = read_small("/proc/thread-self/net/nf_conntrack", 1 << 24)
                        if ct:
                            found |= parse_conntrack(ct.decode("ascii", "replace"))
                        result[label] = found
                    finally:
                        os.close(fd)
            finally:
                _libc.setns(home, CLONE_NEWNET)
                os.close(home)

        t = threading.Thread(target=work, name="kubeward-netns")
        t.start()
        t.join()
        self.errors = errors
        return result


class FlowEvaluator:
    """IPs → pods from the snapshot, then the NetworkPolicy decision; one answer per distinct connection."""

    def __init__(self, checker: FlowChecker) -> None:
        self.checker = checker

    def name(self, ip: str) -> tuple[str, bool]:
        end = self.checker.endpoint(ip)
        return (end.key, True) if isinstance(end, Pod) else (ip, False)

    def evaluate(self, conn: Conn) -> tuple[dict[str, Any] | None, Alert | None]:
        """(flow record, alert or None); (None, None) when neither end is a pod (no policy can apply)."""
        src, src_pod = self.name(conn.src)
        dst, dst_pod = self.name(conn.dst)
        if not (src_pod or dst_pod):
            return None, None
        record = {"src": src, "dst": dst, "port": conn.port, "protocol": conn.protocol}
        denied = self.checker.check(Flow(src, dst, conn.port, conn.protocol))
        if denied is None:
            return record, None
        message = denied.pop("alert")
        return record, Alert.flow_alert(time=now_rfc3339(), message=message,
                                        flow={**denied, "srcIP": conn.src, "dstIP": conn.dst})


def run_flows(snapshot_paths: Sequence[str], netns: Sequence[str], alerts_target: str, flows_out: str | None,
              interval: float, duration: float | None) -> None:
    from ..cli.common import fail, load_snapshot, warn
    from ..engines.netpol import from_snapshot

    def load() -> tuple[FlowEvaluator, int]:
        snap = load_snapshot(snapshot_paths)
        for e in snap.errors:
            warn(str(e).removeprefix("kubeward: "))
        if not snap.of_kind("Pod"):
            raise ValueError(f"{', '.join(snapshot_paths)}: no Pod objects (pod IPs are needed to map flows)")
        return FlowEvaluator(FlowChecker(from_snapshot(snap))), len(snap.of_kind("Pod"))

    try:
        evaluator, pod_count = load()
    except ValueError as exc:
        fail(str(exc))
    namespaces = {n: named_netns(n) for n in netns} if netns else all_netns()
    scanner = NetnsScanner(namespaces)
    sink = AlertSink(alerts_target, on_problem=warn)  # a reader that stops reading costs counted alerts only
    flows_fh = open(flows_out, "ab") if flows_out else None  # noqa: SIM115 - closed below
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    reload = threading.Event()
    signal.signal(signal.SIGHUP, lambda *_: reload.set())
    seen: set[Conn] = set()
    warned: set[str] = set()
    flows = alerts = 0
    end = None if duration is None else time.monotonic() + duration
    warn(f"flows: ready, watching {len(namespaces)} network namespace(s), {pod_count} pods")
    try:
        while not stop.is_set() and (end is None or time.monotonic() < end):
            if reload.is_set():  # SIGHUP: new pods and policies; current connections are judged again
                reload.clear()
                try:
                    evaluator, pod_count = load()
                    seen.clear()
                except ValueError as exc:
                    warn(f"{exc} (reload refused, keeping the previous snapshot)")
            for conns in scanner.scan().values():
                for conn in conns - seen:
                    seen.add(conn)
                    record, alert = evaluator.evaluate(conn)
                    if record is None:
                        continue
                    flows += 1
                    if flows_fh is not None:
                        flows_fh.write(orjson.dumps(record) + b"\n")
                        flows_fh.flush()
                    if alert is not None:
                        alerts += 1
                        sink.emit(alert)
            for err in scanner.errors:
                if err not in warned:
                    warned.add(err)
                    warn(f"flows: {err}")
            stop.wait(interval)
    finally:
        sink.close()
        if flows_fh is not None:
            flows_fh.close()
    lost = sink.counters()
    print(f"kubeward: flows: stopped, {flows} pod flows, {alerts} denied"
          + "".join(f", {n} alerts {what}" for what, n in (("dropped", lost["alerts_dropped"]),
                                                            ("not written", lost["alerts_failed"])) if n),
          file=sys.stderr)
