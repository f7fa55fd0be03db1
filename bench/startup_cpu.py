"""Benchmark: CPU time of start-up-bound scans, to the microsecond, this tree against a baseline.

real_repos.py takes CPU from GNU time, in 10 ms steps: the one-file scan's few milliseconds either way vanish in
them. Here each command's CPU comes from wait4 (user + system, microseconds), the commands take turns in every
round, and the best of the rounds is kept (a shared machine's slow spells fall on all of them alike).

    python bench/startup_cpu.py --baseline /work/main/src --rounds 40
    KUBEWARD_WORKERS=1 python bench/startup_cpu.py --baseline /work/main/src --only pss --rounds 8
    python bench/startup_cpu.py --baseline /tmp/base/src --venv /tmp/kwvenv    # as a user's virtualenv runs it

With `--venv DIR` (a `python3 -m venv DIR && DIR/bin/pip install .`), both trees run under that virtualenv's
console script, each through PYTHONPATH: the machine's own site-packages (and whatever its `.pth` files import at
start-up) are then out of the figures, as they are on a user's machine.
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
    ap.add_argument("--venv", metavar="DIR", help="run both trees under this virtualenv (kubeward installed in it)")
    args = ap.parse_args()
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:  # as real_repos.py: run from bytecode
        os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path.home() / ".cache" / "kubeward" / "pycache"))
    here = os.environ.get("PYTHONPATH", "")
    kubeward = kubeward_binary()
    python = sys.executable
    this: dict[str, str] | None = None
    if args.venv:
        kubeward, python = str(Path(args.venv) / "bin" / "kubeward"), str(Path(args.venv) / "bin" / "python")
        this = {"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
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
                "kubeward scan": (scan, this),
                "kubeward scan (baseline)": (scan, {"PYTHONPATH": args.baseline}),
            }
            if name == "one-file":
                cmds["python3 -c pass"] = ([python, "-c", "pass"], None)
            report = root / "report.json"
            for label, (cmd, env) in cmds.items():  # warm the bytecode and page caches; check the scans' reports
                if cmd is not scan:
                    measure_once(cmd, env, (0, 1))
                    continue
                report.unlink(missing_ok=True)
                measure_once([*scan[:-1], str(report)], env, (0, 1))
                if not report.exists() or not report.read_bytes().startswith(b"{"):
                    sys.exit(f"{label}: wrote no JSON report (a crash exits 1 as findings do); not timing it")
            best = dict.fromkeys(cmds, float("inf"))
            for _ in range(args.rounds):
                for label, (cmd, env) in cmds.items():
                    best[label] = min(best[label], measure_once(cmd, env, (0, 1))[1])
            print(f"\n{name}")
            for label, cpu in best.items():
                print(f"  {label:<28} {cpu * 1000:8.1f} ms cpu")


if __name__ == "__main__":
    main()
