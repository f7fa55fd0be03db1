"""Socket-table parsing, client/server direction, and flow evaluation against a NetworkPolicy snapshot."""

from __future__ import annotations

from kubeward.agent.flows import Conn, FlowEvaluator, SocketEntry, connections, parse_table
from kubeward.engines.netpol import from_snapshot
from kubeward.engines.netpol.flows import FlowChecker
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

HDR = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
# 10.250.0.1:40000 -> 10.250.0.2:8080 ESTABLISHED; a listener on 0.0.0.0:8080; a loopback connection
TCP4 = HDR + (
    "   0: 0100FA0A:9C40 0200FA0A:1F90 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0\n"
    "   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0\n"
    "   2: 0100007F:9C41 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0\n"
    "   3: 0200FA0A:1F90 0300FA0A:A000 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0\n"
)
# fd00::1 port 443 -> fd00::2 port 53 (UDP, connected), and an ipv4-mapped remote
UDP6 = HDR + (
    "  10: 0000FFFD000000000000000001000000:01BB 0000FFFD000000000000000002000000:0035 01 0 0 0 0 0 1 0\n"
    "  11: 0000000000000000FFFF00000100FA0A:A001 0000000000000000FFFF00000200FA0A:0035 01 0 0 0 0 0 1 0\n"
)


def test_parse_ipv4_and_ipv6() -> None:
    t = list(parse_table(TCP4, "TCP", 4))
    assert t[0] == SocketEntry("TCP", "10.250.0.1", 40000, "10.250.0.2", 8080, 1)
    assert t[1].state == 10 and t[1].rport == 0
    u = list(parse_table(UDP6, "UDP", 6))
    assert (u[0].local, u[0].lport, u[0].remote, u[0].rport) == ("fdff::1", 443, "fdff::2", 53)
    assert (u[1].local, u[1].remote) == ("10.250.0.1", "10.250.0.2")


def test_parse_skips_garbage() -> None:
    assert list(parse_table(HDR + "junk\n   0: zz:1 yy:2 01\n", "TCP", 4)) == []


def test_direction_from_listening_ports() -> None:
    conns = connections(parse_table(TCP4, "TCP", 4))
    # client side kept as is; the accepted socket on the listening port is read as remote -> local:8080
    assert conns == {Conn("10.250.0.1", "10.250.0.2", 8080, "TCP"), Conn("10.250.0.3", "10.250.0.2", 8080, "TCP")}
    udp = connections(parse_table(UDP6, "UDP", 6))
    assert Conn("fdff::1", "fdff::2", 53, "UDP") in udp


def test_closed_and_listen_sockets_are_not_flows() -> None:
    entries = [SocketEntry("TCP", "10.0.0.1", 1000, "10.0.0.2", 80, 7), SocketEntry("TCP", "10.0.0.1", 80, "0.0.0.0", 0, 10)]
    assert connections(entries) == set()


def _pod(name: str, ip: str, labels: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "app", "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"podIP": ip}}


def test_evaluate_alerts_only_denied() -> None:
    objs = [
        _pod("web", "10.250.0.1", {"app": "web"}), _pod("db", "10.250.0.2", {"app": "db"}),
        _pod("other", "10.250.0.3", {"app": "other"}),
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "db-in", "namespace": "app"},
         "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                               "ports": [{"port": 5432}]}]}},
    ]
    ev = FlowEvaluator(FlowChecker(from_snapshot(Snapshot([Resource(o) for o in objs]))))
    record, alert = ev.evaluate(Conn("10.250.0.1", "10.250.0.2", 5432, "TCP"))
    assert record == {"src": "app/web", "dst": "app/db", "port": 5432, "protocol": "TCP"} and alert is None
    record, found = ev.evaluate(Conn("10.250.0.3", "10.250.0.2", 5432, "TCP"))
    assert found is not None and found.kind == "flow" and found.outcome == {"allowed": False}
    alert = found.to_json()  # the agent's JSON line, as before the alert record was shared with audit
    assert alert["alert"] == "unauthorized communication attempt" and alert["time"].endswith("Z")
    assert (alert["src"], alert["dst"], alert["policies"], alert["denied"]) == ("app/other", "app/db", ["app/db-in"],
                                                                                ["ingress"])
    assert alert["srcIP"] == "10.250.0.3" and alert["type"] == "flow"
    _, alert = ev.evaluate(Conn("10.250.0.1", "10.250.0.2", 5433, "TCP"))  # right peer, wrong port
    assert alert is not None
    assert ev.evaluate(Conn("192.0.2.1", "192.0.2.2", 80, "TCP")) == (None, None)  # no pod at either end
    record, alert = ev.evaluate(Conn("192.0.2.1", "10.250.0.2", 5432, "TCP"))
    assert record is not None and record["src"] == "192.0.2.1" and alert is not None


CONNTRACK = (
    "ipv4     2 tcp      6 117 TIME_WAIT src=10.250.0.3 dst=10.250.0.2 sport=40000 dport=5432 "
    "src=10.250.0.2 dst=10.250.0.3 sport=5432 dport=40000 [ASSURED] mark=0 zone=0 use=2\n"
    "ipv4     2 udp      17 28 src=10.250.0.1 dst=10.250.0.2 sport=5000 dport=53 [UNREPLIED] "
    "src=10.250.0.2 dst=10.250.0.1 sport=53 dport=5000 mark=0 zone=0 use=2\n"
    "ipv6     10 tcp      6 431999 ESTABLISHED src=fd00::1 dst=fd00::2 sport=1 dport=443 "
    "src=fd00::2 dst=fd00::1 sport=443 dport=1 [ASSURED] mark=0 zone=0 use=2\n"
    "ipv4     2 icmp     1 29 src=10.250.0.1 dst=10.250.0.2 type=8 code=0 id=1 src=10.250.0.2 dst=10.250.0.1\n"
    "ipv4     2 tcp      6 10 CLOSE src=127.0.0.1 dst=127.0.0.1 sport=1 dport=2 src=127.0.0.1 dst=127.0.0.1\n"
    "garbage\n"
)


def test_conntrack_original_direction() -> None:
    from kubeward.agent.flows import parse_conntrack

    assert parse_conntrack(CONNTRACK) == {
        Conn("10.250.0.3", "10.250.0.2", 5432, "TCP"), Conn("10.250.0.1", "10.250.0.2", 53, "UDP"),
        Conn("fd00::1", "fd00::2", 443, "TCP")}
