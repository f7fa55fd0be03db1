"""`netpol reach -o json`: the reachability document written as it is computed.

Up to 10^8 pairs: the document is streamed row by row and never held whole (formats.streamed turns it into YAML
for `-o yaml`). Each row is joined from per-destination fragments encoded once, so a row costs one join.
"""

from __future__ import annotations

from typing import IO, Any

import orjson

from ..engines.netpol import ClassMatrix


def reach_json(out: IO[str], names: list[str], idx: list[int], matrix: ClassMatrix, head: dict[str, Any]) -> None:
    """Streamed row by row; each row is joined from per-destination fragments chosen by the class row bits."""
    pc = matrix.index.pod_class
    enc = [orjson.dumps(n).decode() for n in names]
    yes = [f'"to":{b},"allowed":true}}' for b in enc]
    no = [f'"to":{b},"allowed":false}}' for b in enc]
    dst_class = [pc[j] for j in idx]
    out.write(orjson.dumps(head).decode()[:-1] + ',"pods":' + orjson.dumps(names).decode() + ',"pairs":[')
    for k, (a, i) in enumerate(zip(enc, idx, strict=True)):
        row = matrix.rows[pc[i]]
        tails = [y if row >> c & 1 else n for y, n, c in zip(yes, no, dst_class, strict=True)]
        if matrix.index.cluster.pods[i].single:
            tails[k] = yes[k]  # loopback; a representative of several replicas keeps its class cell
        sep = ',{"from":' + a + ","
        out.write(("," if k else "") + '{"from":' + a + "," + sep.join(tails))
    out.write("]}\n")


def reach_ports_json(out: IO[str], names: list[str], idx: list[int], conns: Any) -> None:
    """Without --port: every ordered pair with the ports it may use (`conns(i, j)`: "All", "None", "TCP 80"...)."""
    enc = [orjson.dumps(n).decode() for n in names]
    out.write('{"pods":' + orjson.dumps(names).decode() + ',"pairs":[')
    first = True
    for a, i in zip(enc, idx, strict=True):
        for b, j in zip(enc, idx, strict=True):
            c = conns(i, j)
            item = f'{{"from":{a},"to":{b},"allowed":{"false" if c == "None" else "true"},"ports":"{c}"}}'
            out.write(item if first else "," + item)
            first = False
    out.write("]}\n")
