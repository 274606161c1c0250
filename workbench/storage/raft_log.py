"""Raft's durable state on disk: the log, the hard state and the snapshot.

Theory of operation
-------------------
A Raft core (etcd style) hands its shell a Ready: a snapshot to install, entries to
append, a hard state (term, vote, commit) to keep. The shell calls :meth:`RaftStorage.save`
with them and only *then* sends the Ready's messages: a vote or an append acknowledgement
promises that what it depends on survives a power cut. So ``save`` returns only when every
byte it wrote is fsynced. It works in the order etcd's shell uses, snapshot, then
entries, then hard state, and every step leaves the disk loadable if the power goes
right after it:

``raft.log``        entry records (see ``raft_records``), appended in place.
    *Append*: one write and one fdatasync for the whole run of entries. A crash
    mid-write leaves a torn tail, cut off at the next start.
    *Conflict*: entries that start at or below the last stored index replace the stored
    suffix from that index on. The file is cut where that index's record starts (an
    index -> offset table is kept in memory), the cut is fsynced, then the new entries
    are appended. A crash between the two leaves a shorter log, which is a valid one:
    the dropped entries conflicted with the leader, so they were never committed.
``raft.hardstate``  one record, replaced with ``atomic_write`` (temp file, fsync, rename,
    fsync the directory): old or new, never half. Skipped if unchanged.
``raft.snapshot``   one record, replaced the same way. Installing a snapshot compacts the
    log: first the snapshot is written, then the log is rewritten (also atomically)
    without the entries the snapshot covers. If the log holds the snapshot's own entry
    (same index and term), the entries after it are kept -- Log Matching says they
    extend the snapshot; otherwise (a snapshot sent by a leader) the whole log goes.

Loading applies the same rule, so a crash between writing the snapshot and rewriting
the log loses nothing: entries the snapshot covers are dropped and the rewrite is
finished. A log that starts *after* ``snapshot index + 1`` has a hole no crash makes,
and loading refuses it.

What a load repairs, it reports in ``warnings`` (torn tail cut, compaction finished,
temp files of interrupted atomic writes removed). What it cannot explain by a crash --
a bad record with good ones after it, a damaged hard-state or snapshot file -- raises
:class:`RaftLogCorrupt` naming the file and the byte offset, before any file is changed.

No asyncio, no sockets, no threads: the shell calls in and decides when.
"""

from __future__ import annotations

import errno
import os
from typing import Sequence

from ..raft.types import Entry, HardState, PersistedState, Snapshot
from .durable_file import DurableFile, atomic_write, fsync_dir, truncate_file
from .raft_records import (RaftLogCorrupt, decode_hard_state, decode_snapshot,
                           encode_entry, encode_hard_state, encode_snapshot, scan_log)

__all__ = ["RaftStorage", "RaftLogCorrupt", "RAFT_LOG_FILENAME", "HARD_STATE_FILENAME",
           "SNAPSHOT_FILENAME"]

RAFT_LOG_FILENAME = "raft.log"
HARD_STATE_FILENAME = "raft.hardstate"
SNAPSHOT_FILENAME = "raft.snapshot"
_FILENAMES = (RAFT_LOG_FILENAME, HARD_STATE_FILENAME, SNAPSHOT_FILENAME)


def _encode_run(entries: Sequence[Entry], start: int) -> tuple[bytes, list[int]]:
    """The records of ``entries`` as one blob, and each record's offset from ``start``."""
    parts, offsets = [], []
    for entry in entries:
        record = encode_entry(entry)
        offsets.append(start)
        start += len(record)
        parts.append(record)
    return b"".join(parts), offsets


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


class RaftStorage:
    """The log, hard state and snapshot of one Raft node, in one directory.

    Open it with :meth:`open` (which loads, validates and repairs), read what was found
    with :meth:`load`, persist each Ready with :meth:`save`.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = os.fspath(directory)
        self.log_path = os.path.join(self.directory, RAFT_LOG_FILENAME)
        self.hard_state_path = os.path.join(self.directory, HARD_STATE_FILENAME)
        self.snapshot_path = os.path.join(self.directory, SNAPSHOT_FILENAME)
        self.warnings: list[str] = []
        self.fsync_count = 0     # fsyncs done by save(); an atomic_write counts two
        self._fault: OSError | None = None
        self._broken: OSError | None = None
        # The log file still holds entries the snapshot covers (a compaction whose
        # rewrite failed); the next save finishes it before touching the log.
        self._log_stale = False
        os.makedirs(self.directory, exist_ok=True)
        self._load_and_repair()

    @classmethod
    def open(cls, directory: str | os.PathLike) -> "RaftStorage":
        """Open (creating if new) the Raft storage in ``directory``; load and validate it."""
        return cls(directory)

    # -- loading -------------------------------------------------------------------------
    def _load_and_repair(self) -> None:
        # Read and validate everything first: a refusal must leave every file as found.
        raw = _read(self.hard_state_path)
        hard_state = HardState() if raw is None else decode_hard_state(raw, self.hard_state_path)
        raw = _read(self.snapshot_path)
        snapshot = None if raw is None else decode_snapshot(raw, self.snapshot_path)
        data = _read(self.log_path) or b""
        scan = scan_log(data)
        if scan.status == "corrupt":
            whole = ("" if scan.next_whole is None
                     else f" (a whole record follows at offset {scan.next_whole}, so no crash "
                          "did this)")
            raise RaftLogCorrupt(
                f"Bad record in the Raft log {self.log_path} at offset {scan.error_offset}: "
                f"{scan.reason}{whole}. The file was left untouched: make a backup of it, "
                "then repair it by hand or rebuild this node from its peers",
                path=self.log_path, offset=scan.error_offset, reason=scan.reason)
        entries, offsets = scan.entries, scan.offsets
        snapshot_index = snapshot.meta.index if snapshot else 0
        if entries and entries[0].index > snapshot_index + 1:
            reason = (f"the log starts at index {entries[0].index} but "
                      + (f"the snapshot ends at index {snapshot_index}" if snapshot
                         else "there is no snapshot (it must start at index 1)"))
            raise RaftLogCorrupt(
                f"Gap between the snapshot and the Raft log {self.log_path} at offset 0: "
                f"{reason}. Entries are missing; the files were left untouched",
                path=self.log_path, offset=0, reason=reason)
        dropped = snapshot.meta.replaces(entries) if snapshot else 0

        # Repairs: each is what finishing an interrupted write looks like.
        if scan.status == "torn":
            truncate_file(self.log_path, scan.good_end)
            self.warnings.append(
                f"!!! Warning: torn tail in the Raft log {self.log_path}: {scan.reason} at "
                f"offset {scan.error_offset} !!!")
            self.warnings.append(
                f"!!! Truncating the Raft log {self.log_path} at offset {scan.good_end} "
                f"({len(data) - scan.good_end} bytes dropped) !!!")
        self._hard_state, self._snapshot = hard_state, snapshot
        self._entries, self._offsets = entries[dropped:], offsets[dropped:]
        self._log = DurableFile.open(self.log_path)
        try:
            if dropped:
                self.warnings.append(
                    f"Finishing an interrupted compaction: dropping {dropped} entries of the "
                    f"Raft log {self.log_path} that the snapshot at index {snapshot_index} "
                    "covers")
                self._rewrite_log()
            self._remove_leftover_temp_files()
        except BaseException:
            self._log.close()
            raise

    def _remove_leftover_temp_files(self) -> None:
        # A crash inside atomic_write leaves its temp file behind; the target is intact.
        prefixes = tuple(f"temp-{name}." for name in _FILENAMES)
        removed = False
        for name in sorted(os.listdir(self.directory)):
            if name.startswith(prefixes):
                os.unlink(os.path.join(self.directory, name))
                self.warnings.append(f"Removed {name} from {self.directory}: the temp file "
                                     "of a replacement interrupted by a crash")
                removed = True
        if removed:
            fsync_dir(self.directory)

    def load(self) -> PersistedState:
        """The durable state: what open() found (after repairs), plus every save since."""
        return PersistedState(self._hard_state, self._snapshot, tuple(self._entries))

    # -- observability -------------------------------------------------------------------
    @property
    def snapshot_index(self) -> int:
        return self._snapshot.meta.index if self._snapshot else 0

    @property
    def first_index(self) -> int:
        """Index of the first entry the log can hold (the one after the snapshot)."""
        return self.snapshot_index + 1

    @property
    def last_index(self) -> int:
        """Index of the last entry stored, or the snapshot's index if the log is empty."""
        return self._entries[-1].index if self._entries else self.snapshot_index

    @property
    def log_bytes(self) -> int:
        """Size of the log file."""
        return self._log.written_size

    @property
    def fsynced_size(self) -> int:
        """Bytes of the log file a power cut keeps (``simulate_power_loss`` takes this)."""
        return self._log.fsynced_size

    @property
    def closed(self) -> bool:
        return self._log.closed

    @property
    def injected_fault(self) -> OSError | None:
        """The failing-disk lever, as on DurableFile: every save raises it; None heals."""
        return self._fault

    @injected_fault.setter
    def injected_fault(self, fault: OSError | None) -> None:
        self.inject_fault(fault)

    def inject_fault(self, fault: OSError | None) -> None:
        """Make every save raise ``fault`` before it writes (a failing disk); None heals."""
        self._fault = fault
        self._log.injected_fault = fault

    # -- saving --------------------------------------------------------------------------
    def save(self, *, hard_state: HardState | None = None, entries: Sequence[Entry] = (),
             snapshot: Snapshot | None = None) -> None:
        """Persist one Ready: snapshot, then entries, then hard state; all fsynced on return.

        ``entries`` is a run of consecutive entries; if it starts at or below
        ``last_index``, the stored suffix from its first index on is replaced. Entries a
        snapshot covers are skipped (they are committed, so they match it). A malformed
        request raises ValueError before anything is written. An OSError means the disk
        failed part-way: the files hold what a crash at that point would leave, and
        :meth:`load` describes them.
        """
        if self._log.closed:
            raise ValueError(f"Raft storage {self.directory} is closed")
        if self._broken is not None:
            raise OSError(errno.EIO, f"Raft storage {self.directory} failed earlier and must "
                          f"be reopened: {self._broken}")
        entries = self._plan(entries, snapshot)
        if self._log_stale:
            self._rewrite_log()
        if snapshot is not None:
            self._install_snapshot(snapshot)
        if entries:
            self._append(entries)
        # Rewriting an unchanged hard state would buy nothing but two fsyncs.
        if hard_state is not None and hard_state != self._hard_state:
            self._check_fault()
            atomic_write(self.hard_state_path, encode_hard_state(hard_state))
            self.fsync_count += 2
            self._hard_state = hard_state

    def _plan(self, entries: Sequence[Entry], snapshot: Snapshot | None) -> tuple:
        """Check a save against the state it will meet; return the entries to append."""
        entries = tuple(entries)
        for prev, entry in zip(entries, entries[1:]):
            if entry.index != prev.index + 1:
                raise ValueError(f"entries must be consecutive: {entry.index} "
                                 f"follows {prev.index}")
        if snapshot is not None:
            if snapshot.meta.index <= self.snapshot_index:
                raise ValueError(f"snapshot at index {snapshot.meta.index} is out of date "
                                 f"(the stored one ends at {self.snapshot_index})")
            covered = snapshot.meta.replaces(self._entries)
            floor = snapshot.meta.index
            last = self._entries[-1].index if covered < len(self._entries) else floor
        else:
            floor, last = self.snapshot_index, self.last_index
        entries = tuple(e for e in entries if e.index > floor)
        if entries and entries[0].index > last + 1:
            raise ValueError(f"entries start at index {entries[0].index} but the log ends "
                             f"at {last}: a gap")
        return entries

    def _install_snapshot(self, snapshot: Snapshot) -> None:
        covered = snapshot.meta.replaces(self._entries)
        self._check_fault()
        atomic_write(self.snapshot_path, encode_snapshot(snapshot))
        self.fsync_count += 2
        self._snapshot = snapshot
        if covered:
            del self._entries[:covered]
            self._offsets = []           # the rewrite below computes them afresh
            self._log_stale = True
            self._rewrite_log()

    def _rewrite_log(self) -> None:
        """Replace the log file with the records of ``self._entries`` (temp + rename)."""
        self._check_fault()
        blob, offsets = _encode_run(self._entries, 0)
        atomic_write(self.log_path, blob)
        self.fsync_count += 2
        old, self._log = self._log, DurableFile.open(self.log_path)
        self._log.injected_fault = self._fault
        old.close()
        self._offsets, self._log_stale = offsets, False

    def _append(self, entries: Sequence[Entry]) -> None:
        first = entries[0].index
        if first <= self.last_index:
            k = first - self.first_index          # >= 0: _plan skipped covered entries
            self._check_fault()
            self._log.truncate(self._offsets[k])
            del self._entries[k:], self._offsets[k:]
            self._log.fsync()                     # the cut is durable before new bytes land
            self.fsync_count += 1
        base = self._log.written_size
        blob, offsets = _encode_run(entries, base)
        try:
            self._log.write(blob)
            self._log.fsync()
        except OSError as e:
            # Take back what got written: memory and file must agree, and bytes whose
            # fsync failed may or may not be on the disk, so nobody may be told they are.
            try:
                self._log.truncate(base)
            except OSError:
                self._broken = e      # a stray tail we cannot remove: appends must stop
            raise
        self.fsync_count += 1
        self._entries.extend(entries)
        self._offsets.extend(offsets)

    def _check_fault(self) -> None:
        if self._fault is not None:
            raise self._fault

    # -- closing -------------------------------------------------------------------------
    def close(self) -> None:
        """Close the log file. Nothing to flush: save() already fsynced everything."""
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"<RaftStorage {self.directory} entries={self.first_index}..{self.last_index}"
                f" snapshot={self.snapshot_index} log_bytes={self.log_bytes}"
                f"{' closed' if self.closed else ''}>")
