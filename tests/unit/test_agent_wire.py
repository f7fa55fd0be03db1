"""Binary layouts read from the kernel: fanotify_event_metadata records and proc connector exec messages."""

from __future__ import annotations

import struct

import pytest

from kubeward.agent.fanotify import FAN_OPEN_EXEC_PERM, FanotifyError, parse_events
from kubeward.agent.procconn import PROC_EVENT_EXEC, parse_exec_events


def meta(mask: int, fd: int, pid: int, vers: int = 3, extra: bytes = b"") -> bytes:
    return struct.pack("=IBBHQii", 24 + len(extra), vers, 0, 24, mask, fd, pid) + extra


def test_fanotify_records() -> None:
    buf = meta(FAN_OPEN_EXEC_PERM, 7, 100) + meta(FAN_OPEN_EXEC_PERM, 8, 101, extra=b"\0" * 16) + meta(0, -1, 0)
    events = list(parse_events(buf))
    assert [(e.fd, e.pid, e.is_perm) for e in events] == [(7, 100, True), (8, 101, True), (-1, 0, False)]


def test_fanotify_truncated_and_bad_version() -> None:
    assert list(parse_events(meta(FAN_OPEN_EXEC_PERM, 7, 1)[:20])) == []
    bogus = struct.pack("=IBBHQii", 1000, 3, 0, 24, 0, 1, 1)  # claims more bytes than present
    assert list(parse_events(bogus)) == []
    with pytest.raises(FanotifyError, match="version 2"):
        list(parse_events(meta(0, 1, 1, vers=2)))


def cn_event(what: int, pid: int, tgid: int) -> bytes:
    body = struct.pack("=IIIIHH", 1, 1, 0, 0, 16 + 8 + 16, 0) + struct.pack("=IIQ", what, 0, 0)
    body += struct.pack("=IIII", pid, tgid, 0, 0)
    return struct.pack("=IHHII", 16 + len(body), 3, 0, 0, 0) + body


def test_proc_connector_exec_only() -> None:
    data = cn_event(PROC_EVENT_EXEC, 42, 40) + cn_event(0x1, 43, 43) + cn_event(PROC_EVENT_EXEC, 44, 44)
    assert list(parse_exec_events(data)) == [(42, 40), (44, 44)]
    assert list(parse_exec_events(data[:30])) == []
