"""Flow monitoring on real network namespaces: veth pairs on a bridge stand in for pods (10.250.x.y addresses that
never leave the machine), real TCP/UDP connections, alerts checked against a NetworkPolicy in the snapshot."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml

pytestmark = pytest.mark.e2e

if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
    pytest.skip("needs root (network namespaces)", allow_module_level=True)

PODS = {"web": 1, "db": 2, "other": 3}

SERVER = """
import socket, sys, time
socks = []
for spec in sys.argv[1:]:
    proto, port = spec.split(":")
    if proto == "tcp":
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", int(port))); s.listen(16)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", int(port)))
    s.setblocking(False); socks.append(s)
print("up", flush=True)
held = []
end = time.time() + 30
while time.time() < end:
    for s in socks:
        try:
            if s.type == socket.SOCK_STREAM:
                held.append(s.accept()[0])
            else:
                s.recvfrom(100)
        except BlockingIOError:
            pass
    time.sleep(0.01)
"""

CLIENT = """
import socket, sys, time
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if proto == "tcp":
    s = socket.create_connection((host, port), timeout=5)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect((host, port)); s.send(b"x")
time.sleep(float(sys.argv[4]))
"""


@pytest.fixture
def pods() -> Iterator[dict[str, tuple[str, str]]]:
    """name -> (netns, ip); every namespace and link is deleted afterwards."""
    tag = uuid.uuid4().hex[:4]
    subnet = 100 + int(tag, 16) % 100
    bridge = f"kwtest-{tag}-br"
    made: list[str] = []

    def sh(*argv: str) -> None:
        subprocess.run(argv, check=True, capture_output=True)

    try:
        sh("ip", "netns", "add", bridge)
        made.append(bridge)
        sh("ip", "-n", bridge, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", bridge, "link", "set", "br0", "up")
        out: dict[str, tuple[str, str]] = {}
        for name, i in PODS.items():
            ns = f"kwtest-{tag}-{name}"
            sh("ip", "netns", "add", ns)
            made.append(ns)
            a, b = f"kw{tag}{i}a", f"kw{tag}{i}b"
            sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            sh("ip", "link", "set", a, "netns", ns)
            sh("ip", "link", "set", b, "netns", bridge)
            sh("ip", "-n", bridge, "link", "set", b, "master", "br0", "up")
            ip = f"10.250.{subnet}.{i}"
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", a)
            sh("ip", "-n", ns, "link", "set", a, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            out[name] = (ns, ip)
        yield out
    finally:
        for ns in reversed(made):  # deleting a namespace deletes its veth ends (and their peers)
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def snapshot(tmp_path: Path, pods: dict[str, tuple[str, str]], *, policy: bool = True) -> Path:
    docs: list[dict] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}]
    for name, (_ns, ip) in pods.items():
        docs.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": name, "namespace": "shop", "labels": {"app": name}},
                     "spec": {"containers": [{"name": "c", "image": "img"}]},
                     "status": {"podIP": ip, "podIPs": [{"ip": ip}]}})
    docs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                 "metadata": {"name": "db-from-web", "namespace": "shop"},
                 "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
                          "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                                       "ports": [{"protocol": "TCP", "port": 5432}]}]}})
    if not policy:
        docs.pop()
    p = tmp_path / "snap.yaml"
    p.write_text(yaml.safe_dump_all(docs))
    return p


@contextlib.contextmanager
def server(ns: str, *specs: str) -> Iterator[None]:
    p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, *specs],
                         stdout=subprocess.PIPE)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == b"up"
        yield
    finally:
        p.kill()
        p.wait(5)


def client(ns: str, proto: str, ip: str, port: int, hold: float = 1.0) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", CLIENT, proto, ip, str(port),
                             str(hold)])


def test_flows_alert_on_denied_only(tmp_path: Path, pods: dict[str, tuple[str, str]]) -> None:
    snap = snapshot(tmp_path, pods)
    alerts, flows = tmp_path / "alerts.jsonl", tmp_path / "flows.jsonl"
    (web_ns, web_ip), (db_ns, db_ip), (other_ns, _other_ip) = pods["web"], pods["db"], pods["other"]
    netns_args = [a for name in PODS for a in ("--netns", pods[name][0])]
    with server(db_ns, "tcp:5432", "tcp:6000", "udp:5353"), server(web_ns, "udp:53"):
        agent = subprocess.Popen([sys.executable, "-m", "kubeward.cli.main", "agent", "flows", "--snapshot",
                                  str(snap), *netns_args, "--alerts", str(alerts), "--flows-out", str(flows),
                                  "--interval", "0.1", "--duration", "6"], stderr=subprocess.PIPE)
        assert agent.stderr is not None and b"ready" in agent.stderr.readline()
        clients = [
            client(web_ns, "tcp", db_ip, 5432),    # allowed by db-from-web
            client(other_ns, "tcp", db_ip, 5432),  # denied: wrong peer
            client(web_ns, "tcp", db_ip, 6000),    # denied: wrong port
            client(web_ns, "udp", db_ip, 5353),    # denied: the policy allows TCP only
            client(other_ns, "udp", web_ip, 53),   # allowed: web is not isolated
        ]
        for c in clients:
            assert c.wait(15) == 0
        assert agent.wait(20) == 0
        err = agent.stderr.read().decode()
    assert "5 pod flows, 3 denied" in err, err
    got = [orjson.loads(x) for x in alerts.read_bytes().splitlines()]
    assert sorted((a["src"], a["dst"], a["port"], a["protocol"]) for a in got) == [
        ("shop/other", "shop/db", 5432, "TCP"), ("shop/web", "shop/db", 5353, "UDP"),
        ("shop/web", "shop/db", 6000, "TCP")]
    for a in got:
        assert a["alert"] == "unauthorized communication attempt"
        assert a["policies"] == ["shop/db-from-web"] and a["denied"] == ["ingress"]
    records = [orjson.loads(x) for x in flows.read_bytes().splitlines()]
    assert len(records) == 5 and {"src": "shop/web", "dst": "shop/db", "port": 5432, "protocol": "TCP"} in records
    # the observed flows feed `netpol generate --flows` as they are
    gen = subprocess.run([sys.executable, "-m", "kubeward.cli.main", "netpol", "generate", str(snap),
                          "--flows", str(flows)], capture_output=True, text=True)
    assert gen.returncode == 0, gen.stderr
    assert "NetworkPolicy" in gen.stdout


def test_flows_unknown_netns_is_one_line(tmp_path: Path, pods: dict[str, tuple[str, str]]) -> None:
    r = subprocess.run([sys.executable, "-m", "kubeward.cli.main", "agent", "flows", "--snapshot",
                        str(snapshot(tmp_path, pods)), "--netns", "kwtest-absent", "--duration", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip() == "kubeward: flows: kwtest-absent: no such network namespace (/run/netns/kwtest-absent)"
    r = subprocess.run([sys.executable, "-m", "kubeward.cli.main", "agent", "flows", "--snapshot",
                        str(tmp_path / "snap.yaml"), "--netns", "/proc/999999999/ns/net", "--duration", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip() == "kubeward: flows: /proc/999999999/ns/net: no such network namespace file"


def test_sighup_rejudges_open_connections(tmp_path: Path, pods: dict[str, tuple[str, str]]) -> None:
    """A connection allowed under the first snapshot is reported once a policy denying it is loaded."""
    snap = snapshot(tmp_path, pods, policy=False)
    alerts = tmp_path / "alerts.jsonl"
    (db_ns, db_ip), (other_ns, _ip) = pods["db"], pods["other"]
    with server(db_ns, "tcp:5432"):
        agent = subprocess.Popen([sys.executable, "-m", "kubeward.cli.main", "agent", "flows", "--snapshot",
                                  str(snap), "--netns", other_ns, "--netns", db_ns, "--alerts", str(alerts),
                                  "--interval", "0.1", "--duration", "5"], stderr=subprocess.PIPE)
        assert agent.stderr is not None and b"ready" in agent.stderr.readline()
        c = client(other_ns, "tcp", db_ip, 5432, hold=4)
        time.sleep(1.0)
        assert alerts.read_bytes() == b""  # no policy: allowed
        snapshot(tmp_path, pods)  # now db accepts only web
        agent.send_signal(signal.SIGHUP)
        assert c.wait(15) == 0
        assert agent.wait(20) == 0
    [alert] = [orjson.loads(x) for x in alerts.read_bytes().splitlines()]
    assert (alert["src"], alert["dst"], alert["port"], alert["policies"]) == (
        "shop/other", "shop/db", 5432, ["shop/db-from-web"])
