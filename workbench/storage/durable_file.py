"""An append-only file that knows how much of itself would survive a power cut.

Theory of operation
-------------------
Bytes reach a disk in two steps, and each step has its own failure:

1. ``os.write`` hands the bytes to the operating system. They now sit in the page cache:
   another process can read them, and they survive a *process crash* (kill -9), because
   the kernel still owns them. They do **not** survive a *power loss*.
2. ``os.fsync`` / ``os.fdatasync`` asks the kernel to push them to stable storage and
   returns only when it has. Now they survive a power loss too.

So a :class:`DurableFile` keeps two sizes:

``written_size``
    bytes handed to the OS. This is what a process crash keeps.
``fsynced_size``
    bytes covered by the last *completed* fsync. This is what a power loss keeps, and it
    is the number a durability provider reports: an AOF-backed server may only tell a
    client "your write is safe" once ``fsynced_size`` has passed the end of that write.

``fsynced_size`` is measured *before* the fsync starts: bytes written while the syscall
runs may or may not be covered, and we must never claim more than we know.

fsync may run on a background thread (Valkey's BIO thread) while the event-loop thread
keeps writing. A lock guards the two sizes; it is never held during the slow syscall,
so a writer is never stuck behind a disk flush.

No asyncio and no sockets here: the server decides *when* to write and fsync.
"""

from __future__ import annotations

import errno
import os
import tempfile
import threading

__all__ = ["DurableFile", "simulate_power_loss", "atomic_write", "truncate_file", "fsync_dir"]

# fdatasync skips flushing metadata that does not matter for reading the data back (such
# as the modification time); Valkey uses it on Linux. Other systems get plain fsync.
_datasync = getattr(os, "fdatasync", os.fsync)
_OPEN_FLAGS = os.O_APPEND | os.O_CREAT | os.O_WRONLY | getattr(os, "O_BINARY", 0) \
    | getattr(os, "O_CLOEXEC", 0)


def fsync_dir(directory: str) -> None:
    """Make a directory's entries (a created, renamed or removed name) durable.

    A new file's *contents* can be fsynced and still vanish after a power cut if the
    directory entry that names it was never flushed. Systems without directory handles
    (Windows) cannot do this and are skipped.
    """
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EBADF, errno.EACCES):
            raise
    finally:
        os.close(fd)


class DurableFile:
    """An ``O_APPEND`` file handle with ``written_size`` and ``fsynced_size``.

    Opening fsyncs whatever the file already holds (and the directory, if the file is
    new), so the two sizes start equal and ``fsynced_size`` is honest from the start.
    """

    # The fault layer sets this to make every write and fsync fail (a failing disk).
    injected_fault: OSError | None = None

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        created = not os.path.exists(self.path)
        self._fd: int | None = os.open(self.path, _OPEN_FLAGS, 0o644)
        self._lock = threading.Lock()
        try:
            size = os.fstat(self._fd).st_size
            _datasync(self._fd)
            if created:
                fsync_dir(directory)
        except BaseException:
            os.close(self._fd)
            self._fd = None
            raise
        self._written = size
        self._fsynced = size

    @classmethod
    def open(cls, path: str | os.PathLike) -> "DurableFile":
        return cls(path)

    # -- the two sizes -------------------------------------------------------------------
    @property
    def written_size(self) -> int:
        """Bytes handed to the OS: what survives a process crash."""
        with self._lock:
            return self._written

    @property
    def fsynced_size(self) -> int:
        """Bytes covered by the last completed fsync: what survives a power loss."""
        with self._lock:
            return self._fsynced

    @property
    def closed(self) -> bool:
        return self._fd is None

    # -- operations ----------------------------------------------------------------------
    def write(self, data: bytes) -> int:
        """Hand all of ``data`` to the OS, looping over short writes; return its length.

        On an error (ENOSPC, EIO...) the OSError propagates and ``written_size`` counts
        exactly the bytes that did get written, so the caller can cut a half-written
        record back off with :meth:`truncate`.
        """
        fd = self._require_open()
        if self.injected_fault is not None:
            raise self.injected_fault
        # Views are released even on error: a live view would pin a caller's bytearray.
        with memoryview(data) as view:
            total, done = len(view), 0
            while done < total:
                with view[done:] as rest:
                    n = os.write(fd, rest)
                if n <= 0:   # a zero-byte write would loop forever; report it like Valkey
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                with self._lock:
                    self._written += n
                done += n
        return total

    def fsync(self) -> int:
        """Flush to stable storage (fdatasync where available); return ``fsynced_size``.

        Safe to call from another thread than the writer. A file closed meanwhile (e.g.
        replaced by a rewrite) is not an error: there is nothing left to make durable.
        """
        fd = self._fd
        if fd is None:
            return self.fsynced_size
        if self.injected_fault is not None:
            raise self.injected_fault
        with self._lock:
            covered = self._written        # taken BEFORE the syscall: never over-claim
        try:
            _datasync(fd)
        except OSError as e:
            if self._fd is None and e.errno in (errno.EBADF, errno.EINVAL):
                return self.fsynced_size
            raise
        return self.end_fsync(covered)

    def end_fsync(self, covered: int) -> int:
        """Record that an fsync covering the first ``covered`` bytes completed (here, or
        in the process that appends for us)."""
        with self._lock:
            # A truncate() during the fsync may have shrunk the file below ``covered``.
            self._fsynced = min(max(self._fsynced, covered), self._written)
            return self._fsynced

    def fileno(self) -> int:
        return self._require_open()

    def handed_over(self, n: int) -> None:
        """``n`` bytes were given to another process to append (the write-behind AOF
        writer): count them as written -- like written bytes, they are gone after a power
        loss unless an fsync covers them."""
        self._require_open()
        with self._lock:
            self._written += n

    def truncate(self, size: int) -> None:
        """Cut the file to ``size`` bytes (used to drop a half-written record).

        The cut itself is not durable until the next :meth:`fsync`.
        """
        fd = self._require_open()
        os.ftruncate(fd, size)
        with self._lock:
            self._written = size
            self._fsynced = min(self._fsynced, size)

    def close(self) -> None:
        """Close the handle. Does not fsync: unsynced bytes stay exposed to power loss."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _require_open(self) -> int:
        if self._fd is None:
            raise ValueError(f"I/O operation on closed DurableFile {self.path}")
        return self._fd

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"<DurableFile {self.path} written={self._written} "
                f"fsynced={self._fsynced}{' closed' if self._fd is None else ''}>")


def simulate_power_loss(path: str | os.PathLike, fsynced_size: int) -> int:
    """Cut ``path`` to what a power cut would keep; return the number of bytes lost.

    We model the **worst case**: every byte not covered by a completed fsync is gone.
    A real disk might keep some of them (or keep them out of order); the worst case is
    what a durability guarantee has to survive. Close the writer's handle first: the
    process dies with the power, and its ``written_size`` means nothing afterwards.
    """
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return 0
    if size <= fsynced_size:
        return 0
    os.truncate(path, fsynced_size)
    return size - fsynced_size


def truncate_file(path: str | os.PathLike, size: int) -> None:
    """Cut ``path`` to ``size`` bytes and fsync, so the cut survives a power loss too."""
    fd = os.open(os.fspath(path), os.O_WRONLY | getattr(os, "O_BINARY", 0))
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash at any moment leaves old or new.

    The recipe: write a temp file in the *same directory* (rename is atomic only within
    one filesystem), fsync it, rename it over the target, then fsync the directory so
    the rename itself is durable. Readers never see a half-written file.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="temp-" + os.path.basename(path) + ".",
                               dir=directory or None)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)
