"""fanotify(7) through ctypes: init, mark, read event metadata, answer permission events.

Constants and layouts are those of include/uapi/linux/fanotify.h (struct fanotify_event_metadata is 24 bytes,
FANOTIFY_METADATA_VERSION 3; struct fanotify_response is {s32 fd; u32 response}). Permission events
(FAN_OPEN_EXEC_PERM) need a FAN_CLASS_CONTENT group; the kernel answers every still-pending permission event with
FAN_ALLOW when the group's fd is closed (fs/notify/fanotify/fanotify_user.c, fanotify_release), which is why an
agent crash can never leave an exec blocked.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

FAN_CLOEXEC = 0x01
FAN_NONBLOCK = 0x02
FAN_CLASS_NOTIF = 0x00
FAN_CLASS_CONTENT = 0x04
FAN_UNLIMITED_QUEUE = 0x10

FAN_MARK_ADD = 0x01
FAN_MARK_REMOVE = 0x02
FAN_MARK_MOUNT = 0x10
FAN_MARK_FLUSH = 0x80
FAN_MARK_FILESYSTEM = 0x100

FAN_OPEN_EXEC = 0x1000
FAN_OPEN_EXEC_PERM = 0x40000
FAN_Q_OVERFLOW = 0x4000

FAN_ALLOW = 0x01
FAN_DENY = 0x02
FAN_NOFD = -1
METADATA_VERSION = 3

_META = struct.Struct("=IBBHQii")  # event_len, vers, reserved, metadata_len, mask, fd, pid
_RESPONSE = struct.Struct("=iI")
_AT_FDCWD = -100

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
_libc.fanotify_init.restype = ctypes.c_int
_libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
_libc.fanotify_mark.restype = ctypes.c_int


class FanotifyError(OSError):
    pass


@dataclass(frozen=True, slots=True)
class Event:
    mask: int
    fd: int
    pid: int

    @property
    def is_perm(self) -> bool:
        return bool(self.mask & FAN_OPEN_EXEC_PERM)


def _check(rc: int, what: str) -> int:
    if rc < 0:
        err = ctypes.get_errno()
        raise FanotifyError(err, f"{what}: {os.strerror(err)}")
    return rc


class Fanotify:
    """One fanotify group. `permission=True` gives a FAN_CLASS_CONTENT group for FAN_OPEN_EXEC_PERM."""

    def __init__(self, *, permission: bool) -> None:
        flags = FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE
        flags |= FAN_CLASS_CONTENT if permission else FAN_CLASS_NOTIF
        event_flags = os.O_RDONLY | os.O_LARGEFILE | os.O_CLOEXEC
        self.fd = _check(_libc.fanotify_init(flags, event_flags), "fanotify_init")
        self.mask = FAN_OPEN_EXEC_PERM if permission else FAN_OPEN_EXEC

    def mark(self, path: str, *, filesystem: bool = False) -> None:
        """Watch every exec on the mount holding `path` (or its whole filesystem)."""
        flags = FAN_MARK_ADD | (FAN_MARK_FILESYSTEM if filesystem else FAN_MARK_MOUNT)
        _check(_libc.fanotify_mark(self.fd, flags, self.mask, _AT_FDCWD, os.fsencode(path)),
               f"fanotify_mark {path}")

    def read(self, bufsize: int = 64 * 1024) -> list[Event]:
        """Events currently queued (empty when none: the fd is non-blocking)."""
        try:
            buf = os.read(self.fd, bufsize)
        except BlockingIOError:
            return []
        return list(parse_events(buf))

    def respond(self, fd: int, allow: bool) -> None:
        os.write(self.fd, _RESPONSE.pack(fd, FAN_ALLOW if allow else FAN_DENY))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def parse_events(buf: bytes) -> Iterator[Event]:
    """Walk fanotify_event_metadata records (FAN_EVENT_OK / FAN_EVENT_NEXT in fanotify.h)."""
    off, n = 0, len(buf)
    while n - off >= _META.size:
        event_len, vers, _res, _meta_len, mask, fd, pid = _META.unpack_from(buf, off)
        if event_len < _META.size or event_len > n - off:
            break
        if vers != METADATA_VERSION:
            raise FanotifyError(0, f"fanotify metadata version {vers}, expected {METADATA_VERSION}")
        yield Event(mask, fd, pid)
        off += event_len


def fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"
