"""`kubeward audit watch` as a process: alerts to a file while the log grows and rotates; SIGTERM reports counts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson


def line(i: int) -> bytes:
    ev = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": f"e{i}", "stage": "ResponseComplete",
          "verb": "get", "user": {"username": "jane"}, "objectRef": {"resource": "secrets", "namespace": "a",
                                                                     "name": f"s{i}"},
          "responseStatus": {"code": 200}}
    return orjson.dumps(ev) + b"\n"


def wait_for(pred: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return bool(pred())


def test_watch_cli_rotation_and_sigterm(tmp_path: Path) -> None:
    log, out = tmp_path / "audit.log", tmp_path / "alerts.jsonl"
    log.write_bytes(line(1))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubeward.cli.main", "audit", "watch", str(log), "--from-start", "--poll-interval",
         "0.05", "--alert-format", "none", "--alert-file", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ids = lambda: [orjson.loads(x)["auditID"] for x in out.read_bytes().splitlines()] if out.exists() else []  # noqa: E731
        assert wait_for(lambda: ids() == ["e1"], 20)
        os.rename(log, tmp_path / "audit.log.1")
        log.write_bytes(line(2) + b"not json\n")
        assert wait_for(lambda: ids() == ["e1", "e2"], 20)
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "2 events, 2 alerts, 1 unusable lines" in err and "Traceback" not in err
