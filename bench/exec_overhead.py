"""Exec latency with no agent, with `agent exec enforce` and with `--mode alert` (needs root).

2,000 execs (default) of a small binary from a private tmpfs, launched by a /bin/sh loop so the figure is the
fork+exec cost a workload sees. The agent marks only that tmpfs. Prints per-exec latency and ratios.
Run: sudo python bench/exec_overhead.py [--execs N] [--rounds R]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def loop_seconds(binary: Path, n: int) -> float:
    script = f'i=0; while [ $i -lt {n} ]; do {binary} || exit 1; i=$((i+1)); done'
    t0 = time.perf_counter()
    subprocess.run(["/bin/sh", "-c", script], check=True)
    return time.perf_counter() - t0


def start_agent(allowlist: Path, mnt: Path, mode: str) -> subprocess.Popen[bytes]:
    p = subprocess.Popen([sys.executable, "-m", "kubeward.cli.main", "agent", "exec", "enforce",
                          "--allowlist", str(allowlist), "--mount", str(mnt), "--mode", mode, "--alerts", "-"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert p.stderr is not None
    line = p.stderr.readline().decode()
    if "ready" not in line:
        raise SystemExit(f"agent did not start: {line}")
    return p


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--execs", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kw-bench-") as tmp:
        mnt = Path(tmp) / "mnt"
        mnt.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "none", str(mnt)], check=True)
        try:
            binary = mnt / "true"
            shutil.copy2("/bin/true", binary)
            allowlist = Path(tmp) / "al.yaml"
            # a realistic list: the allowed binary sits behind 200 other rules and globs
            rules = [{"name": f"r{i}", "scope": {"cgroup": f"/kubepods/pod{i}"}, "executables": [f"/opt/{i}/*"]}
                     for i in range(200)]
            rules.append({"name": "host", "scope": {"host": True},
                          "executables": ["/usr/bin/*", "/bin/*", str(mnt / "t*")]})
            allowlist.write_text(yaml.safe_dump({"apiVersion": "kubeward.io/v1", "kind": "ExecAllowlist",
                                                 "metadata": {"name": "bench"}, "spec": {"rules": rules}}))
            loop_seconds(binary, 200)  # warm caches
            results: dict[str, list[float]] = {"none": [], "enforce": [], "alert": []}
            for _ in range(args.rounds):
                for mode in ("none", "enforce", "alert"):
                    agent = None if mode == "none" else start_agent(allowlist, mnt, mode)
                    try:
                        results[mode].append(loop_seconds(binary, args.execs) / args.execs * 1e6)
                    finally:
                        if agent is not None:
                            agent.send_signal(signal.SIGTERM)
                            agent.wait(10)
        finally:
            subprocess.run(["umount", str(mnt)], check=False)
    base, best = statistics.median(results["none"]), min(results["none"])
    print(f"execs per run: {args.execs}, rounds: {args.rounds} (modes interleaved each round)")
    for mode, values in results.items():
        med, low = statistics.median(values), min(values)
        print(f"  {mode:8s} median {med:8.1f} us/exec ({med / base:4.2f}x)   best {low:8.1f} us/exec "
              f"({low / best:4.2f}x)   runs: " + ", ".join(f"{v:.0f}" for v in values))


if __name__ == "__main__":
    main()
