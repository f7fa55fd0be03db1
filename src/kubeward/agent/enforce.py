"""The exec decision loop: FAN_OPEN_EXEC_PERM events answered from the allowlist, with hard guarantees.

- The agent's own process tree is never refused: a refusal (or a timeout answered with deny) first checks
  whether the process descends from the agent; allowed execs skip that walk.
- No exec waits longer than the decision timeout: a watchdog thread decides overdue events and, while the decision
  thread is stuck, newly queued ones from their paths alone; only execs that need a sha256 check get --on-timeout.
- SIGHUP only sets a flag; the loop swaps in the re-read allowlist between events. Events queued meanwhile stay in
  the kernel queue (FAN_UNLIMITED_QUEUE), so none is dropped; a broken file keeps the previous allowlist.
- Decisions never wait on alert delivery: alerts go to a bounded queue (AlertSink) whose drops are counted, and the
  watchdog survives any error of its own, so a reader that stops reading or a broken pipe cannot hold an exec.
- If the process dies, closing the fanotify fd makes the kernel allow every pending event.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..alerts import Alert, now_rfc3339
from ..alertsinks import AlertSink
from .allowlist import Allowlist, AllowlistError, ProcessScope, Verdict, load_allowlist
from .cgroups import Attribution, attribute_pid
from .fanotify import FAN_Q_OVERFLOW, Event, Fanotify, fd_path
from .pods import PodIndex
from .procinfo import TreeChecker, ppid_uid

_HASH_CHUNK = 1 << 20


@dataclass(slots=True)
class Stats:
    events: int = 0
    allowed: int = 0
    denied: int = 0
    alerted: int = 0
    timeouts: int = 0
    self_tree: int = 0
    reloads: int = 0
    reload_errors: int = 0
    overflows: int = 0

    def to_json(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(slots=True)
class _Pending:
    deadline: float
    pid: int


@dataclass(frozen=True, slots=True)
class _Late:
    """An event the watchdog answered, to be reported once the lock is released."""

    pid: int
    exe: str
    who: tuple[int | None, int | None]
    proc: ProcessScope
    decision: str
    verdict: Verdict | None
    reason: str | None


@dataclass
class EnforceConfig:
    allowlist_path: str
    mounts: Sequence[str]
    mode: str = "alert"  # "alert" (allow, but report) unless "enforce" is asked for: the safe default
    decision_timeout_ms: int = 1000
    on_timeout: str = "allow"  # "allow" | "deny"
    filesystem: bool = False
    pods: PodIndex | None = None
    reload_pods: Callable[[], PodIndex | None] | None = None  # re-read with the allowlist on SIGHUP
    self_pid: int = field(default_factory=os.getpid)


class Enforcer:
    def __init__(self, config: EnforceConfig, alerts: AlertSink, *,
                 on_error: Callable[[str], object] | None = None) -> None:
        self.config = config
        self.alerts = alerts
        self.stats = Stats()
        self.allowlist: Allowlist = load_allowlist(config.allowlist_path)
        self._on_error = on_error or (lambda _msg: None)
        self._lock = threading.Lock()  # guards _pending and reading the fanotify fd
        self._pending: dict[int, _Pending] = {}
        self._busy_since: float | None = None
        self._reload = threading.Event()
        self._stop = threading.Event()
        self._digests: dict[tuple[int, int, int, int, int], str] = {}
        self._scopes: dict[Attribution | None, ProcessScope] = {}
        self._timeout = config.decision_timeout_ms / 1000.0
        self._tree = TreeChecker(config.self_pid)
        self._wd_tree = TreeChecker(config.self_pid)  # the watchdog's own cache: no sharing across threads
        self.fan = Fanotify(permission=True)
        try:
            for m in config.mounts:
                self.fan.mark(m, filesystem=config.filesystem)
        except OSError:
            self.fan.close()
            raise

    # -- control ---------------------------------------------------------------------------------------------
    def request_reload(self, *_args: Any) -> None:
        self._reload.set()

    def stop(self, *_args: Any) -> None:
        self._stop.set()

    def install_signals(self) -> None:
        signal.signal(signal.SIGHUP, self.request_reload)
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self, duration: float | None = None, ready: Callable[[], object] | None = None) -> Stats:
        end = None if duration is None else time.monotonic() + duration
        watchdog = threading.Thread(target=self._watchdog, name="kubeward-watchdog", daemon=True)
        watchdog.start()
        if ready is not None:
            ready()
        poller = select.poll()
        poller.register(self.fan.fd, select.POLLIN)
        try:
            while not self._stop.is_set() and (end is None or time.monotonic() < end):
                if self._reload.is_set():
                    self._do_reload()
                try:
                    if not poller.poll(100):
                        continue
                except InterruptedError:
                    continue
                with self._lock:
                    events = self.fan.read()
                    now = time.monotonic()
                    for ev in events:
                        if ev.fd >= 0 and ev.is_perm:
                            self._pending[ev.fd] = _Pending(now + self._timeout, ev.pid)
                    self._busy_since = now
                try:
                    for ev in events:
                        try:
                            self._handle(ev)
                        except Exception as exc:  # the event was answered in _handle's finally; keep serving
                            self._on_error(f"exec enforce: pid {ev.pid}: {exc}")
                finally:
                    self._busy_since = None
        finally:
            self._stop.set()
            watchdog.join(timeout=1.0)
            self.fan.close()
        return self.stats

    # -- decisions -------------------------------------------------------------------------------------------
    def _answer(self, fd: int, allow: bool) -> bool:
        """Respond once: False when the watchdog already answered this event."""
        with self._lock:
            if self._pending.pop(fd, None) is None:
                return False
            self.fan.respond(fd, allow)
            return True

    def _handle(self, ev: Event) -> None:
        if ev.mask & FAN_Q_OVERFLOW:
            self.stats.overflows += 1
            return
        if ev.fd < 0:
            return
        try:
            self.stats.events += 1
            exe = fd_path(ev.fd)
            proc = self._scope(attribute_pid(ev.pid))
            verdict = self.allowlist.decide(exe, proc, lambda: self._digest(ev.fd))
            # Only a refusal needs the process-tree walk: the agent's own tree is never refused.
            if not verdict.allowed and self._tree.contains(ev.pid):
                self.stats.self_tree += 1
                self._answer(ev.fd, True)
                return
            enforce = self.config.mode == "enforce"
            allow = verdict.allowed or not enforce
            who = None if verdict.allowed else ppid_uid(ev.pid)  # read while the process still waits on us
            if not self._answer(ev.fd, allow):
                return  # the watchdog answered (and alerted) already
            if verdict.allowed:
                self.stats.allowed += 1
                return
            if enforce:
                self.stats.denied += 1
            else:
                self.stats.alerted += 1
            self._alert(ev.pid, exe, proc, "deny" if enforce else "alert", verdict, who=who)
        finally:
            if ev.fd in self._pending:  # an exception before answering: never leave the exec waiting
                with self._lock:
                    if self._pending.pop(ev.fd, None) is not None:
                        self.fan.respond(ev.fd, self.config.on_timeout == "allow")
            os.close(ev.fd)

    def _scope(self, attr: Attribution | None) -> ProcessScope:
        hit = self._scopes.get(attr)
        if hit is None:
            if len(self._scopes) > 16384:
                self._scopes.clear()
            hit = self._scopes[attr] = ProcessScope.resolve(attr, self.config.pods)
        return hit

    def _digest(self, fd: int) -> str | None:
        try:
            st = os.fstat(fd)
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            hit = self._digests.get(key)
            if hit is not None:
                return hit
            h = hashlib.sha256()
            off = 0
            while True:
                chunk = os.pread(fd, _HASH_CHUNK, off)
                if not chunk:
                    break
                h.update(chunk)
                off += len(chunk)
            if len(self._digests) > 4096:
                self._digests.clear()
            self._digests[key] = digest = h.hexdigest()
            return digest
        except OSError:
            return None

    def _alert(self, pid: int, exe: str, proc: ProcessScope, decision: str, verdict: Verdict | None,
               reason: str | None = None, who: tuple[int | None, int | None] | None = None) -> None:
        ppid, uid = who if who is not None else ppid_uid(pid)
        self.alerts.emit(Alert.exec_alert(
            time=now_rfc3339(), pid=pid, ppid=ppid, uid=uid, exe=exe, scope=proc.to_json(), decision=decision,
            rule=verdict.rule if verdict else None, reason=reason or (verdict.reason if verdict else ""),
            mode=self.config.mode))

    # -- reload and watchdog ---------------------------------------------------------------------------------
    def _do_reload(self) -> None:
        self._reload.clear()
        try:
            self.allowlist = load_allowlist(self.config.allowlist_path)
            self.stats.reloads += 1
        except AllowlistError as exc:
            self.stats.reload_errors += 1
            self._on_error(f"{exc} (reload refused, keeping the previous allowlist)")
        if self.config.reload_pods is not None:
            try:
                pods = self.config.reload_pods()
            except Exception as exc:  # a snapshot problem must not stop enforcement
                self._on_error(f"snapshot reload failed, keeping the previous pods: {exc}")
            else:
                if pods is not None:
                    self.config.pods = pods
                    self._scopes = {}

    def _watchdog(self) -> None:
        tick = max(0.005, min(self._timeout / 4, 0.05))
        while not self._stop.wait(tick):
            try:
                self._watch_once()
            except Exception as exc:  # the watchdog outlives any error: it is what bounds every exec's wait
                self._on_error(f"exec enforce: watchdog: {exc}")

    def _watch_once(self) -> None:
        now = time.monotonic()
        out: list[_Late] = []
        with self._lock:
            # Events held by the decision thread past their deadline, then (while it is stuck) the newer events
            # still queued in the kernel: both are decided here from their paths alone.
            for fd, p in list(self._pending.items()):
                if p.deadline <= now:
                    del self._pending[fd]
                    self._quick_safe(p.pid, fd, out)
            stuck = self._busy_since is not None and now - self._busy_since > self._timeout
            for ev in self.fan.read() if stuck else []:
                if ev.fd >= 0:
                    try:
                        self._quick_safe(ev.pid, ev.fd, out)
                    finally:
                        os.close(ev.fd)
        for late in out:
            if late.reason == "decision-timeout":
                self.stats.timeouts += 1
            elif self.config.mode == "enforce":
                self.stats.denied += 1
            else:
                self.stats.alerted += 1
            self._alert(late.pid, late.exe, late.proc, late.decision, late.verdict, reason=late.reason,
                        who=late.who)

    def _quick_safe(self, pid: int, fd: int, out: list[_Late]) -> None:
        """_quick, and if it fails the --on-timeout answer: an event the watchdog took is always answered."""
        try:
            self._quick(pid, fd, out)
        except Exception as exc:
            self._on_error(f"exec enforce: pid {pid}: {exc}")
            with contextlib.suppress(OSError):
                self.fan.respond(fd, self.config.on_timeout == "allow")

    def _quick(self, pid: int, fd: int, out: list[_Late]) -> None:
        """Answer one event without hashing (caller holds the lock): an allowlisted path runs, a refused one is
        refused, and only an exec that needs a sha256 check gets the --on-timeout answer."""
        on_timeout = self.config.on_timeout == "allow"
        enforce = self.config.mode == "enforce"
        exe = fd_path(fd)
        proc = ProcessScope.resolve(attribute_pid(pid), self.config.pods)
        verdict = self.allowlist.decide(exe, proc, lambda: None)
        if verdict.allowed or self._wd_tree.contains(pid):
            self.fan.respond(fd, True)
            return
        who = ppid_uid(pid)
        if verdict.reason == "sha256-mismatch":
            out.append(_Late(pid, exe, who, proc, "allow" if on_timeout else "deny", None, "decision-timeout"))
            self.fan.respond(fd, on_timeout)
        else:
            out.append(_Late(pid, exe, who, proc, "deny" if enforce else "alert", verdict, None))
            self.fan.respond(fd, not enforce)
