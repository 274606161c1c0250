"""The append-only file (AOF): writing it, and loading it back after a restart.

Theory of operation
-------------------
Every write command the server executes is appended to the AOF in the same RESP form a
client sends (``*<argc>\\r\\n$<len>\\r\\n<arg>\\r\\n...``). Replaying the file on an empty
keyspace rebuilds the data. Writing happens in three steps, as in Valkey:

1. ``feed(data)``: during command execution, bytes go to ``aof_buf`` (memory only).
2. ``flush()``: once per event-loop iteration, before replies are sent, the buffer is
   written to the OS. A process crash now loses nothing.
3. ``fsync()``: the file is flushed to the disk. A power loss now loses nothing.

*When* to fsync is the ``appendfsync`` policy, chosen by the caller (the server):

``always``   "fsync after every write to the append only log. Slow, Safest."
``everysec`` "fsync only one time every second. Compromise." (Valkey's default; the
             fsync runs on a background thread, so up to ~1 s of writes can be lost.)
``no``       "don't fsync, just let the OS flush the data when it wants. Faster."

``fsynced_size`` is the AOF durability provider's number: a write whose bytes end at or
before it survives a power cut.

Loading (``load``) mirrors Valkey's ``loadSingleAppendOnlyFile``. It tells apart two
kinds of damage, because they have different causes and different cures:

* a **truncated tail**: the file simply ends in the middle of a command (the server died
  mid-write, or a power cut dropped un-fsynced bytes): the last bytes are a *prefix* of a
  valid record. Everything before is good, so by default (``aof-load-truncated yes``)
  the tail is cut off and loading goes on.
* **corruption**: a byte no valid AOF could hold at that place (usually with more
  commands after it), or a whole record no server could have written: a command the
  table does not know, or one with the wrong number of arguments. Nobody knows what
  else is wrong, so loading stops, the file is left alone, and a human runs
  ``workbench check-aof``. Every refusal is an :class:`AofError` naming the file and
  the byte offset where the damage starts.

A ``MULTI`` without its ``EXEC`` at the end of the file is a truncated tail too: the
whole transaction is reverted, so it is applied all or nothing. The file is cut *before*
the ``MULTI`` even when the tail ends mid-command inside it (Valkey then cuts after the
last complete queued command, leaving an open ``MULTI`` that would swallow later writes).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import NamedTuple

from ..resp import DEFAULT_MAX_BULK_LEN, strict_int
from ..store.table import lookup
from .durable_file import DurableFile, atomic_write, truncate_file

__all__ = ["AppendOnlyFile", "AofError", "AofScan", "LoadResult", "LoggedCommand",
           "load", "scan_aof", "AOF_FILENAME"]

AOF_FILENAME = "appendonly.aof"
_INT_MAX = 2**31 - 1
_DIGITS = b"0123456789"


class AppendOnlyFile:
    """``<directory>/appendonly.aof`` opened for appending, with Valkey's ``aof_buf``.

    Load the file with :func:`load` *before* opening it here: loading may truncate it.
    """

    def __init__(self, directory: str | os.PathLike, filename: str = AOF_FILENAME):
        self.path = os.path.join(os.fspath(directory), filename)
        self._file = DurableFile.open(self.path)
        self.aof_buf = bytearray()
        self.last_write_error: OSError | None = None
        self.last_fsync_error: OSError | None = None
        self.last_fsync_ms = 0.0     # duration of the last completed fsync
        self.write_count = 0
        self.fsync_count = 0
        self.generation = 0          # bumped when rewrite() replaces the file
        self.fault_listener = None   # told of inject_fault(): the write-behind writer

    # -- sizes ---------------------------------------------------------------------------
    @property
    def written_size(self) -> int:
        """Bytes handed to the OS (survive a process crash)."""
        return self._file.written_size

    @property
    def fsynced_size(self) -> int:
        """Bytes covered by the last completed fsync (survive a power loss)."""
        return self._file.fsynced_size

    @property
    def buffered(self) -> int:
        """Bytes fed but not yet flushed (INFO's ``aof_buffer_length``)."""
        return len(self.aof_buf)

    @property
    def injected_fault(self) -> OSError | None:
        return self._file.injected_fault

    def inject_fault(self, fault: OSError | None) -> None:
        """Make writes and fsyncs raise ``fault`` (the failing-disk nemesis); None heals."""
        self._file.injected_fault = fault
        if self.fault_listener is not None:
            self.fault_listener(fault)

    @property
    def closed(self) -> bool:
        return self._file.closed

    @property
    def last_write_status(self) -> str:
        """INFO's ``aof_last_write_status``: ``err`` while a write *or* fsync is failing."""
        return "err" if self.last_write_error or self.last_fsync_error else "ok"

    # -- the three steps -----------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Append a command's RESP bytes to ``aof_buf``. No I/O."""
        self.aof_buf += data

    def flush(self) -> int:
        """Write ``aof_buf`` to the OS; return the bytes written.

        On an error the OSError propagates (``always`` must stop the server, the other
        policies retry on the next loop) and ``last_write_status`` becomes ``err``. A
        half-written command is cut back off the file, as Valkey does, so the file never
        holds a partial record followed by a retry; the buffer keeps all unwritten bytes.
        """
        if not self.aof_buf:
            return 0
        before = self._file.written_size
        try:
            self._file.write(self.aof_buf)
        except OSError as e:
            self.last_write_error = e
            partial = self._file.written_size - before
            if partial:
                try:
                    self._file.truncate(before)
                except OSError:          # cannot cut it: keep it, drop it from the buffer
                    del self.aof_buf[:partial]
            raise
        n = len(self.aof_buf)
        self.aof_buf.clear()
        self.write_count += 1
        self.last_write_error = None
        return n

    def fsync(self) -> int:
        """fsync the file (may be called from a background thread); return fsynced_size."""
        start = time.perf_counter()
        try:
            size = self._file.fsync()
        except OSError as e:
            self.last_fsync_error = e
            raise
        self.last_fsync_ms = (time.perf_counter() - start) * 1000.0
        self.fsync_count += 1
        self.last_fsync_error = None
        return size

    # -- appends done by another process (the write-behind AOF writer) ----------------
    def handed_over(self, data_length: int) -> None:
        self._file.handed_over(data_length)

    def fsync_completed(self, covered: int, duration_ms: float) -> int:
        self.last_fsync_ms = duration_ms
        self.fsync_count += 1
        self.last_fsync_error = self.last_write_error = None
        return self._file.end_fsync(covered)

    def fsync_failed(self, error: OSError) -> None:
        self.last_fsync_error = error

    def take_back(self, chunks: list[bytes]) -> None:
        """The other process stopped before reporting ``chunks`` fsynced: cut the file
        back to what it did report and put the chunks in front of ``aof_buf``, so the
        next :meth:`flush` writes them again, in order, with no hole and no duplicate."""
        self._file.truncate(self._file.fsynced_size)
        self.aof_buf[:0] = b"".join(chunks)

    # -- whole-file operations -----------------------------------------------------------
    def rewrite(self, base: bytes) -> None:
        """Atomically replace the whole file with ``base``, then reopen for appending.

        Used after a replica's full sync: the old history no longer describes the data.
        Any ``aof_buf`` content is discarded for the same reason, so feed new commands
        only after this returns. Afterwards ``fsynced_size == len(base)``.
        """
        if self._file.injected_fault is not None:
            raise self._file.injected_fault
        atomic_write(self.path, base)     # temp file, fsync, rename, fsync the directory
        fault = self._file.injected_fault
        old, self._file = self._file, DurableFile.open(self.path)
        self._file.injected_fault = fault
        self.generation += 1          # a new file: whoever holds the old descriptor must drop it
        old.close()
        self.aof_buf.clear()

    def close(self) -> None:
        """Close the file. No flush and no fsync: a clean shutdown calls both first."""
        self._file.close()


class AofError(Exception):
    """The AOF cannot be loaded. ``offset`` is where the problem starts in the file."""

    def __init__(self, message: str, *, path: str, offset: int, reason: str = ""):
        super().__init__(message)
        self.path, self.offset, self.reason = path, offset, reason


class LoggedCommand(NamedTuple):
    argv: list
    end: int          # byte offset just after this command in the file
    start: int = 0    # byte offset of its first byte (its '*')


@dataclass
class AofScan:
    """What the bytes of an AOF hold; shared by :func:`load` and ``check-aof``.

    ``status`` is ``ok``, ``truncated`` or ``corrupt``. ``ok_up_to`` is the end of the last
    record worth keeping (an open MULTI is not), ``ok_up_to_line`` the 1-based protocol
    line that follows it (a header or an argument is one line, as in valkey-check-aof).
    """
    commands: list = field(default_factory=list)
    ok_up_to: int = 0
    ok_up_to_line: int = 1
    status: str = "ok"
    error_offset: int | None = None   # corrupt: first bad byte; truncated: where the tail starts
    reason: str = ""
    reverted_multi: bool = False
    bad_command: bool = False         # corrupt: a well-formed record naming a bad command


@dataclass
class LoadResult:
    """The commands to replay, and whether (and where) the file was cut."""
    path: str
    commands: list            # [LoggedCommand(argv, end)], MULTI/EXEC included
    size: int                 # size of the file as found
    truncated_at: int | None = None
    warnings: list = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        return self.truncated_at is not None


class _Truncated(Exception):
    """The file ends where the bytes so far could still become a valid record."""


class _Corrupt(Exception):
    """A byte that no valid AOF can hold at this place."""


class _BadCommand(_Corrupt):
    """A well-formed record that no server writes: an unknown command, the wrong number
    of arguments, a SELECT of no database. Replaying it would crash or guess."""


def _check_command(argv: list, start: int, databases: int | None) -> str:
    """The command's name in the table, or _BadCommand (offset ``start``)."""
    spec = lookup(argv[0])
    if spec is None:
        raise _BadCommand(start, f"Unknown command '{_quoted(argv[0])}'")
    if not spec.arity_ok(len(argv)):
        raise _BadCommand(start, f"Wrong number of arguments ({len(argv)}) for "
                                 f"'{spec.name.lower()}' command")
    if spec.name == "SELECT":
        db = strict_int(argv[1])
        if db is None or db < 0:
            raise _BadCommand(start, f"Invalid DB index '{_quoted(argv[1])}' in SELECT")
        if databases is not None and db >= databases:
            raise _BadCommand(start, f"DB index {db} is out of range in SELECT "
                                     f"(databases {databases})")
    return spec.name


def _quoted(arg: bytes) -> str:
    return arg[:128].decode("utf-8", "replace").replace("\r", "\\r").replace("\n", "\\n")


def _number(data: bytes, start: int, low: int, high: int, what: str) -> tuple[int, int]:
    """Read ``<digits>\\r\\n`` at ``start``; return (value, offset after the CRLF).

    Raises _Truncated if the file ends while the bytes so far could still become valid.
    """
    n = len(data)
    j = start
    while j < n and data[j] in _DIGITS and j - start <= 20:
        j += 1
    digits = data[start:j]
    if (len(digits) > 1 and digits[0] == 0x30) or len(digits) > 20 \
            or (digits and int(digits) > high) or (digits == b"0" and low > 0):
        raise _Corrupt(start, f"invalid {what}")
    if j == n:
        raise _Truncated
    if data[j] != 0x0D or not digits:
        raise _Corrupt(j, f"invalid {what}")
    if j + 1 == n:
        raise _Truncated
    if data[j + 1] != 0x0A:
        raise _Corrupt(j + 1, "expected '\\n' after '\\r'")
    return int(digits), j + 2


def scan_aof(data: bytes, *, max_bulk_len: int = DEFAULT_MAX_BULK_LEN,
             databases: int | None = None) -> AofScan:
    """Walk the bytes of an AOF and say how much of it is good.

    Every record must name a command of the table with a valid number of arguments, and
    a ``SELECT`` a database index (below ``databases``, when given).
    """
    scan = AofScan()
    n, pos, line = len(data), 0, 1
    multi_at: tuple | None = None     # an open MULTI: (offset, line, index in commands)
    while pos < n:
        start = pos
        try:
            if data[pos] == 0x23:                              # '#': an annotation line
                nl = data.find(b"\n", pos)
                if nl < 0:   # partial: appending after it would swallow the next command
                    raise _Truncated
                pos, line = nl + 1, line + 1
            elif data[pos] != 0x2A:                            # '*'
                raise _Corrupt(pos, "expected '*' or '#', got %r" % chr(data[pos]))
            else:
                argc, pos = _number(data, pos + 1, 1, _INT_MAX, "multibulk length")
                argv = []
                for _ in range(argc):
                    if pos == n:
                        raise _Truncated
                    if data[pos] != 0x24:                      # '$'
                        raise _Corrupt(pos, "expected '$', got %r" % chr(data[pos]))
                    length, pos = _number(data, pos + 1, 0, max_bulk_len, "bulk length")
                    end = pos + length
                    tail = data[end:end + 2]
                    if tail != b"\r\n"[:len(tail)]:
                        bad = end + (0 if tail[:1] != b"\r" else 1)
                        raise _Corrupt(bad, f"expected CRLF after a {length}-byte argument")
                    if len(tail) < 2:
                        raise _Truncated
                    argv.append(data[pos:end])
                    pos = end + 2
                line += 1 + 2 * argc
                name = _check_command(argv, start, databases)
                if name == "MULTI":
                    if multi_at is not None:
                        raise _Corrupt(start, "Unexpected MULTI")
                    multi_at = (start, line - 1 - 2 * argc, len(scan.commands))
                elif name == "EXEC":
                    if multi_at is None:
                        raise _Corrupt(start, "Unexpected EXEC")
                    multi_at = None
                scan.commands.append(LoggedCommand(argv, pos, start))
        except _Truncated:
            scan.status, scan.error_offset = "truncated", start
            scan.reason = "unexpected end of file in the middle of a record"
            break
        except _Corrupt as c:
            scan.status, (scan.error_offset, scan.reason) = "corrupt", c.args
            scan.bad_command = isinstance(c, _BadCommand)
            break
        if multi_at is None:
            scan.ok_up_to, scan.ok_up_to_line = pos, line
    if multi_at is not None:
        scan.reverted_multi = True
        del scan.commands[multi_at[2]:]
        scan.ok_up_to, scan.ok_up_to_line = multi_at[0], multi_at[1]
        if scan.status == "ok":
            scan.status, scan.error_offset = "truncated", multi_at[0]
            scan.reason = "Reached EOF before reading EXEC for MULTI"
    return scan


def load(path: str | os.PathLike, *, load_truncated: bool = True,
         max_bulk_len: int = DEFAULT_MAX_BULK_LEN, databases: int | None = None) -> LoadResult:
    """Read the AOF at ``path``: its commands, and what was wrong with it.

    A missing file is an empty AOF. A truncated tail is cut off **in the file** when
    ``load_truncated`` (``aof-load-truncated yes``), else AofError. Corruption is always
    AofError, and the file is left untouched for ``workbench check-aof``; a record naming
    an unknown command is refused with Valkey's ``Unknown command '<cmd>' reading the
    append only file <f>``, plus the offset.
    """
    f = os.fspath(path)
    try:
        with open(f, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return LoadResult(f, [], 0)
    scan = scan_aof(data, max_bulk_len=max_bulk_len, databases=databases)
    result = LoadResult(f, scan.commands, len(data))
    if scan.status == "corrupt":
        what = scan.reason if scan.bad_command else "Bad file format"
        raise AofError(
            f"{what} reading the append only file {f} at offset {scan.error_offset}: "
            f"make a backup of your AOF file, then use `workbench check-aof --fix {f}`",
            path=f, offset=scan.error_offset, reason=scan.reason)
    if scan.status == "ok":
        return result
    if scan.reverted_multi:
        result.warnings.append(f"Revert incomplete MULTI/EXEC transaction in AOF file {f}")
    if not load_truncated:
        raise AofError(
            f"Unexpected end of file reading the append only file {f}. You can: "
            f"1) Make a backup of your AOF file, then use `workbench check-aof --fix {f}`. "
            "2) Alternatively you can set the 'aof-load-truncated' configuration option "
            "to yes and restart the server.",
            path=f, offset=scan.ok_up_to, reason=scan.reason)
    result.warnings.append(f"!!! Warning: short read while loading the AOF file {f}!!!")
    result.warnings.append(f"!!! Truncating the AOF {f} at offset {scan.ok_up_to} !!!")
    try:
        truncate_file(f, scan.ok_up_to)
    except OSError as e:
        raise AofError(f"Error truncating the AOF file {f}: {e.strerror}",
                       path=f, offset=scan.ok_up_to, reason=str(e)) from e
    result.warnings.append(f"AOF {f} loaded anyway because aof-load-truncated is enabled")
    result.truncated_at = scan.ok_up_to
    return result
