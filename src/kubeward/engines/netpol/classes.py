"""Reachability by equivalence classes: pods that no policy can tell apart share one row and one column.

Two pods are equivalent when they have the same namespace (hence namespace labels), the same labels, the same
named container ports, the same host-network flag and, when ipBlocks match pods, fall in the same set of ipBlocks.
Every selector, port and ipBlock then treats them alike, so the pod matrix is the class matrix indexed by class
(plus the diagonal: "a pod cannot block access to itself"; a representative of several replicas takes its class
cell, as two replicas are two pods).

Sets of classes are Python ints used as bitsets, so union and intersection over thousands of classes are single
operations. A policy contributes (destinations, sources) pairs: ingress allows per destination class are the OR
of the source sets of the rules that apply to it; egress is symmetric. `tests/unit/test_netpol_props.py` checks
the result against the pairwise definition in decide.py on random clusters.
"""

from __future__ import annotations

from collections.abc import Iterator

from ...records import record
from ...selectors import Selector
from .admin import ALLOW, DENY, PASS, AdminPolicy, AdminRule, host_node_address
from .cluster import Cluster
from .ipblock import IPBlock
from .model import Pod
from .policy import EGRESS, INGRESS, Peer, Policy, PortMatch, Rule


def bits(mask: int) -> Iterator[int]:
    """Indices of the set bits, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


@record
class PodClass:
    index: int
    rep: Pod  # any member: every member answers every question the same way
    members: list[int]  # indices into Cluster.pods


class ClassIndex:
    """Classes of a cluster plus the lookups that turn selectors, named ports and ipBlocks into class bitsets.
    Built once per cluster and reused for every port/protocol."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        pods = cluster.pods
        blocks, np_ids, admin_ids = self._blocks(cluster)
        ipsig = self._ip_signatures(pods, blocks) if blocks else [()] * len(pods)
        # `nodes` peers match host-networked pods at their nodes' addresses (admin.py host_node_address): the
        # node-IP sets holding a pod's address tell classes apart as ipBlocks do.
        node_sets = list(dict.fromkeys(p.node_ips for ap in cluster.admin for r in ap.egress for p in r.peers
                                       if p.node_ips is not None))
        nodesig = [tuple(k for k, s in enumerate(node_sets) if host_node_address(p, s)) for p in pods]
        by_key: dict[tuple[object, ...], int] = {}
        self.classes: list[PodClass] = []
        self.pod_class: list[int] = []
        for i, p in enumerate(pods):
            key = (p.namespace, frozenset(p.labels.items()), p.named_ports, ipsig[i], p.host_network, nodesig[i])
            c = by_key.get(key)
            if c is None:
                c = by_key[key] = len(self.classes)
                self.classes.append(PodClass(c, p, []))
            self.classes[c].members.append(i)
            self.pod_class.append(c)
        self.size = len(self.classes)
        self.all = (1 << self.size) - 1
        self.ns_names = sorted({k.rep.namespace for k in self.classes})
        self._ns_pos = {n: i for i, n in enumerate(self.ns_names)}
        self.ns_classes: dict[str, list[int]] = {}
        for pc in self.classes:
            self.ns_classes.setdefault(pc.rep.namespace, []).append(pc.index)
        self.ns_mask = {n: sum(1 << i for i in cs) for n, cs in self.ns_classes.items()}
        self.named: dict[tuple[str, str, int], int] = {}
        self.host_net = 0
        for pc in self.classes:
            for np_ in pc.rep.named_ports:
                self.named[np_] = self.named.get(np_, 0) | (1 << pc.index)
            if pc.rep.host_network:
                self.host_net |= 1 << pc.index
        self._block_mask: dict[int, int] = {}
        for i in range(len(pods)):
            for b in ipsig[i]:
                self._block_mask[b] = self._block_mask.get(b, 0) | (1 << self.pod_class[i])
        self._node_id = {s: k for k, s in enumerate(node_sets)}
        self._node_mask: dict[int, int] = {}
        for i in range(len(pods)):
            for k in nodesig[i]:
                self._node_mask[k] = self._node_mask.get(k, 0) | (1 << self.pod_class[i])
        self._np_block_id = np_ids  # NetworkPolicy ipBlocks: only when they match pod IPs (implementation-defined)
        self._admin_block_id = admin_ids  # ANP/BANP networks always match pod IPs (the API says so)
        self._ns_cache: dict[str, int] = {}
        self._pod_cache: dict[tuple[str, int], int] = {}
        self._policy_subject: dict[int, int] = {}

    # -- construction helpers ------------------------------------------------------------------------------
    @staticmethod
    def _blocks(cluster: Cluster) -> tuple[list[IPBlock], dict[tuple[str, tuple[str, ...]], int],
                                           dict[tuple[str, tuple[str, ...]], int]]:
        """The blocks whose pod IPs tell classes apart, with their ids for NetworkPolicy ipBlocks (only when
        `ipblock_matches_pods`) and for admin `networks` (always)."""
        blocks: list[IPBlock] = []
        ids: dict[tuple[str, tuple[str, ...]], int] = {}
        np_ids: dict[tuple[str, tuple[str, ...]], int] = {}
        admin_ids: dict[tuple[str, tuple[str, ...]], int] = {}

        def add(b: IPBlock, into: dict[tuple[str, tuple[str, ...]], int]) -> None:
            key = (b.cidr, b.excepts)
            if key not in ids:
                ids[key] = len(blocks)
                blocks.append(b)
            into[key] = ids[key]

        if cluster.ipblock_matches_pods:
            for pol in cluster.policies:
                for rule in (*pol.ingress, *pol.egress):
                    for peer in rule.peers or ():
                        if peer.ip_block is not None:
                            add(peer.ip_block, np_ids)
        for ap in cluster.admin:
            for arule in (*ap.ingress, *ap.egress):
                for apeer in arule.peers:
                    for b in apeer.networks:
                        add(b, admin_ids)
        return blocks, np_ids, admin_ids

    @staticmethod
    def _ip_signatures(pods: list[Pod], blocks: list[IPBlock]) -> list[tuple[int, ...]]:
        """Per pod, the ipBlocks containing one of its IPs, by a sweep over the blocks' boundaries (each block is
        cidr minus its holes, as disjoint intervals), so the cost is O((pods + blocks) log) rather than a product."""
        events: list[tuple[int, int, int, int]] = []  # (version, position, +1/-1, block)
        for b_i, b in enumerate(blocks):
            if b.block is None:
                continue
            v, lo, hi = b.block
            cur = lo
            for _, h_lo, h_hi in sorted(h for h in b.holes if h[0] == v):
                if h_lo > cur:
                    events += [(v, cur, 1, b_i), (v, min(h_lo - 1, hi) + 1, -1, b_i)]
                cur = max(cur, h_hi + 1)
                if cur > hi:
                    break
            if cur <= hi:
                events += [(v, cur, 1, b_i), (v, hi + 1, -1, b_i)]
        events.sort(key=lambda e: (e[0], e[1]))
        keyed = sorted(((ip.version, int(ip)), i) for i, p in enumerate(pods) for ip in p.ips)
        sig: list[set[int]] = [set() for _ in pods]
        active: dict[int, int] = {}
        current: tuple[int, ...] = ()
        e_i = 0
        for (ver, val), pod_i in keyed:
            changed = False
            while e_i < len(events) and (events[e_i][0], events[e_i][1]) <= (ver, val):
                _, _, delta, b_i = events[e_i]
                active[b_i] = active.get(b_i, 0) + delta
                if not active[b_i]:
                    del active[b_i]
                e_i += 1
                changed = True
            if changed:
                current = tuple(sorted(active))
            sig[pod_i].update(current)
        return [tuple(sorted(s)) for s in sig]

    # -- selectors as bitsets ------------------------------------------------------------------------------
    def namespaces_matching(self, sel: Selector) -> int:
        """Classes in namespaces whose labels match `sel` (cached by selector text)."""
        found = self._ns_cache.get(sel.text)
        if found is None:
            labels = self.cluster.namespaces
            found = 0
            for n in self.ns_names:
                if sel.matches(labels.get(n) or {"kubernetes.io/metadata.name": n}):
                    found |= self.ns_mask[n]
            self._ns_cache[sel.text] = found
        return found

    def pods_matching(self, sel: Selector | None, within: int) -> int:
        """Classes inside `within` whose pod labels match `sel` (None = all of them)."""
        if sel is None or sel.empty:
            return within
        key = (sel.text, within)
        found = self._pod_cache.get(key)
        if found is None:
            found = 0
            for c in bits(within):
                if sel.matches(self.classes[c].rep.labels):
                    found |= 1 << c
            self._pod_cache[key] = found
        return found

    def subject(self, pol: Policy) -> int:
        found = self._policy_subject.get(id(pol))
        if found is None:
            own = self.ns_mask.get(pol.namespace, 0)
            found = self.pods_matching(pol.pod_sel, own) if pol.pod_sel is not None else 0
            self._policy_subject[id(pol)] = found
        return found

    def peer_mask(self, peer: Peer, policy_ns: str) -> int:
        if not peer.valid:
            return 0
        if peer.ip_block is not None:
            b = self._np_block_id.get((peer.ip_block.cidr, peer.ip_block.excepts))
            return self._block_mask.get(b, 0) if b is not None else 0
        within = self.namespaces_matching(peer.ns_sel) if peer.ns_sel is not None else self.ns_mask.get(policy_ns, 0)
        return self.pods_matching(peer.pod_sel, within)

    def rule_peers(self, rule: Rule, policy_ns: str) -> int:
        if rule.peers is None:
            return self.all
        m = 0
        for p in rule.peers:
            m |= self.peer_mask(p, policy_ns)
        return m

    def ports_mask(self, ports: tuple[PortMatch, ...] | None, port: int, protocol: str) -> int:
        """Destination classes on which a `ports` list matches port/protocol (named ports resolve per class)."""
        if ports is None:
            return self.all
        m = 0
        for pm in ports:
            if not pm.valid or pm.protocol != protocol:
                continue
            if isinstance(pm.port, str):
                m |= self.named.get((pm.port, protocol, port), 0)
            elif pm.matches(port, protocol, None):
                return self.all
        return m

    def admin_subject(self, ap: AdminPolicy) -> int:
        found = self._policy_subject.get(id(ap))
        if found is None:
            found = 0
            if ap.subject_ns is not None:
                found = self.pods_matching(ap.subject_pods, self.namespaces_matching(ap.subject_ns))
            found &= ~self.host_net
            self._policy_subject[id(ap)] = found
        return found

    def admin_peers(self, rule: AdminRule) -> int:
        m = 0
        for p in rule.peers:
            if p.any_peer:
                return self.all
            if not p.valid:
                continue
            if p.node_ips is not None:
                m |= self._node_mask.get(self._node_id[p.node_ips], 0)
            elif p.networks:
                for b in p.networks:
                    bid = self._admin_block_id.get((b.cidr, b.excepts))
                    if bid is not None:
                        m |= self._block_mask.get(bid, 0)
            elif p.ns_sel is not None:
                m |= self.pods_matching(p.pod_sel, self.namespaces_matching(p.ns_sel)) & ~self.host_net
        return m

    def matrix(self, port: int, protocol: str = "TCP") -> ClassMatrix:
        return compute(self, port, protocol)


@record
class ClassMatrix:
    index: ClassIndex
    port: int
    protocol: str
    rows: list[int]  # rows[s]: bitset of destination classes reachable from class s
    ingress_isolated: int
    egress_isolated: int

    def class_allowed(self, s: int, d: int) -> bool:
        return bool(self.rows[s] >> d & 1)

    def allowed(self, i: int, j: int) -> bool:
        """Pod i → pod j (indices into Cluster.pods)."""
        if i == j and self.index.cluster.pods[i].single:
            return True  # loopback; a representative of several replicas is decided by its class cell
        pc = self.index.pod_class
        return bool(self.rows[pc[i]] >> pc[j] & 1)

    def allowed_pairs(self) -> int:
        """Number of allowed ordered pairs of `Cluster.pods` entries, self pairs included, without expanding the
        matrix (a workload representative counts as one entry)."""
        by_size: dict[int, int] = {}
        for c in self.index.classes:
            by_size[len(c.members)] = by_size.get(len(c.members), 0) | (1 << c.index)
        pods = self.index.cluster.pods
        total = 0
        for s, row in enumerate(self.rows):
            cls = self.index.classes[s]
            total += len(cls.members) * sum(w * (row & m).bit_count() for w, m in by_size.items())
            if not row >> s & 1:
                total += sum(1 for i in cls.members if pods[i].single)  # loopback is always allowed
        return total


def _np_contributions(idx: ClassIndex, port: int, protocol: str) -> tuple[list[int], list[int], int, int]:
    """NetworkPolicy tier: per class the allowed peers (ingress sources, egress destinations) and the isolated
    sets. Isolation depends on policyTypes only (docs "The two sorts of pod isolation")."""
    k = idx.size
    ing, egr = [0] * k, [0] * k
    ing_iso = egr_iso = 0
    for pol in idx.cluster.policies:
        subj = idx.subject(pol)
        if not subj:
            continue
        if INGRESS in pol.types:
            ing_iso |= subj
            for rule in pol.ingress:
                dst = subj & idx.ports_mask(rule.ports, port, protocol)
                if dst:
                    src = idx.rule_peers(rule, pol.namespace)
                    if src:
                        for d in bits(dst):
                            ing[d] |= src
        if EGRESS in pol.types:
            egr_iso |= subj
            for rule in pol.egress:
                dst = idx.rule_peers(rule, pol.namespace) & idx.ports_mask(rule.ports, port, protocol)
                if dst:
                    for s in bits(subj):
                        egr[s] |= dst
    return ing, egr, ing_iso, egr_iso


def _tiered(idx: ClassIndex, c: int, direction: str, np_allowed: int, isolated: bool, port: int,
            protocol: str) -> int:
    """ANP rules in order, then NetworkPolicy (when it isolates), then the BANP, then allow (admin.py)."""
    rest, allowed, passed = idx.all, 0, 0
    banps = []
    bit = 1 << c
    for ap in idx.cluster.admin:
        if ap.kind != "AdminNetworkPolicy":
            banps.append(ap)
            continue
        if not idx.admin_subject(ap) & bit:
            continue
        for rule in ap.rules(direction):
            m = idx.admin_peers(rule) & rest & _admin_ports(idx, rule, direction, bit, port, protocol)
            if not m:
                continue
            if rule.action == ALLOW:
                allowed |= m
            elif rule.action == PASS:
                passed |= m
            rest &= ~m
        # Pass skips the remaining ANPs only for the traffic it matched; the rest continues down the list.
    to_np = rest | passed
    if isolated:
        return allowed | (to_np & np_allowed)
    for bp in banps:
        if not idx.admin_subject(bp) & bit:
            continue
        for rule in bp.rules(direction):
            m = idx.admin_peers(rule) & to_np & _admin_ports(idx, rule, direction, bit, port, protocol)
            if rule.action == ALLOW:
                allowed |= m
            elif rule.action != DENY:
                continue
            to_np &= ~m
    return allowed | to_np


def _admin_ports(idx: ClassIndex, rule: AdminRule, direction: str, bit: int, port: int, protocol: str) -> int:
    m = idx.ports_mask(rule.ports, port, protocol)
    if direction == INGRESS:  # the subject is the destination: the rule applies to it entirely or not at all
        return idx.all if m & bit else 0
    return m


def _transpose(rows: list[int], size: int, full: int) -> list[int]:
    """cols[s] = {d : s in rows[d]}: grouped by identical rows, dense rows handled by their complement."""
    groups: dict[int, int] = {}
    for d, v in enumerate(rows):
        groups[v] = groups.get(v, 0) | (1 << d)
    cols = [0] * size
    dense_all = 0
    missing = [0] * size
    for v, dmask in groups.items():
        if v.bit_count() * 2 > size:
            dense_all |= dmask
            for s in bits(full & ~v):
                missing[s] |= dmask
        else:
            for s in bits(v):
                cols[s] |= dmask
    if dense_all:
        for s in range(size):
            cols[s] |= dense_all & ~missing[s]
    return cols


def compute(idx: ClassIndex, port: int, protocol: str = "TCP") -> ClassMatrix:
    ing, egr, ing_iso, egr_iso = _np_contributions(idx, port, protocol)
    full = idx.all
    if idx.cluster.admin:
        ing = [_tiered(idx, c, INGRESS, ing[c], bool(ing_iso >> c & 1), port, protocol) for c in range(idx.size)]
        egr = [_tiered(idx, c, EGRESS, egr[c], bool(egr_iso >> c & 1), port, protocol) for c in range(idx.size)]
    else:
        ing = [ing[c] if ing_iso >> c & 1 else full for c in range(idx.size)]
        egr = [egr[c] if egr_iso >> c & 1 else full for c in range(idx.size)]
    cols = _transpose(ing, idx.size, full)
    rows = [egr[s] & cols[s] for s in range(idx.size)]
    return ClassMatrix(idx, port, protocol, rows, ing_iso, egr_iso)
