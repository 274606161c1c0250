"""The Raft storage (log, hard state, snapshot) on real files with real fsync."""

import errno
import os
import shutil

import pytest

from workbench.raft.types import (Entry, EntryKind, HardState, Membership, PersistedState,
                                  Snapshot, SnapshotMeta)
from workbench.storage import (DurableFile, RaftLogCorrupt, RaftStorage, atomic_write, scan_log,
                               simulate_power_loss)
from workbench.storage import raft_log
from workbench.storage.raft_records import FRAME_HEADER_SIZE, encode_entry, encode_snapshot

MEMBERS = Membership(frozenset({"n1", "n2", "n3"}), frozenset({"n4"}))


def run(first, last, term=1):
    return [Entry(i, term, EntryKind.COMMAND, b"cmd-%d" % i) for i in range(first, last + 1)]


def snap(index, term=1, data=b"state"):
    return Snapshot(SnapshotMeta(index, term, MEMBERS), data)


def reopen(storage):
    storage.close()
    return RaftStorage.open(storage.directory)


def log_file(storage):
    with open(storage.log_path, "rb") as f:
        return f.read()


def clone(src, dst, log=None):
    """Copy a closed storage's directory, optionally with other log bytes."""
    shutil.copytree(src, dst)
    if log is not None:
        with open(os.path.join(dst, raft_log.RAFT_LOG_FILENAME), "wb") as f:
            f.write(log)
    return dst


@pytest.fixture
def store(tmp_path):
    s = RaftStorage.open(tmp_path / "n1")
    yield s
    s.close()


# -- round trips ---------------------------------------------------------------------------

def test_a_new_directory_is_created_and_empty(tmp_path):
    with RaftStorage.open(tmp_path / "a" / "b") as s:
        assert s.load() == PersistedState()
        assert (s.first_index, s.last_index, s.snapshot_index, s.log_bytes) == (1, 0, 0, 0)
        assert s.warnings == []
    assert os.path.exists(tmp_path / "a" / "b" / raft_log.RAFT_LOG_FILENAME)


def test_round_trip_of_hard_state_entries_and_snapshot(store):
    entries = run(1, 3) + [Entry(4, 2, EntryKind.NOOP),
                           Entry(5, 2, EntryKind.CONFIG, b"promote n4")]
    store.save(hard_state=HardState(2, "n2", 3), entries=entries)
    assert store.load() == PersistedState(HardState(2, "n2", 3), None, tuple(entries))
    store = reopen(store)
    assert store.load() == PersistedState(HardState(2, "n2", 3), None, tuple(entries))
    store.save(snapshot=snap(2, data=b"\x00" * 100), hard_state=HardState(3, None, 5))
    store = reopen(store)
    state = store.load()
    assert state.hard_state == HardState(3, None, 5)
    assert state.snapshot == snap(2, data=b"\x00" * 100)
    assert state.snapshot.meta.membership.learners == {"n4"}
    assert state.entries == tuple(entries[2:])
    assert (store.first_index, store.last_index, store.snapshot_index) == (3, 5, 2)
    assert store.warnings == []
    store.close()


def test_the_log_file_is_exactly_the_entry_records(store):
    entries = run(1, 4)
    store.save(entries=entries[:2])
    store.save(entries=entries[2:])
    assert log_file(store) == b"".join(encode_entry(e) for e in entries)
    assert store.log_bytes == len(log_file(store))
    scan = scan_log(log_file(store))
    assert (scan.status, scan.entries) == ("ok", entries)


def test_an_append_costs_one_fsync_and_an_unchanged_hard_state_none(store):
    store.save(entries=run(1, 3))
    assert store.fsync_count == 1
    store.save(hard_state=HardState(1, "n1", 0))
    assert store.fsync_count == 3                  # atomic_write: the file and its directory
    store.save(hard_state=HardState(1, "n1", 0))   # already durable
    assert store.fsync_count == 3


def test_save_after_close_is_refused(store):
    store.close()
    with pytest.raises(ValueError, match="closed"):
        store.save(entries=run(1, 1))


def test_malformed_saves_are_refused_before_any_write(store):
    store.save(entries=run(1, 3), snapshot=None)
    store.save(snapshot=snap(2))
    before, count = log_file(store), store.fsync_count
    with pytest.raises(ValueError, match="gap"):
        store.save(entries=run(5, 6))
    with pytest.raises(ValueError, match="consecutive"):
        store.save(entries=[Entry(4, 1), Entry(6, 1)])
    with pytest.raises(ValueError, match="out of date"):
        store.save(snapshot=snap(2))
    with pytest.raises(ValueError, match="gap"):      # the snapshot drops the log, then a gap
        store.save(snapshot=snap(3, term=9), entries=run(5, 5))
    assert (log_file(store), store.fsync_count) == (before, count)
    assert store.load().entries == tuple(run(3, 3))


# -- conflicts -------------------------------------------------------------------------------

def test_conflicting_entries_replace_the_stored_suffix(store):
    store.save(entries=run(1, 5))
    count = store.fsync_count
    store.save(entries=run(3, 4, term=2))
    assert store.fsync_count == count + 2          # the cut, then the append
    expected = run(1, 2) + run(3, 4, term=2)
    assert store.load().entries == tuple(expected)
    assert log_file(store) == b"".join(encode_entry(e) for e in expected)
    store.save(entries=run(5, 6, term=2))           # appending goes on after the new suffix
    store = reopen(store)
    assert store.load().entries == tuple(expected + run(5, 6, term=2))
    assert store.warnings == []
    store.save(entries=run(1, 1, term=3))           # a conflict at the very first entry
    assert store.load().entries == tuple(run(1, 1, term=3))
    store.close()


def test_a_crash_between_the_cut_and_the_append_leaves_a_valid_prefix(store, monkeypatch):
    store.save(entries=run(1, 5))

    def crash(self, data):
        raise OSError(errno.EIO, "the power went out")
    monkeypatch.setattr(DurableFile, "write", crash)
    with pytest.raises(OSError):
        store.save(entries=run(3, 6, term=2))
    monkeypatch.undo()
    assert store.load().entries == tuple(run(1, 2))   # memory agrees with the file
    fsynced = store.fsynced_size
    store.close()
    simulate_power_loss(store.log_path, fsynced)
    store = RaftStorage.open(store.directory)
    assert store.load().entries == tuple(run(1, 2))
    assert store.warnings == []
    store.save(entries=run(3, 6, term=2))             # the retry goes through
    assert reopen(store).load().entries == tuple(run(1, 2) + run(3, 6, term=2))


# -- torn and corrupt logs -------------------------------------------------------------------

def three_entry_log(tmp_path):
    """A closed storage holding entries 1..3; return (directory, log bytes, last record start)."""
    with RaftStorage.open(tmp_path / "src") as s:
        s.save(entries=run(1, 2), hard_state=HardState(1, "n1", 2))
        last_start = s.log_bytes
        s.save(entries=run(3, 3))
        return s.directory, log_file(s), last_start


def test_a_torn_last_record_is_cut_at_every_offset(tmp_path):
    src, data, last_start = three_entry_log(tmp_path)
    for cut in range(last_start + 1, len(data)):
        d = clone(src, tmp_path / f"cut{cut}", data[:cut])
        with RaftStorage.open(d) as s:
            assert s.load() == PersistedState(HardState(1, "n1", 2), None, tuple(run(1, 2)))
            assert any(f"at offset {last_start}" in w for w in s.warnings), s.warnings
            assert s.log_bytes == last_start
            s.save(entries=run(3, 3, term=2))        # appends go on after the cut
        assert os.path.getsize(os.path.join(d, raft_log.RAFT_LOG_FILENAME)) == len(data)


def test_a_flipped_byte_in_the_last_record_is_cut(tmp_path):
    src, data, last_start = three_entry_log(tmp_path)
    for pos in range(last_start, len(data)):
        bad = bytearray(data)
        bad[pos] ^= 0x40
        d = clone(src, tmp_path / f"flip{pos}", bytes(bad))
        with RaftStorage.open(d) as s:
            assert s.load().entries == tuple(run(1, 2)), pos
            assert s.log_bytes == last_start
            assert s.warnings and "torn tail" in s.warnings[0]


def test_a_flipped_byte_in_a_middle_record_refuses_to_start(tmp_path):
    src, data, _ = three_entry_log(tmp_path)
    start, end = scan_log(data).offsets[1:3]
    for pos in range(start, end):
        bad = bytearray(data)
        bad[pos] ^= 0x01
        d = clone(src, tmp_path / f"flip{pos}", bytes(bad))
        path = os.path.join(d, raft_log.RAFT_LOG_FILENAME)
        with pytest.raises(RaftLogCorrupt) as info:
            RaftStorage.open(d)
        assert (info.value.path, info.value.offset) == (path, start)
        assert path in str(info.value) and f"offset {start}" in str(info.value)
        with open(path, "rb") as f:
            assert f.read() == bytes(bad)             # untouched


def test_whole_records_out_of_order_refuse_to_start(tmp_path):
    d = tmp_path / "n1"
    d.mkdir()
    records = [encode_entry(e) for e in run(1, 2) + run(4, 4)]
    (d / raft_log.RAFT_LOG_FILENAME).write_bytes(b"".join(records))
    with pytest.raises(RaftLogCorrupt, match="consecutive") as info:
        RaftStorage.open(d)
    assert info.value.offset == len(records[0]) + len(records[1])


def test_a_corrupt_hard_state_file_refuses_to_start(tmp_path):
    with RaftStorage.open(tmp_path / "n1") as s:
        s.save(hard_state=HardState(7, "n3", 0))
        path = s.hard_state_path
    with open(path, "rb") as f:
        good = f.read()
    for bad in (good[:-1], good[:3], good[:FRAME_HEADER_SIZE] + b"\xff" + good[13:],
                good + b"x"):
        with open(path, "wb") as f:
            f.write(bad)
        with pytest.raises(RaftLogCorrupt, match="Bad hard state file") as info:
            RaftStorage.open(tmp_path / "n1")
        assert info.value.path == path and path in str(info.value)
        with open(path, "rb") as f:
            assert f.read() == bad


def test_a_torn_temp_file_never_replaces_the_good_one(tmp_path):
    with RaftStorage.open(tmp_path / "n1") as s:
        s.save(hard_state=HardState(7, "n3", 0), entries=run(1, 2))
    torn = tmp_path / "n1" / "temp-raft.hardstate.x1y2"  # atomic_write died before the rename
    torn.write_bytes(b"RHS1\x00\x00")
    with RaftStorage.open(tmp_path / "n1") as s:
        assert s.load().hard_state == HardState(7, "n3", 0)
        assert any("temp-raft.hardstate.x1y2" in w for w in s.warnings)
    assert not torn.exists()


# -- snapshots and compaction ----------------------------------------------------------------

def test_a_snapshot_compacts_the_log_and_keeps_the_suffix(store):
    store.save(entries=run(1, 10))
    store.save(snapshot=snap(6))
    assert store.load().entries == tuple(run(7, 10))
    assert (store.first_index, store.last_index, store.snapshot_index) == (7, 10, 6)
    assert store.log_bytes == sum(len(encode_entry(e)) for e in run(7, 10))
    assert store.fsynced_size == store.log_bytes
    store.save(entries=run(9, 11, term=2))           # offsets were recomputed by the rewrite
    store = reopen(store)
    assert store.load() == PersistedState(HardState(), snap(6),
                                          tuple(run(7, 8) + run(9, 11, term=2)))
    store.close()


def test_entries_a_snapshot_covers_are_skipped(store):
    store.save(entries=run(1, 4))
    store.save(snapshot=snap(3), entries=run(2, 6))
    assert store.load().entries == tuple(run(4, 6))


def test_periodic_snapshots_bound_the_log(store):
    sizes = []
    for first in range(1, 1001, 10):
        store.save(entries=run(first, first + 9))
        if store.last_index % 100 == 0:
            store.save(snapshot=snap(store.last_index - 20, data=b"%d" % store.last_index))
        sizes.append(store.log_bytes)
    record = len(encode_entry(run(999, 999)[0]))
    assert max(sizes) <= 110 * record
    assert store.load().entries == tuple(run(981, 1000))
    assert reopen(store).load().entries == tuple(run(981, 1000))


def test_a_snapshot_beyond_the_log_drops_it_all(store):
    store.save(entries=run(1, 5))
    store.save(snapshot=snap(9, term=3))
    assert store.load().entries == ()
    assert (store.first_index, store.last_index, store.log_bytes) == (10, 9, 0)
    store.save(entries=run(10, 11, term=3))
    store = reopen(store)
    assert store.load() == PersistedState(HardState(), snap(9, term=3), tuple(run(10, 11, term=3)))
    store.close()


def test_a_snapshot_from_another_history_drops_the_whole_log(store):
    store.save(entries=run(1, 5))
    store.save(snapshot=snap(3, term=2))             # entry 3 has term 1 here: not our history
    assert store.load().entries == ()
    assert store.last_index == 3


def test_a_crash_between_snapshot_and_log_rewrite_loads_consistently(tmp_path):
    with RaftStorage.open(tmp_path / "n1") as s:
        s.save(entries=run(1, 10), hard_state=HardState(1, "n1", 8))
        full = s.log_bytes
    atomic_write(tmp_path / "n1" / raft_log.SNAPSHOT_FILENAME, encode_snapshot(snap(6)))
    with RaftStorage.open(tmp_path / "n1") as s:
        assert s.load() == PersistedState(HardState(1, "n1", 8), snap(6), tuple(run(7, 10)))
        assert any("interrupted compaction" in w for w in s.warnings)
        assert s.log_bytes < full
    with RaftStorage.open(tmp_path / "n1") as s:        # the rewrite was finished
        assert s.warnings == []
        assert s.load().entries == tuple(run(7, 10))


def test_a_failed_log_rewrite_is_finished_by_the_next_save(store, monkeypatch):
    store.save(entries=run(1, 10))
    real = raft_log.atomic_write

    def failing(path, data):
        if os.fspath(path).endswith(raft_log.RAFT_LOG_FILENAME):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)
    monkeypatch.setattr(raft_log, "atomic_write", failing)
    with pytest.raises(OSError):
        store.save(snapshot=snap(6))
    monkeypatch.undo()
    assert store.load().entries == tuple(run(7, 10))   # the snapshot is durable
    crashed = clone(store.directory, os.path.join(os.path.dirname(store.directory), "crash"))
    with RaftStorage.open(crashed) as other:           # a crash now loads the same state
        assert other.load() == store.load()
    store.save(entries=run(11, 11))
    assert store.log_bytes == sum(len(encode_entry(e)) for e in run(7, 11))
    store = reopen(store)
    assert store.warnings == [] and store.load().entries == tuple(run(7, 11))
    store.close()


def test_a_stale_rewrite_is_redone_before_the_next_append(store, monkeypatch):
    store.save(entries=run(1, 10))
    real = raft_log.atomic_write
    calls = []

    def failing_once(path, data):
        if os.fspath(path).endswith(raft_log.RAFT_LOG_FILENAME) and not calls:
            calls.append(path)
            raise OSError(errno.EIO, "Input/output error")
        real(path, data)
    monkeypatch.setattr(raft_log, "atomic_write", failing_once)
    with pytest.raises(OSError):
        store.save(snapshot=snap(4, term=2))          # another history: the log must go
    store.save(entries=run(5, 6, term=2))
    assert reopen(store).load().entries == tuple(run(5, 6, term=2))


def test_a_gap_between_snapshot_and_log_refuses_to_start(tmp_path):
    with RaftStorage.open(tmp_path / "n1") as s:
        s.save(entries=run(1, 10))
        s.save(snapshot=snap(6))
    path = tmp_path / "n1" / raft_log.SNAPSHOT_FILENAME
    atomic_write(path, encode_snapshot(snap(3)))       # older than the log's start (7)
    with pytest.raises(RaftLogCorrupt, match="Gap") as info:
        RaftStorage.open(tmp_path / "n1")
    assert "starts at index 7" in str(info.value)
    os.unlink(path)
    with pytest.raises(RaftLogCorrupt, match="no snapshot"):
        RaftStorage.open(tmp_path / "n1")


def test_a_corrupt_snapshot_file_refuses_to_start(tmp_path):
    with RaftStorage.open(tmp_path / "n1") as s:
        s.save(entries=run(1, 4), snapshot=snap(2, data=b"abc"))
    path = tmp_path / "n1" / raft_log.SNAPSHOT_FILENAME
    bad = path.read_bytes()[:-1] + b"x"
    path.write_bytes(bad)
    with pytest.raises(RaftLogCorrupt, match="Bad snapshot file .* checksum"):
        RaftStorage.open(tmp_path / "n1")
    assert path.read_bytes() == bad


# -- failing disks and power cuts ------------------------------------------------------------

def test_a_failing_disk_raises_and_keeps_the_previous_state(tmp_path):
    s = RaftStorage.open(tmp_path / "n1")
    s.save(entries=run(1, 5), hard_state=HardState(1, "n1", 3))
    before = s.load()
    s.inject_fault(OSError(errno.EIO, "Input/output error"))
    for ready in ({"entries": run(6, 7)}, {"entries": run(4, 6, term=2)},
                  {"hard_state": HardState(2, None, 3)}, {"snapshot": snap(3)}):
        with pytest.raises(OSError):
            s.save(**ready)
        assert s.load() == before
    assert s.log_bytes == s.fsynced_size
    s.close()
    s = RaftStorage.open(tmp_path / "n1")
    assert s.load() == before and s.warnings == []
    s.inject_fault(OSError(errno.EIO, "Input/output error"))
    with pytest.raises(OSError):
        s.save(entries=run(6, 6))
    s.injected_fault = None                           # healed (the same lever)
    s.save(entries=run(6, 6))
    assert reopen(s).load().entries == tuple(run(1, 6))


def test_a_failed_fsync_takes_the_written_bytes_back(store, monkeypatch):
    store.save(entries=run(1, 2))
    size = store.log_bytes

    def failing(self):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(DurableFile, "fsync", failing)
    with pytest.raises(OSError):
        store.save(entries=run(3, 4))
    monkeypatch.undo()
    assert store.log_bytes == size == os.path.getsize(store.log_path)
    assert store.load().entries == tuple(run(1, 2))


def test_save_returns_only_when_everything_is_fsynced(tmp_path):
    s = RaftStorage.open(tmp_path / "n1")
    readies = [{"entries": run(1, 5), "hard_state": HardState(1, "n1", 0)},
               {"entries": run(4, 8, term=2), "hard_state": HardState(2, "n2", 3)},
               {"snapshot": snap(5, term=2), "entries": run(9, 9, term=2)},
               {"hard_state": HardState(2, "n2", 9)}]
    for ready in readies:
        s.save(**ready)
        assert s.fsynced_size == s.log_bytes
        expected = s.load()
        # A process dies with the power: bytes it wrote but did not fsync vanish.
        with open(s.log_path, "ab") as f:
            f.write(encode_entry(Entry(99, 9))[:7])
        fsynced = s.fsynced_size
        s.close()
        simulate_power_loss(s.log_path, fsynced)
        s = RaftStorage.open(tmp_path / "n1")
        assert s.load() == expected
        assert s.warnings == []
    s.close()
