"""Render time and size of every output format, on synthetic reports and on a real scan.

Run from the repository root: `python bench/formats.py [--sizes 1000,10000,50000] [--no-scan]`.
The real scan reads the 4,537 Pod Security fixtures (bench/corpus.py) with every control.
Prints one line per (report, format): findings, seconds (best of --repeat), output size.
"""

from __future__ import annotations

import argparse
import platform
import resource
import time

from corpus import pss_corpus
from kubeward.controls.registry import Selection, all_controls, run
from kubeward.findings import ControlMeta, ControlResult, Finding, Location, ObjectRef, Report, Severity
from kubeward.formats import FORMATS, render
from kubeward.snapshot import Snapshot
from kubeward.sources.files import load_paths


def synthetic(n: int) -> Report:
    metas = [
        ControlMeta(f"B-{i:03d}", f"Benchmark control {i}", sev, "workload", ("nsa", f"cis-5.2.{i}"), "Fix it.")
        for i, sev in enumerate(sorted(Severity, reverse=True) * 4)
    ]
    findings = []
    evaluated: dict[str, list[ObjectRef]] = {m.id: [] for m in metas}
    for i in range(n):
        m = metas[i % len(metas)]
        obj = ObjectRef("apps/v1", "Deployment", f"ns-{i % 13}", f"app-{i}")
        evaluated[m.id].append(obj)
        findings.append(Finding(m, obj, Location(f"deploy/app-{i}.yaml", i % 400 + 1),
                                "/spec/template/spec/containers/0/securityContext", f'container "c{i}" runs privileged'))
    controls = {m.id: ControlResult(m, evaluated=len(evaluated[m.id]) * 2, failed=len(evaluated[m.id])) for m in metas}
    return Report(objects=n * 2, findings=findings, controls=controls, evaluated_objects=evaluated)


def real_scan() -> Report:
    loaded = load_paths([str(pss_corpus())])
    snap = Snapshot(loaded.resources, errors=loaded.errors)
    return run(snap, Selection().choose(all_controls()))


def bench(label: str, report: Report, repeat: int) -> None:
    for fmt in FORMATS:
        best = float("inf")
        size = 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = render(report, fmt, color=False, width=120)
            best = min(best, time.perf_counter() - t0)
            size = len(out.encode("utf-8"))
        print(f"{label:<28} {fmt:<6} findings={len(report.findings):>7} time={best:8.3f}s size={size / 1024:>9.0f} KiB",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-scan", action="store_true")
    args = ap.parse_args()
    print(f"python {platform.python_version()} on {platform.platform()}, {len(__import__('os').sched_getaffinity(0))} cpus")
    for n in (int(s) for s in args.sizes.split(",")):
        bench(f"synthetic {n}", synthetic(n), args.repeat)
    if not args.no_scan:
        t0 = time.perf_counter()
        report = real_scan()
        print(f"scan of {pss_corpus()}: {report.objects} objects in {time.perf_counter() - t0:.2f}s")
        bench("pod-security fixtures", report, args.repeat)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
