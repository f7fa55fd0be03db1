"""`audit watch` follower: every line exactly once across partial writes, rotation and truncation."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from kubeward.audit.analyzer import Analyzer
from kubeward.audit.reader import ReadStats
from kubeward.audit.watch import Follower, follow_events


def line(i: int) -> bytes:
    ev = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": f"e{i}", "stage": "ResponseComplete",
          "verb": "get", "user": {"username": "jane"}, "objectRef": {"resource": "secrets", "namespace": "a",
                                                                     "name": f"s{i}"},
          "responseStatus": {"code": 200}, "stageTimestamp": "2024-05-01T10:00:00Z"}
    return orjson.dumps(ev) + b"\n"


def wait_for(pred: Any, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def test_follow_rotation_truncation_exactly_once(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    stop = threading.Event()
    follower = Follower(str(log), from_start=True, poll=0.02, stop=stop)
    analyzer = Analyzer()
    got: list[str] = []
    lock = threading.Lock()

    def on_event(ev: dict[str, Any]) -> None:
        for a in analyzer.feed(ev):
            with lock:
                got.append(a.audit_id)

    rs = ReadStats()
    t = threading.Thread(target=follow_events, args=(follower, rs, on_event), daemon=True)
    t.start()
    seen = lambda n: wait_for(lambda: len(got) >= n)  # noqa: E731

    time.sleep(0.1)  # the file does not exist yet: the follower waits for it
    with open(log, "ab") as f:
        f.write(line(1) + line(2))
    assert seen(2)
    with open(log, "ab") as f:  # a partial line is held back until its newline arrives
        half = line(3)
        f.write(half[:40])
        f.flush()
        time.sleep(0.1)
        assert len(got) == 2
        f.write(half[40:] + line(4))
    assert seen(4)

    # Rotation: rename, the writer appends one more line to the old file, then a new file appears.
    old = open(log, "ab")  # noqa: SIM115 - the writer's still-open descriptor
    os.rename(log, tmp_path / "audit.log.1")
    old.write(line(5))
    old.close()
    with open(log, "ab") as f:
        f.write(line(6) + line(7) + line(8))
    assert seen(8)

    # Truncation (copytruncate): the follower restarts at offset 0.
    with open(log, "r+b") as f:
        f.truncate(0)
    with open(log, "ab") as f:
        f.write(line(9))
    assert seen(9)
    with open(log, "ab") as f:
        f.write(line(10))
    assert seen(10)

    time.sleep(0.2)  # nothing is delivered twice after the fact
    stop.set()
    t.join(5)
    assert not t.is_alive()
    assert got == [f"e{i}" for i in range(1, 11)]
    assert follower.rotations == 1 and follower.truncations == 1 and rs.bad_lines == 0


def test_follow_starts_at_end_by_default(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(line(1))
    stop = threading.Event()
    follower = Follower(str(log), poll=0.02, stop=stop)
    out: list[bytes] = []
    t = threading.Thread(target=lambda: out.extend(follower.lines()), daemon=True)
    t.start()
    time.sleep(0.15)
    with open(log, "ab") as f:
        f.write(line(2))
    time.sleep(0.15)
    stop.set()
    t.join(5)
    assert [orjson.loads(x)["auditID"] for x in out] == ["e2"]
