"""Small /proc readers (proc(5)): parent pid, real uid, and whether a pid descends from a given process."""

from __future__ import annotations

import os


def read_small(path: str, size: int = 4096) -> bytes | None:
    """One read(2) of a /proc file without the io layer (a measurable share of the per-exec cost)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


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


def parent_and_start(pid: int) -> tuple[int, int] | None:
    """(ppid, starttime) from /proc/<pid>/stat fields 4 and 22. The command (field 2) may hold spaces and
    parentheses, so fields are split after the last ')'."""
    data = read_small(f"/proc/{pid}/stat")
    if not data:
        return None
    try:
        rest = data[data.rindex(b")") + 2 :].split()
        return int(rest[1]), int(rest[19])
    except (ValueError, IndexError):
        return None


class TreeChecker:
    """Is a pid inside the process tree rooted at `root`? Walks the ppid chain, remembering the answer per
    (pid, starttime) so a reused pid can never inherit a stale answer; typically one or two /proc reads."""

    def __init__(self, root: int, max_entries: int = 65536) -> None:
        self.root = root
        self._known: dict[tuple[int, int], bool] = {}
        self._max = max_entries

    def contains(self, pid: int) -> bool:
        visited: list[tuple[int, int]] = []
        cur = pid
        answer = False
        for _ in range(256):
            if cur == self.root:
                answer = True
                break
            if cur <= 1:
                break
            info = parent_and_start(cur)
            if info is None:
                break
            key = (cur, info[1])
            hit = self._known.get(key)
            if hit is not None:
                answer = hit
                break
            visited.append(key)
            cur = info[0]
        if len(self._known) > self._max:
            self._known.clear()
        for key in visited:
            self._known[key] = answer
        return answer


def descends_from(pid: int, ancestor: int) -> bool:
    """Uncached form of TreeChecker.contains."""
    return TreeChecker(ancestor).contains(pid)


def exe_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
