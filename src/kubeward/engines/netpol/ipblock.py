"""CIDR blocks with `except` holes, as integer ranges so that matching thousands of pod IPs stays cheap.

Upstream: k8s.io/api networking/v1/types.go `IPBlock` ("cidr … except … will be rejected if they are outside the
cidr range") and pkg/apis/networking/validation/validation.go `ValidateIPBlock` (except must be strictly within cidr).
"""

from __future__ import annotations

import ipaddress

from ...records import record

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Range = tuple[int, int, int]  # (version, first, last) inclusive


def parse_ip(text: str) -> IP | None:
    try:
        return ipaddress.ip_address(str(text).strip())
    except ValueError:
        return None


def ip_key(ip: IP) -> tuple[int, int]:
    return ip.version, int(ip)


def _range(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Range:
    return net.version, int(net.network_address), int(net.broadcast_address)


def _host_bits(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError:
        return True
    return False


@record(frozen=True)
class IPBlock:
    """cidr minus excepts. `problems` lists what the apiserver would reject (matching continues leniently)."""

    cidr: str
    excepts: tuple[str, ...]
    block: Range | None
    holes: tuple[Range, ...]
    problems: tuple[str, ...]

    @classmethod
    def parse(cls, spec: object) -> IPBlock:
        if not isinstance(spec, dict):
            return cls(str(spec), (), None, (), ("ipBlock must be a map",))
        cidr = str(spec.get("cidr", ""))
        raw_except = spec.get("except") or []
        excepts = tuple(str(e) for e in raw_except) if isinstance(raw_except, list) else ()
        problems: list[str] = []
        try:
            # Matching uses the network even with host bits set (older apiservers stored "<podIP>/4"); current
            # ones reject them (validation.go ValidateIPBlock, strict CIDR validation: "must not have bits set
            # beyond the prefix length"), and a CIDR needs its prefix length.
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return cls(cidr, excepts, None, (), (f"invalid cidr {cidr!r}",))
        if "/" not in cidr:
            problems.append(f"invalid cidr {cidr!r}: a prefix length is required")
        elif _host_bits(cidr):
            problems.append(f"cidr {cidr} must not have bits set beyond the prefix length")
        holes: list[Range] = []
        for e in excepts:
            try:
                hole = ipaddress.ip_network(e, strict=False)
            except ValueError:
                problems.append(f"invalid except {e!r}")
                continue
            if "/" not in e:
                problems.append(f"invalid except {e!r}: a prefix length is required")
            elif _host_bits(e):
                problems.append(f"except {e} must not have bits set beyond the prefix length")
            if hole.version != net.version or not hole.subnet_of(net) or hole == net:  # type: ignore[arg-type]
                problems.append(f"except {e} is not within CIDR range {cidr}")
            holes.append(_range(hole))
        return cls(cidr, excepts, _range(net), tuple(holes), tuple(problems))

    def contains(self, ip: IP) -> bool:
        return self.contains_key(ip.version, int(ip))

    def contains_key(self, version: int, value: int) -> bool:
        b = self.block
        if b is None or b[0] != version or not b[1] <= value <= b[2]:
            return False
        return not any(h[0] == version and h[1] <= value <= h[2] for h in self.holes)

    def __str__(self) -> str:
        return self.cidr + (f" except {','.join(self.excepts)}" if self.excepts else "")
