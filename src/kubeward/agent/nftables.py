"""NetworkPolicy enforcement inside pod network namespaces with nftables, compiled from the engine's class matrix.

Each destination pod's namespace gets `table inet kubeward`: replies of established connections pass, then for
every source class the port ranges the engine allows (ports.PortSpace: NetworkPolicy, AdminNetworkPolicy and
BaselineAdminNetworkPolicy tiers, named ports resolved, egress of the source AND ingress of the destination), then
TCP/UDP/SCTP from any other pod of the snapshot is dropped (or rejected). What is enforced is exactly the pod-to-pod
matrix: traffic from addresses that are not pods of the snapshot (the node, the outside) is left alone, and
NetworkPolicy does not govern ICMP (docs: "NetworkPolicy ... TCP, UDP, and SCTP"), so ICMP passes.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from ..engines.netpol import ClassIndex, Cluster
from ..engines.netpol.model import Pod
from ..engines.netpol.ports import MAX_PORT, PortSpace

TABLE = "kubeward"
_L4 = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


class NftError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Plan:
    netns: str
    pods: list[str]
    script: str
    rules: int


def _family(ip: str) -> str:
    return "ip6" if ipaddress.ip_address(ip).version == 6 else "ip"


def _ports(ranges: list[tuple[int, int]]) -> str:
    items = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges]
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _set(ips: Sequence[str]) -> str:
    return ips[0] if len(ips) == 1 else "{ " + ", ".join(ips) + " }"


class Compiler:
    """Built once per snapshot; `plan(netns, local_ips)` gives the table for one network namespace."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.index = ClassIndex(cluster)
        self.space = PortSpace.build(self.index)
        # source IPs per class, per family; host-network pods carry the node's address: node traffic is allowed
        self.class_ips: dict[int, dict[str, list[str]]] = {}
        for i, pod in enumerate(cluster.pods):
            if pod.host_network:
                continue
            c = self.index.pod_class[i]
            for ip in pod.ips:
                text = str(ip)
                self.class_ips.setdefault(c, {}).setdefault(_family(text), []).append(text)
        self.by_ip: dict[str, tuple[int, Pod]] = {}
        for i, pod in enumerate(cluster.pods):
            if not pod.host_network:
                for ip in pod.ips:
                    self.by_ip[str(ip)] = (i, pod)

    def plan(self, netns: str, local_ips: Sequence[str], *, reject: bool = False) -> Plan:
        lines = [f"table inet {TABLE} {{", "  chain input {",
                 "    type filter hook input priority filter; policy accept;",
                 "    ct state established,related accept", '    iifname "lo" accept']
        rules = 0
        pods: list[str] = []
        verdict = "reject with icmpx admin-prohibited" if reject else "drop"
        for ip in local_ips:
            found = self.by_ip.get(ip)
            if found is None:
                continue
            i, pod = found
            pods.append(pod.key)
            fam, d = _family(ip), self.index.pod_class[i]
            for s, fams in sorted(self.class_ips.items()):
                srcs = [x for x in fams.get(fam, []) if x != ip]
                if not srcs:
                    continue
                allowed = self.space.allowed(s, d)
                match = f"{fam} daddr {ip} {fam} saddr {_set(srcs)}"
                for proto, ranges in sorted(allowed.items()):
                    if ranges == [(1, MAX_PORT)]:
                        lines.append(f"    {match} meta l4proto {_L4[proto]} accept")
                    else:
                        lines.append(f"    {match} {_L4[proto]} dport {_ports(ranges)} accept")
                    rules += 1
            everyone = sorted((x for fams in self.class_ips.values() for x in fams.get(fam, []) if x != ip),
                              key=ipaddress.ip_address)
            if everyone:
                lines.append(f"    {fam} daddr {ip} {fam} saddr {_set(everyone)} meta l4proto "
                             f"{{ tcp, udp, sctp }} {verdict}")
                rules += 1
        lines += ["  }", "}"]
        # create-then-delete makes the replacement atomic and idempotent in one nft transaction
        script = f"table inet {TABLE}\ndelete table inet {TABLE}\n" + "\n".join(lines) + "\n"
        return Plan(netns, pods, script, rules)


def in_netns(netns: str) -> list[str]:
    """Command prefix running inside a network namespace: an `ip netns` name, or a namespace file such as
    /proc/<pid>/ns/net (a pod's sandbox process on a node)."""
    if netns.startswith("/"):
        return ["nsenter", f"--net={netns}", "--"]
    return ["ip", "netns", "exec", netns]


def netns_addresses(netns: str) -> list[str]:
    """Addresses configured in the namespace (`ip -j addr`), loopback excluded."""
    import orjson

    r = subprocess.run([*in_netns(netns), "ip", "-j", "addr", "show"], capture_output=True, timeout=10)
    if r.returncode != 0:
        raise NftError(f"{netns}: {r.stderr.decode(errors='replace').strip() or 'ip addr failed'}")
    out: list[str] = []
    for link in orjson.loads(r.stdout or b"[]"):
        for a in link.get("addr_info", []):
            local = a.get("local")
            if local and not ipaddress.ip_address(local).is_loopback:
                out.append(str(local))
    return out


def apply(plan: Plan) -> None:
    r = subprocess.run([*in_netns(plan.netns), "nft", "-f", "-"], input=plan.script.encode(),
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        first = (r.stderr.decode(errors="replace").strip().splitlines() or ["nft failed"])[0]
        raise NftError(f"{plan.netns}: nft: {first}")


def remove(netns: str) -> None:
    script = f"table inet {TABLE}\ndelete table inet {TABLE}\n"
    r = subprocess.run([*in_netns(netns), "nft", "-f", "-"], input=script.encode(),
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        raise NftError(f"{netns}: nft: {r.stderr.decode(errors='replace').strip()}")
