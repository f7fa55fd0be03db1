"""The agent's alert output can be stuck or gone: emitting never blocks, never raises, and every loss is counted."""

from __future__ import annotations

import os
import threading
import time

from kubeward.alerts import Alert
from kubeward.alertsinks import AlertSink
from kubeward.outqueue import BoundedWriter, fd_writer


def _exec(pid: int, exe: str = "/bin/x") -> Alert:
    return Alert.exec_alert(time="2024-05-01T10:00:00Z", pid=pid, ppid=1, uid=0, exe=exe, scope={}, decision="deny",
                            rule=None, reason="not-allowlisted", mode="enforce")


def test_epipe_is_counted_never_raised() -> None:
    r, w = os.pipe()
    os.close(r)  # the reader is gone: every write fails with EPIPE
    problems: list[str] = []
    sink = AlertSink(w, queue_size=8, on_problem=problems.append)
    try:
        for i in range(50):
            sink.emit(_exec(i))  # raised BrokenPipeError before
        deadline = time.monotonic() + 5
        while sink.counters()["alerts_failed"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sink.close(1.0)
        os.close(w)
    c = sink.counters()
    assert c["alerts_failed"] > 0 and c["alerts_failed"] + c["alerts_dropped"] == 50
    assert sum("cannot write" in p for p in problems) == 1  # said once, not once per alert


def test_full_pipe_never_blocks_emit() -> None:
    r, w = os.pipe()  # nobody reads r: the pipe fills after ~64 KiB and the writer thread blocks in write
    try:
        sink = AlertSink(w, queue_size=16)
        t0 = time.monotonic()
        for i in range(5000):
            sink.emit(_exec(i, "/x" * 50))
        assert time.monotonic() - t0 < 2.0  # blocked for ever before, once the pipe was full
        t1 = time.monotonic()
        sink.close(0.3)
        assert time.monotonic() - t1 < 1.5  # close is bounded even with the writer stuck
        c = sink.counters()
        assert c["alerts_dropped"] > 4000
        assert sink.count == 5000
    finally:
        os.close(r)
        os.close(w)


def test_writer_survives_a_bad_item_and_counts_it() -> None:
    got: list[bytes] = []

    def enc(x: object) -> bytes:
        if x == "bad":
            raise ValueError("cannot render")
        return f"{x}\n".encode()

    out: BoundedWriter[object] = BoundedWriter("t", got.append, enc, queue_size=10)
    for x in ("a", "bad", "b"):
        out.put(x)
    out.close(2.0)
    assert b"".join(got) == b"a\nb\n" and out.counters.failed == 1 and out.counters.written == 2


def test_stalled_for_reports_a_stuck_writer() -> None:
    gate = threading.Event()
    out: BoundedWriter[int] = BoundedWriter("t", lambda b: gate.wait(5) and None, lambda x: b"x", queue_size=1)
    try:
        for i in range(20):
            out.put(i)
        time.sleep(0.2)
        assert out.stalled_for() >= 0.15 and out.counters.dropped >= 17
    finally:
        gate.set()
        out.close(2.0)
    assert out.stalled_for() == 0.0


def test_fd_writer_finishes_partial_writes() -> None:
    r, w = os.pipe()
    data = os.urandom(300_000)  # larger than a pipe: os.write returns short counts
    t = threading.Thread(target=fd_writer(w), args=(data,))
    t.start()
    chunks = []
    while sum(map(len, chunks)) < len(data):
        chunks.append(os.read(r, 65536))
    t.join(5)
    os.close(r)
    os.close(w)
    assert b"".join(chunks) == data


def test_enforce_starts_in_alert_mode() -> None:
    from kubeward.agent.enforce import EnforceConfig
    from kubeward.cli.agent import enforce_cmd

    mode = next(p for p in enforce_cmd.params if p.name == "mode")
    assert mode.default == "alert"
    assert EnforceConfig("al.yaml", ["/"]).mode == "alert"
