"""Learn mode: record what runs, grouped by scope, and write an ExecAllowlist that would allow exactly that.

With mounts, a permission-class fanotify group that always answers FAN_ALLOW holds each exec until its path and
cgroup are read, so even a process that exits at once is attributed exactly; `notify` uses a notification-class
group instead (FAN_OPEN_EXEC: no exec ever waits for the learner, short-lived processes may lose their scope). Without mounts, the proc connector
reports every exec on the host, but a process that is already gone when its event is read cannot be attributed;
those are counted as `missed`.
"""

from __future__ import annotations

import os
import select
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .allowlist import ProcessScope, learned_scope
from .cgroups import attribute_pid
from .fanotify import Fanotify, fd_path
from .pods import PodIndex
from .procconn import ProcConnector
from .procinfo import TreeChecker, exe_of

Scope = tuple[tuple[str, Any], ...]


@dataclass
class Learned:
    groups: dict[Scope, set[str]] = field(default_factory=lambda: defaultdict(set))
    events: int = 0
    missed: int = 0

    def add(self, exe: str, proc: ProcessScope) -> None:
        self.groups[learned_scope(proc)].add(exe)


def learn(duration: float, mounts: Sequence[str], pods: PodIndex | None = None, *, filesystem: bool = False,
          notify: bool = False, self_pid: int | None = None, ready: Callable[[], None] | None = None,
          stop: Callable[[], bool] | None = None) -> Learned:
    """`notify=True` uses a notification-class group: execs never wait for the learner (safe on any mount), but a
    process gone before its event is read keeps its path and loses its scope (counted as missed)."""
    me = TreeChecker(os.getpid() if self_pid is None else self_pid)
    out = Learned()
    end = time.monotonic() + duration
    if mounts:
        fan = Fanotify(permission=not notify)
        try:
            for m in mounts:
                fan.mark(m, filesystem=filesystem)
            if ready:
                ready()
            _learn_fanotify(fan, out, pods, me, end, stop, respond=not notify)
        finally:
            fan.close()
    else:
        conn = ProcConnector()
        try:
            if ready:
                ready()
            _learn_procconn(conn, out, pods, me, end, stop)
        finally:
            conn.close()
    return out


def _learn_fanotify(fan: Fanotify, out: Learned, pods: PodIndex | None, me: TreeChecker, end: float,
                    stop: Callable[[], bool] | None, *, respond: bool) -> None:
    poller = select.poll()
    poller.register(fan.fd, select.POLLIN)
    while time.monotonic() < end and not (stop and stop()):
        if not poller.poll(100):
            continue
        for ev in fan.read():
            if ev.fd < 0:
                continue
            try:
                if not me.contains(ev.pid):
                    out.events += 1
                    attr = attribute_pid(ev.pid)
                    if attr is None:
                        out.missed += 1
                    else:
                        out.add(fd_path(ev.fd), ProcessScope.resolve(attr, pods))
            finally:
                if respond:
                    fan.respond(ev.fd, True)
                os.close(ev.fd)


def _learn_procconn(conn: ProcConnector, out: Learned, pods: PodIndex | None, me: TreeChecker, end: float,
                    stop: Callable[[], bool] | None) -> None:
    while time.monotonic() < end and not (stop and stop()):
        ready, _, _ = select.select([conn], [], [], 0.1)
        if not ready:
            continue
        for pid, _tgid in conn.read_execs():
            if me.contains(pid):
                continue
            out.events += 1
            exe = exe_of(pid)
            attr = attribute_pid(pid)
            if exe is None or attr is None:
                out.missed += 1
                continue
            out.add(exe.removesuffix(" (deleted)"), ProcessScope.resolve(attr, pods))
