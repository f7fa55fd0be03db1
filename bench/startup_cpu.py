"""Benchmark: CPU time of start-up-bound scans, to the microsecond, this tree against a baseline.

real_repos.py takes CPU from GNU time, in 10 ms steps: the one-file scan's few milliseconds either way vanish in
them. Here each command's CPU comes from wait4 (user + system, microseconds), the commands take turns in every
round, and the best of the rounds is kept (a shared machine's slow spells fall on all of them alike).

    python bench/startup_cpu.py --baseline /work/main/src --rounds 40
    KUBEWARD_WORKERS=1 python bench/startup_cpu.py --baseline /work/main/src --only pss --rounds 8
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from corpus import pss_corpus
from real_repos import make_one_file, make_operator
from scan_vs_checkov import kubeward_binary, measure_once


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", metavar="SRC", required=True, help="the other tree's src/ (its PYTHONPATH)")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--only", default="one-file,operator", help="comma-separated: one-file, operator, pss")
    args = ap.parse_args()
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:  # as real_repos.py: run from bytecode
        os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path.home() / ".cache" / "kubeward" / "pycache"))
    here = os.environ.get("PYTHONPATH", "")
    kubeward = kubeward_binary()
    with tempfile.TemporaryDirectory(prefix="kubeward-startup-") as tmp:
        root = Path(tmp)
        none = root / "no-exceptions.yaml"
        none.write_text("")
        corpora = {"one-file": lambda: make_one_file(root), "operator": lambda: make_operator(root),
                   "pss": pss_corpus}
        with open("/proc/loadavg", encoding="ascii") as fh:
            print(f"load average {fh.read().split()[0]}; {args.rounds} rounds; PYTHONPATH={here or '(unset)'}")
        for name in args.only.split(","):
            corpus = str(corpora[name]())
            scan = [kubeward, "scan", corpus, "-o", "json", "--exceptions", str(none), "--output", os.devnull]
            cmds: dict[str, tuple[list[str], dict[str, str] | None]] = {
                "kubeward scan": (scan, None),
                "kubeward scan (baseline)": (scan, {"PYTHONPATH": args.baseline}),
            }
            if name == "one-file":
                cmds["python3 -c pass"] = ([sys.executable, "-c", "pass"], None)
            measure_once(scan, None, (0, 1))  # warm the bytecode and page caches
            best = dict.fromkeys(cmds, float("inf"))
            for _ in range(args.rounds):
                for label, (cmd, env) in cmds.items():
                    best[label] = min(best[label], measure_once(cmd, env, (0, 1))[1])
            print(f"\n{name}")
            for label, cpu in best.items():
                print(f"  {label:<28} {cpu * 1000:8.1f} ms cpu")


if __name__ == "__main__":
    main()
