#!/usr/bin/env python3
"""Benchmark: `kubeward scan` vs Checkov vs the YAML parse floor on the upstream PSS fixtures (4,537 manifests).

Prints wall time and peak RSS of each, and the ratios the foundation issue targets:
kubeward >= 25x faster than Checkov, <= 2x the parse floor (PyYAML CSafeLoader alone), peak RSS <= 300 MB.

Checkov is installed into its own virtualenv (its pins would clash with ours) under ~/.cache/kubeward-bench unless
--checkov points at an existing binary; --skip-checkov measures only kubeward and the floor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from corpus import pss_corpus

ROOT = Path(__file__).resolve().parent.parent
VENV = Path.home() / ".cache" / "kubeward-bench" / "checkov-venv"

FLOOR = """
import os, sys, yaml
n = 0
for root, dirs, files in os.walk(sys.argv[1]):
    dirs.sort()
    for name in sorted(files):
        if name.endswith((".yaml", ".yml", ".json")):
            with open(os.path.join(root, name), "rb") as fh:
                n += sum(1 for _ in yaml.load_all(fh.read(), Loader=yaml.CSafeLoader))
print(n)
"""


def measure_once(cmd: list[str], env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)
                 ) -> tuple[float, float, float, str]:
    """Wall time, CPU time (user + system) and peak RSS (MB) of one run, via wait4 rusage (which includes the
    processes the command forked and waited for). A run that ends with an exit status outside `ok` stops the
    benchmark: a failed run is fast, and its time must never pass for a measurement."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err,
                                env=None if env is None else {**os.environ, **env})
        stdout = proc.stdout.read() if proc.stdout else b""
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code not in ok:
            err.seek(0)
            sys.exit(f"{cmd[0]} exited with {code}: {err.read().decode(errors='replace')[-2000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout.decode(errors="replace")


def measure(cmds: list[tuple[list[str], dict[str, str] | None, tuple[int, ...]]], repeat: int
            ) -> list[tuple[float, float, float, str]]:
    """Best wall time, best CPU time and peak RSS of each command over `repeat` rounds. The commands take turns
    within each round, so a shared machine's slow and fast spells fall on all of them alike and the ratios
    compare like with like; on such a machine CPU time moves much less than wall time."""
    best = [(float("inf"), float("inf"), 0.0, "")] * len(cmds)
    for _ in range(repeat):
        for i, (cmd, env, ok) in enumerate(cmds):
            t, cpu, rss, out = measure_once(cmd, env, ok)
            b = best[i]
            best[i] = (min(b[0], t), min(b[1], cpu), max(b[2], rss), out)
    return best


def kubeward_binary() -> str:
    """The console script of this interpreter's install (a version-manager shim would add its own start-up)."""
    beside = Path(sys.executable).parent / "kubeward"
    if beside.exists():
        return str(beside)
    return shutil.which("kubeward") or sys.exit("kubeward is not installed (pip install .)")


def checkov_binary(given: str | None) -> str:
    if given:
        return given
    found = VENV / "bin" / "checkov"
    if not found.exists():
        print(f"installing checkov into {VENV} (once) …", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "checkov"], check=True)
    return str(found)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", help="default: the tests' vendored copy of the upstream fixtures")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool; the best wall time is kept")
    ap.add_argument("--checkov", help="path to a checkov binary")
    ap.add_argument("--skip-checkov", action="store_true")
    args = ap.parse_args()
    corpus = args.corpus or str(pss_corpus())
    kubeward = kubeward_binary()
    with open("/proc/loadavg", encoding="ascii") as fh:
        load = fh.read().split()[0]

    rows: list[tuple[str, float, float, float]] = []
    scan = [kubeward, "scan", corpus, "-o", "json", "--output", os.devnull]
    found = (0, 1)  # kubeward exits 1 when findings at or above --fail-on remain
    floor, serial, default = measure([
        ([sys.executable, "-c", FLOOR, corpus], None, (0,)),
        (scan, {"KUBEWARD_WORKERS": "1"}, found),
        (scan, {"KUBEWARD_WORKERS": ""}, found),
    ], args.repeat)
    floor_t, floor_cpu, floor_rss, floor_out = floor
    rows.append((f"parse floor (CSafeLoader, {floor_out.strip()} docs)", floor_t, floor_cpu, floor_rss))
    rows.append(("kubeward scan -o json, serial (WORKERS=1)", *serial[:3]))
    kw_t, kw_cpu, kw_rss, _ = default
    rows.append(("kubeward scan -o json (default)", kw_t, kw_cpu, kw_rss))
    if not args.skip_checkov:
        ck = checkov_binary(args.checkov)
        ck_t, ck_cpu, ck_rss, _ = measure_once([ck, "-d", corpus, "--framework", "kubernetes", "-o", "json", "--quiet"],
                                               ok=(0, 1))
        rows.append(("checkov --framework kubernetes -o json", ck_t, ck_cpu, ck_rss))

    print(f"corpus: {corpus}  (cpu count {os.cpu_count()}, python {sys.version.split()[0]}, load average {load})")
    print(f"{'':<48} {'wall':>8}    {'cpu':>8}")
    for name, t, cpu, rss in rows:
        print(f"{name:<48} {t:8.2f} s  {cpu:8.2f} s  peak RSS {rss:7.1f} MB")
    print(f"kubeward / parse floor: {kw_t / floor_t:.2f}x wall, {kw_cpu / floor_cpu:.2f}x cpu   (target <= 2x)")
    print(f"kubeward peak RSS: {kw_rss:.0f} MB   (target <= 300 MB)")
    if not args.skip_checkov:
        print(f"checkov / kubeward: {ck_t / kw_t:.1f}x faster wall, {ck_cpu / kw_cpu:.1f}x cpu   (target >= 25x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
