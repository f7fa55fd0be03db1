"""`agent netpol enforce` proved with real packets: the upstream NetworkPolicy e2e model (namespaces x,y,z × pods
a,b,c) as nine network namespaces on a bridge (10.250.x.y, never leaving the machine), every TCP probe of the
transcribed upstream cases (tests/data/netpol) run between the namespaces: a TCP connect(), or a UDP datagram
answered by an echo server."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.e2e

if shutil.which("nft") is None or subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
    pytest.skip("needs root and nftables", allow_module_level=True)

NAMESPACES, PODS = ("x", "y", "z"), ("a", "b", "c")
KEYS = [f"{ns}/{p}" for ns in NAMESPACES for p in PODS]
DATA = Path("tests/data/netpol")
_IP_REF = re.compile(r"\{ip:([a-z]/[a-z])\}")
PROTOCOLS = ("TCP", "UDP")  # SCTP needs the sctp module and a client; its cases stay with the engine tests
_RULE = re.compile(r"^\s*(\S+)\s*->\s*(\S+)\s*:\s*(true|false)\s*$")

PROBER = """
import select, socket, sys, threading
ports = [int(p) for p in sys.argv[1:]]
tcp, udp = [], []
for p in ports:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", p)); s.listen(64); s.setblocking(False); tcp.append(s)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", p)); u.setblocking(False); udp.append(u)
def serve():
    while True:
        r, _, _ = select.select(tcp + udp, [], [], 0.5)
        for s in r:
            try:
                if s.type == socket.SOCK_STREAM:
                    s.accept()[0].close()
                else:
                    data, addr = s.recvfrom(64); s.sendto(data, addr)  # echo: the reply proves delivery
            except OSError:
                pass
threading.Thread(target=serve, daemon=True).start()
print("up", flush=True)
for line in sys.stdin:
    ip, port, proto = line.split()
    ok = "0"
    try:
        if proto == "TCP":
            c = socket.create_connection((ip, int(port)), timeout=1.0); c.close(); ok = "1"
        else:
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(1.0)
            c.connect((ip, int(port))); c.send(b"probe")
            ok = "1" if c.recv(64) == b"probe" else "0"; c.close()
    except OSError:
        pass
    print(ok, flush=True)
"""


def _tcp_ports() -> list[int]:
    ports: set[int] = set()
    for f in ("upstream_e2e.yaml", "endport.yaml", "admin.yaml"):
        for case in yaml.safe_load((DATA / f).read_text()):
            for step in case["steps"]:
                ports.update(p["port"] for p in step["probes"] if p["protocol"] in PROTOCOLS)
    return sorted(ports)


class Lab:
    """Nine pod namespaces plus a bridge namespace; a prober per pod that serves the ports and runs connects."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:4]
        self.subnet = 100 + int(tag, 16) % 100
        self.bridge = f"kwtest-{tag}-br"
        self.netns = {k: f"kwtest-{tag}-{k.replace('/', '-')}" for k in KEYS}
        self.ips = {k: f"10.250.{self.subnet}.{i + 1}" for i, k in enumerate(KEYS)}
        self.made: list[str] = []
        self.probers: dict[str, subprocess.Popen[str]] = {}
        sh = self._sh
        sh("ip", "netns", "add", self.bridge)
        self.made.append(self.bridge)
        sh("ip", "-n", self.bridge, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.bridge, "link", "set", "br0", "up")
        for i, k in enumerate(KEYS):
            ns = self.netns[k]
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            a, b = f"kw{tag}{i}a", f"kw{tag}{i}b"
            sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            sh("ip", "link", "set", a, "netns", ns)
            sh("ip", "link", "set", b, "netns", self.bridge)
            sh("ip", "-n", self.bridge, "link", "set", b, "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", f"{self.ips[k]}/24", "dev", a)
            sh("ip", "-n", ns, "link", "set", a, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        ports = [str(p) for p in _tcp_ports()]
        for k in KEYS:
            p = subprocess.Popen(["ip", "netns", "exec", self.netns[k], sys.executable, "-c", PROBER, *ports],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self.probers[k] = p
            assert p.stdout is not None and p.stdout.readline().strip() == "up"

    @staticmethod
    def _sh(*argv: str) -> None:
        subprocess.run(argv, check=True, capture_output=True)

    def probe_all(self, port: int, protocol: str = "TCP") -> dict[tuple[str, str], bool]:
        out: dict[tuple[str, str], bool] = {}

        def from_src(src: str) -> None:
            p = self.probers[src]
            assert p.stdin is not None and p.stdout is not None
            for dst in KEYS:
                if dst != src:
                    p.stdin.write(f"{self.ips[dst]} {port} {protocol}\n")
                    p.stdin.flush()
                    out[(src, dst)] = p.stdout.readline().strip() == "1"

        threads = [threading.Thread(target=from_src, args=(k,)) for k in KEYS]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return out

    def close(self) -> None:
        for p in self.probers.values():
            p.kill()
            p.wait(5)
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


def _subst(value: Any, ips: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _IP_REF.sub(lambda m: ips[m.group(1)], value)
    if isinstance(value, list):
        return [_subst(v, ips) for v in value]
    if isinstance(value, dict):
        return {k: _subst(v, ips) for k, v in value.items()}
    return value


def _truth(expect: list[str]) -> dict[tuple[str, str], bool]:
    def match(pattern: str, pod: str) -> bool:
        if pattern == "*":
            return True
        pns, _, pname = pattern.partition("/")
        ns, _, name = pod.partition("/")
        return pns in ("*", ns) and pname in ("*", name)

    table = {(a, b): True for a in KEYS for b in KEYS}
    for line in expect:
        m = _RULE.match(line)
        assert m is not None, line
        for a in KEYS:
            for b in KEYS:
                if match(m.group(1), a) and match(m.group(2), b):
                    table[(a, b)] = m.group(3) == "true"
    return table


def _as_list(objs: list[dict[str, Any]]) -> str:
    """JSON, not PyYAML's dump: PyYAML leaves `y` unquoted, and Kubernetes (YAML 1.1 via sigs.k8s.io/yaml) reads
    that as the boolean true, so a namespace named y would be refused as kubectl refuses it."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objs})


def _snapshot(case: dict[str, Any], state: dict[str, Any], ips: dict[str, str]) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = []
    for ns in NAMESPACES:
        objs.append({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns, **state["ns"][ns]}}})
    for k in KEYS:
        ns, name = k.split("/")
        containers = [{"name": f"cont-{port}-{proto.lower()}", "image": "agnhost",
                       "ports": [{"name": f"serve-{port}-{proto.lower()}", "containerPort": port, "protocol": proto}]}
                      for port in case["ports"] for proto in case["protocols"]]
        objs.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": name, "namespace": ns, "labels": dict(state["pods"][k])},
                     "spec": {"containers": containers}, "status": {"podIP": ips[k], "podIPs": [{"ip": ips[k]}]}})
    objs.extend(state["policies"].values())
    return objs


def _cases() -> list[Any]:
    out = []
    for f in ("upstream_e2e.yaml", "endport.yaml", "admin.yaml"):
        for case in yaml.safe_load((DATA / f).read_text()):
            if any(p["protocol"] in PROTOCOLS for s in case["steps"] for p in s["probes"]):
                out.append(pytest.param(case, id=f"{f.split('.')[0]}: {case['name']}"))
    return out


def _enforce(lab: Lab, snap: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    netns = [a for k in KEYS for a in ("--netns", lab.netns[k])]
    return subprocess.run([sys.executable, "-m", "kubeward.cli.main", "agent", "netpol", "enforce",
                           "--snapshot", str(snap), *netns, *extra], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", _cases())
def test_upstream_case_with_real_packets(case: dict[str, Any], lab: Lab, tmp_path: Path) -> None:
    state: dict[str, Any] = {"ns": {ns: {} for ns in NAMESPACES}, "pods": {k: {"pod": k.split("/")[1]} for k in KEYS},
                             "policies": {}}
    try:
        for n, step in enumerate(case["steps"]):
            if step.get("delete_all"):
                state["policies"].clear()
            for ns, labels in (step.get("ns_labels") or {}).items():
                state["ns"][ns].update(labels)
            for pod, labels in (step.get("pod_labels") or {}).items():
                state["pods"][pod].update(labels)
            for entry in step.get("create") or []:
                kind = entry.get("kind", "NetworkPolicy")
                group = "networking.k8s.io/v1" if kind == "NetworkPolicy" else "policy.networking.k8s.io/v1alpha1"
                meta = {"name": entry["name"]}
                if kind == "NetworkPolicy":
                    meta["namespace"] = entry["namespace"]
                state["policies"][(kind, entry.get("namespace", ""), entry["name"])] = {
                    "apiVersion": group, "kind": kind, "metadata": meta,
                    "spec": _subst(copy.deepcopy(entry["spec"]), lab.ips)}
            snap = tmp_path / f"step{n}.yaml"
            snap.write_text(_as_list(_snapshot(case, state, lab.ips)))
            r = _enforce(lab, snap, "--reject")
            assert r.returncode == 0, r.stderr
            for probe in step["probes"]:
                if probe["protocol"] not in PROTOCOLS:
                    continue
                want = _truth(probe["expect"])
                got = lab.probe_all(probe["port"], probe["protocol"])
                wrong = [f"{a}->{b} want {want[(a, b)]} got {v}" for (a, b), v in got.items() if v != want[(a, b)]]
                assert not wrong, f"step {n} {probe['protocol']}/{probe['port']}: " + "; ".join(wrong)
    finally:
        netns = [a for k in KEYS for a in ("--netns", lab.netns[k])]
        subprocess.run([sys.executable, "-m", "kubeward.cli.main", "agent", "netpol", "enforce", "--snapshot",
                        "-", "--remove", *netns], capture_output=True, input="", text=True, timeout=60)


def test_dry_run_and_remove(lab: Lab, tmp_path: Path) -> None:
    snap = tmp_path / "s.yaml"
    case = {"ports": [80], "protocols": ["TCP"]}
    state = {"ns": {ns: {} for ns in NAMESPACES}, "pods": {k: {"pod": k.split("/")[1]} for k in KEYS},
             "policies": {("NetworkPolicy", "x", "deny"): {
                 "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                 "metadata": {"name": "deny", "namespace": "x"},
                 "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}}}
    snap.write_text(_as_list(_snapshot(case, state, lab.ips)))
    r = _enforce(lab, snap, "--dry-run")
    assert r.returncode == 0 and "table inet kubeward" in r.stdout and f"# netns {lab.netns['x/a']}: x/a" in r.stdout
    assert lab.probe_all(80)[("y/a", "x/a")] is True  # dry run loaded nothing
    assert _enforce(lab, snap).returncode == 0
    assert lab.probe_all(80)[("y/a", "x/b")] is False
    netns = [a for k in KEYS for a in ("--netns", lab.netns[k])]
    r = subprocess.run([sys.executable, "-m", "kubeward.cli.main", "agent", "netpol", "enforce", "--snapshot",
                        str(snap), "--remove", *netns], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert lab.probe_all(80)[("y/a", "x/b")] is True


def test_namespace_files_work_like_names(lab: Lab, tmp_path: Path) -> None:
    """On a node, pod namespaces are files such as /proc/<pid>/ns/net; /run/netns/<name> is one too."""
    snap = tmp_path / "s.yaml"
    state = {"ns": {ns: {} for ns in NAMESPACES}, "pods": {k: {"pod": k.split("/")[1]} for k in KEYS},
             "policies": {}}
    snap.write_text(_as_list(_snapshot({"ports": [80], "protocols": ["TCP"]}, state, lab.ips)))
    r = subprocess.run([sys.executable, "-m", "kubeward.cli.main", "agent", "netpol", "enforce", "--snapshot",
                        str(snap), "--netns", f"/run/netns/{lab.netns['y/b']}", "--dry-run"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"# netns /run/netns/{lab.netns['y/b']}: y/b" in r.stdout
    assert f"ip daddr {lab.ips['y/b']} ip saddr {lab.ips['x/a']} meta l4proto tcp accept" in r.stdout
