"""The netlink proc connector (drivers/connector/cn_proc.c, include/uapi/linux/cn_proc.h): a multicast of process
events; learn mode listens for PROC_EVENT_EXEC, then reads /proc/<pid>/exe and the cgroup of the new image.

Message layout: nlmsghdr (16 bytes) + cn_msg {cb_id{idx,val}, seq, ack, len, flags} (20 bytes) + proc_event
{what u32, cpu u32, timestamp_ns u64, union}; for exec the union starts with {process_pid, process_tgid}.
Subscribing sends PROC_CN_MCAST_LISTEN to CN_IDX_PROC/CN_VAL_PROC. Only the initial pid namespace receives events.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections.abc import Iterator

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
PROC_EVENT_EXEC = 0x00000002
NLMSG_DONE = 3

_NLMSGHDR = struct.Struct("=IHHII")
_CN_MSG = struct.Struct("=IIIIHH")
_EVENT_HEAD = struct.Struct("=IIQ")
_EXEC = struct.Struct("=II")


class ProcConnector:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            self.sock.bind((0, CN_IDX_PROC))
            self._control(PROC_CN_MCAST_LISTEN)
        except OSError:
            self.sock.close()
            raise

    def _control(self, op: int) -> None:
        payload = struct.pack("=I", op)
        cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0) + payload
        hdr = _NLMSGHDR.pack(_NLMSGHDR.size + len(cn), NLMSG_DONE, 0, 0, os.getpid())
        self.sock.send(hdr + cn)

    def fileno(self) -> int:
        return self.sock.fileno()

    def read_execs(self) -> list[tuple[int, int]]:
        """(pid, tgid) of every exec in the next datagram; [] for other events."""
        try:
            data = self.sock.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return []
        return list(parse_exec_events(data))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._control(PROC_CN_MCAST_IGNORE)
        self.sock.close()


def parse_exec_events(data: bytes) -> Iterator[tuple[int, int]]:
    off = 0
    while len(data) - off >= _NLMSGHDR.size:
        length, _type, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, off)
        if length < _NLMSGHDR.size or off + length > len(data):
            return
        body = off + _NLMSGHDR.size
        need = _CN_MSG.size + _EVENT_HEAD.size + _EXEC.size
        if length - _NLMSGHDR.size >= need:
            what, _cpu, _ts = _EVENT_HEAD.unpack_from(data, body + _CN_MSG.size)
            if what == PROC_EVENT_EXEC:
                yield _EXEC.unpack_from(data, body + _CN_MSG.size + _EVENT_HEAD.size)
        off += (length + 3) & ~3
