"""Cost of the workload/network/RBAC/secrets control set against the parse floor.

Scans the 4,537 Pod Security fixtures (the tests' vendored copy of the upstream corpus) and the bundled
demo cluster: prints the time to parse them with PyYAML's CSafeLoader alone, to load them with kubeward (positions kept), and
to run the KW-W/N/R/S controls over the loaded snapshot, best of N runs.

    python bench/controls_workload.py [--runs 5] [DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import time
from pathlib import Path

import yaml

from corpus import pss_corpus
from kubeward.controls.registry import all_controls, run
from kubeward.snapshot import Snapshot
from kubeward.sources.files import load_paths

MODULES = {f"kubeward.controls.{m}" for m in ("workload", "network", "rbac", "secrets")}


def best(fn, runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def raw(snap: Snapshot, controls: list) -> int:
    """The control functions alone, without the runner's per-finding work (refs, line lookup, sorting)."""
    n = 0
    for c in controls:
        if c.shape == "snapshot":
            n += sum(1 for _ in c.func(snap))
            continue
        for kind in c.kinds:
            for r in snap.of_kind(kind):
                target = r.pod() if c.shape == "pod" else r
                if target is not None:
                    n += sum(1 for _ in c.func(target))
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", help="default: the tests' vendored copy of the upstream fixtures")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    files = sorted(p for p in Path(args.dir or pss_corpus()).rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    def parse_only() -> int:
        n = 0
        for f in files:
            n += sum(1 for d in yaml.load_all(f.read_bytes(), Loader=loader) if d)
        return n

    t_parse, docs = best(parse_only, args.runs)
    t_load, loaded = best(lambda: load_paths([args.dir]), args.runs)
    snap = Snapshot(loaded.resources)
    controls = [c for c in all_controls().values() if c.func.__module__ in MODULES]
    t_ctl, report = best(lambda: run(snap, controls), args.runs)
    t_raw, hits = best(lambda: raw(snap, controls), args.runs)
    noop = [dataclasses.replace(c, func=lambda *_: ()) for c in controls]
    t_noop, _ = best(lambda: run(snap, noop), args.runs)
    by_shape: dict[str, float] = {}
    for c in controls:
        t, _ = best(lambda c=c: run(snap, [c]), 3)
        by_shape[c.meta.id] = t
    slowest = sorted(by_shape.items(), key=lambda kv: -kv[1])[:5]

    print(f"machine: {os.cpu_count()} cpus; files {len(files)}, documents {docs}, objects {len(snap)}")
    print(f"controls: {len(controls)} (KW-W/N/R/S)")
    print(f"parse floor (CSafeLoader)   {t_parse * 1000:8.1f} ms")
    print(f"kubeward load (positions)   {t_load * 1000:8.1f} ms")
    print(f"controls run                {t_ctl * 1000:8.1f} ms  ({len(report.findings)} findings)")
    print(f"  of which control code     {t_raw * 1000:8.1f} ms  ({hits} hits; the rest is the runner building findings)")
    print(f"  runner alone (no-op checks){t_noop * 1000:8.1f} ms  (fixed cost per control x object)")
    print(f"load + controls / floor     {(t_load + t_ctl) / t_parse:8.2f} x")
    print(f"controls / floor            {t_ctl / t_parse:8.2f} x")
    print(f"per object per control      {t_ctl / max(1, len(snap)) / len(controls) * 1e6:8.2f} us")
    print("slowest controls (through the runner): " + ", ".join(f"{cid} {t * 1000:.1f} ms" for cid, t in slowest))
    print(f"peak RSS                    {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:8.1f} MB")


if __name__ == "__main__":
    main()
