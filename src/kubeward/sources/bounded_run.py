"""Run an external program with a deadline and a cap on what it may print (helm, kustomize).

A chart or kustomization is user input: its render may loop (`{{ range }}` over a huge list, a remote base that
never answers) or print gigabytes. The program runs in its own process group, is killed at the deadline or as soon
as its output passes the cap, and only the first bytes of stderr are kept.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from dataclasses import dataclass
from typing import IO

STDERR_KEEP = 64 * 1024


@dataclass(frozen=True, slots=True)
class Ran:
    returncode: int | None  # None when killed for the deadline or the size cap
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    too_big: bool = False


def run_bounded(argv: list[str], *, timeout: float, max_bytes: int, cwd: str | None = None,
                env: dict[str, str] | None = None) -> Ran:
    """Run `argv` with stdin closed; raises OSError when it cannot be started."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=cwd, env=env, start_new_session=os.name == "posix")
    out = bytearray()
    err = bytearray()
    over = threading.Event()

    def pump(stream: IO[bytes], buf: bytearray, limit: int, stop: bool) -> None:
        # read1: what the pipe holds now, never waiting for a full buffer
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            room = limit + 1 - len(buf)
            if room > 0:
                buf += chunk[:room]
            if stop and len(buf) > limit:
                over.set()
                _kill(proc)
                break
        stream.close()

    assert proc.stdout is not None and proc.stderr is not None
    readers = [threading.Thread(target=pump, args=(proc.stdout, out, max_bytes, True), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, err, STDERR_KEEP, False), daemon=True)]
    for t in readers:
        t.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill(proc)
        proc.wait()
    for t in readers:
        t.join(timeout=5)  # a grandchild holding the pipe open must not keep the scan waiting
    if timed_out or over.is_set():
        return Ran(None, bytes(out[:max_bytes]), bytes(err), timed_out=timed_out, too_big=over.is_set())
    return Ran(proc.returncode, bytes(out), bytes(err))


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """The whole process group (a plugin or post-renderer the tool started goes too)."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
