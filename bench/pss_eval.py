"""PSS evaluation throughput over the 4,537 upstream fixtures, against the YAML parse time of the same files.

Run from the repository root: `python bench/pss_eval.py [--repeat N]`. Parses every fixture first (CSafeLoader),
then times evaluation alone at each fixture's own level and version (one compiled Evaluator per level/version).
"""

from __future__ import annotations

import argparse
import platform
import time

import yaml

from corpus import pss_corpus
from kubeward.engines.pss import Evaluator, parse_level, parse_version


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5, help="evaluation rounds (best is reported)")
    args = ap.parse_args()

    files = sorted(pss_corpus().glob("*/v1.*/*/*.yaml"))
    texts = [(f, f.read_text(encoding="utf-8")) for f in files]
    t0 = time.perf_counter()
    pods = [(f.parts[-4], f.parts[-3], yaml.load(text, Loader=yaml.CSafeLoader)) for f, text in texts]
    parse_s = time.perf_counter() - t0

    evaluators = {(lv, ver): Evaluator(parse_level(lv), parse_version(ver)) for lv, ver, _ in pods}
    jobs = [(evaluators[(lv, ver)], pod) for lv, ver, pod in pods]
    best = float("inf")
    denied = 0
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        denied = sum(1 for ev, pod in jobs if not ev.evaluate(pod).allowed)
        best = min(best, time.perf_counter() - t0)

    n = len(jobs)
    print(f"machine: {platform.machine()} {platform.system()} Python {platform.python_version()}")
    print(f"fixtures: {n} ({denied} denied)")
    print(f"parse (CSafeLoader): {parse_s * 1000:.1f} ms  ({n / parse_s:,.0f} files/s)")
    print(f"evaluate (best of {args.repeat}): {best * 1000:.1f} ms  ({n / best:,.0f} pods/s, "
          f"{best / n * 1e6:.1f} µs/pod)")
    print(f"evaluation / parse time: {best / parse_s:.3f}")


if __name__ == "__main__":
    main()
