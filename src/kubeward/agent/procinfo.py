"""Small /proc readers (proc(5)): parent pid, real uid, and whether a pid descends from a given process."""

from __future__ import annotations

import os


def ppid_uid(pid: int) -> tuple[int | None, int | None]:
    """PPid and real Uid from /proc/<pid>/status; (None, None) once the process is gone."""
    ppid = uid = None
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"PPid:"):
                    ppid = int(line.split()[1])
                elif line.startswith(b"Uid:"):
                    uid = int(line.split()[1])
                    break
    except (OSError, ValueError, IndexError):
        pass
    return ppid, uid


def parent_of(pid: int) -> int | None:
    """Field 4 of /proc/<pid>/stat; the command name (field 2) may hold spaces and parentheses, so split after ')'."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return int(data[data.rindex(b")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def descends_from(pid: int, ancestor: int, max_depth: int = 256) -> bool:
    """True when `pid` is `ancestor` or one of its descendants (walks the ppid chain up to init)."""
    cur: int | None = pid
    for _ in range(max_depth):
        if cur is None or cur <= 1:
            return cur == ancestor
        if cur == ancestor:
            return True
        cur = parent_of(cur)
    return False


def exe_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
