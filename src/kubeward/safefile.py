"""Writing files an attacker may have prepared the ground for: never through a symlink, atomically, checked.

Whoever can write the target directory (a PKI folder, a report directory) can plant a symlink where kubeward is
about to write, or fill the disk so a key is cut short. So every write here:
- goes to a fresh temporary file in the same directory (O_CREAT|O_EXCL|O_NOFOLLOW, the final mode from the first
  byte, so a private key is never readable by others even briefly), written in full (a short write is retried, no
  progress is an error), fsync'ed, then renamed over the target — rename replaces a symlink itself, never its
  target — or hard-linked to it when the target must not already exist (link fails on any existing name);
- refuses a target that is a symlink, even with `replace` (the caller asked for a file, not for whatever it points
  to), and a target that is a directory;
- creates missing parent directories with an exact mode whatever the umask.
A failure removes the temporary file and leaves the old content in place.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path


class SafeFileError(Exception):
    """`<path>: <reason>`, ready for `kubeward: …`."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def ensure_dir(path: Path, mode: int = 0o755) -> None:
    """Create `path` and missing parents with exactly `mode` (the umask does not apply); existing ones are kept.
    A path component that exists but is not a directory (or a symlink to one) is an error."""
    missing: list[Path] = []
    p = path
    while True:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            missing.append(p)
            if p.parent == p:
                break
            p = p.parent
            continue
        except OSError as exc:
            raise SafeFileError(f"{p}: {exc.strerror or exc}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise SafeFileError(f"{p}: not a directory")
        break
    for d in reversed(missing):
        try:
            os.mkdir(d, mode)
        except FileExistsError:
            if not os.path.isdir(d) or os.path.islink(d):
                raise SafeFileError(f"{d}: not a directory") from None
            continue
        except OSError as exc:
            raise SafeFileError(f"{d}: {exc.strerror or exc}") from None
        os.chmod(d, mode, follow_symlinks=False)


def write_all(fd: int, data: bytes, name: object) -> None:
    """os.write until every byte is out: a short write is continued, a write that makes no progress is ENOSPC."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise SafeFileError(f"{name}: {os.strerror(errno.ENOSPC)} (short write)")
        view = view[n:]


def _existing(path: Path) -> os.stat_result | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SafeFileError(f"{path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        raise SafeFileError(f"{path}: is a symbolic link; refusing to write through it")
    if stat.S_ISDIR(st.st_mode):
        raise SafeFileError(f"{path}: is a directory")
    return st


def write_file(path: Path | str, data: bytes, *, mode: int | None, replace: bool, dir_mode: int = 0o755,
               make_dirs: bool = True) -> None:
    """Atomically make `path` hold exactly `data` with permission bits `mode` (None: 0666 minus the umask, or the
    mode of the file being replaced). Without `replace` an existing file is an error."""
    with AtomicWriter(path, mode=mode, replace=replace, dir_mode=dir_mode, make_dirs=make_dirs) as out:
        out.write(data)


def write_files(files: list[tuple[Path, bytes, int]], *, replace: bool, dir_mode: int = 0o755) -> None:
    """write_file for several files that belong together (a certificate and its key, a whole PKI): every file is
    written and synced before any is renamed, so a full disk or a bad target leaves all of them as they were,
    never a new key beside an old certificate."""
    writers: list[AtomicWriter] = []
    try:
        for path, data, mode in files:
            w = AtomicWriter(path, mode=mode, replace=replace, dir_mode=dir_mode)
            w.__enter__()
            writers.append(w)
            w.write(data)
            w.sync()
    except BaseException:
        for w in writers:
            w.abort()
        raise
    for w in writers:
        w.commit()


class AtomicWriter:
    """`with AtomicWriter(path, …) as out: out.write(piece)…` — write_file for output produced piece by piece;
    the target appears, complete, only when the block ends without an exception."""

    def __init__(self, path: Path | str, *, mode: int | None, replace: bool, dir_mode: int = 0o755,
                 make_dirs: bool = True) -> None:
        self.path, self.mode, self.replace = Path(path), mode, replace
        self.dir_mode, self.make_dirs = dir_mode, make_dirs
        self._fd = -1
        self._tmp: Path | None = None

    def __enter__(self) -> AtomicWriter:
        path = self.path
        if self.make_dirs:
            ensure_dir(path.parent, self.dir_mode)
        old = _existing(path)
        if old is not None and not self.replace:
            raise SafeFileError(f"{path}: already exists (use --force to overwrite)")
        if old is not None and not stat.S_ISREG(old.st_mode):
            # /dev/null, a FIFO: there is nothing to rename over, write into it
            try:
                self._fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
            except OSError as exc:
                raise SafeFileError(f"{path}: {exc.strerror or exc}") from None
            return self
        mode = self.mode
        if mode is None:
            mode = stat.S_IMODE(old.st_mode) if old is not None else 0o666 & ~_umask()
        self._fd, self._tmp = _temp(path.parent, path.name, mode)
        try:
            os.fchmod(self._fd, mode)  # exactly `mode`, whatever the umask removed
        except OSError as exc:
            self._abort()
            raise SafeFileError(f"{path}: {exc.strerror or exc}") from None
        return self

    def write(self, data: bytes | memoryview) -> None:
        try:
            write_all(self._fd, bytes(data) if isinstance(data, memoryview) else data, self.path)
        except SafeFileError:
            self._abort()
            raise
        except OSError as exc:
            self._abort()
            raise SafeFileError(f"{self.path}: {exc.strerror or exc}") from None

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()
            return
        self.sync()
        self.commit()

    def sync(self) -> None:
        """Make the written bytes durable (fsync) and close the file: after this only the rename is left."""
        if self._fd < 0:
            return
        try:
            if self._tmp is not None:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
        except OSError as exc:
            self.abort()
            raise SafeFileError(f"{self.path}: {exc.strerror or exc}") from None

    def commit(self) -> None:
        """Give the complete temporary file the target's name."""
        self.sync()
        tmp, self._tmp = self._tmp, None
        if tmp is None:
            return
        try:
            if self.replace:
                os.rename(tmp, self.path)
            else:
                _link_new(tmp, self.path)
        except FileExistsError:
            self._cleanup(tmp)
            raise SafeFileError(f"{self.path}: already exists (use --force to overwrite)") from None
        except OSError as exc:
            self._cleanup(tmp)
            raise SafeFileError(f"{self.path}: {exc.strerror or exc}") from None
        _fsync_dir(self.path.parent)

    def abort(self) -> None:
        """Drop the temporary file; the target keeps its old content."""
        self._abort()

    def _cleanup(self, tmp: Path | None) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        if tmp is not None:
            _discard(tmp)

    def _abort(self) -> None:
        tmp, self._tmp = self._tmp, None
        self._cleanup(tmp)


def _link_new(tmp: Path, path: Path) -> None:
    """Give `tmp` the name `path` only if that name is free: link fails on any existing name, even a dangling
    symlink. A filesystem without hard links falls back to a check and a rename."""
    try:
        os.link(tmp, path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "exists") from None
        os.rename(tmp, path)
        return
    os.unlink(tmp)


def _temp(parent: Path, name: str, mode: int) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = parent / f".{name}.{os.urandom(6).hex()}.tmp"
        try:
            return os.open(tmp, flags, mode & 0o777), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise SafeFileError(f"{parent / name}: {exc.strerror or exc}") from None
    raise SafeFileError(f"{parent / name}: cannot create a temporary file")


def _discard(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _fsync_dir(parent: Path) -> None:
    """The rename itself is durable only once the directory is synced (best effort: not every FS allows it)."""
    try:
        fd = os.open(parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
