"""The commit gate as a pure unit: offsets in, releases out."""

from __future__ import annotations

from workbench.durability import NOT_HELD, AofProvider, CommitGate, HeldReplies, UncommittedKeys


def gate_with_aof(start: int = 0):
    provider = AofProvider(start)
    return CommitGate([provider]), provider


def test_a_write_is_held_until_its_offset_is_durable():
    gate, aof = gate_with_aof()
    assert gate.offset_for_reply(wrote_offset=40, db=0, keys=[b"k"], keyspace_wide=False) == 40
    gate.record_write(0, [b"k"], 40)
    aof.fsynced(39)
    gate.advance()
    assert gate.committed_offset == 39
    aof.fsynced(40)
    gate.advance()
    assert gate.committed_offset == 40 and len(gate.uncommitted) == 0
    assert gate.write_blocked_count == 1


def test_reads_of_dirty_keys_wait_reads_of_clean_keys_do_not():
    gate, aof = gate_with_aof()
    gate.record_write(0, [b"dirty"], 10)
    assert gate.offset_for_reply(wrote_offset=NOT_HELD, db=0, keys=[b"dirty"],
                                 keyspace_wide=False) == 10
    assert gate.offset_for_reply(wrote_offset=NOT_HELD, db=0, keys=[b"clean"],
                                 keyspace_wide=False) == NOT_HELD
    assert gate.offset_for_reply(wrote_offset=NOT_HELD, db=1, keys=[b"dirty"],
                                 keyspace_wide=False) == NOT_HELD
    # KEYS, SCAN, DBSIZE: anything uncommitted anywhere holds them
    assert gate.offset_for_reply(wrote_offset=NOT_HELD, db=3, keys=[],
                                 keyspace_wide=True) == 10
    assert gate.read_blocked_count == 2


def test_a_rewrite_keeps_the_key_dirty_until_its_newer_offset():
    keys = UncommittedKeys()
    keys.mark(0, [b"k"], 10)
    keys.mark(0, [b"k"], 20)
    assert keys.drain(10) == 0                  # the older entry goes, the key stays dirty
    assert keys.offset_for(0, [b"k"]) == 20
    assert keys.drain(20) == 1
    assert keys.offset_for(0, [b"k"]) == NOT_HELD and keys.newest == NOT_HELD


def test_flush_dirties_the_whole_database():
    gate, aof = gate_with_aof()
    gate.record_flush([0], 50)
    assert gate.offset_for_reply(wrote_offset=NOT_HELD, db=0, keys=[b"anything"],
                                 keyspace_wide=False) == 50
    aof.fsynced(50)
    gate.advance()
    assert gate.offset_for_reply(wrote_offset=NOT_HELD, db=0, keys=[b"anything"],
                                 keyspace_wide=False) == NOT_HELD


def test_pipeline_order_is_kept_and_earlier_replies_leave_first():
    held = HeldReplies()
    held.add(b"+PONG\r\n", NOT_HELD)            # PING: may leave at once
    held.add(b"+OK\r\n", 30)                    # SET: waits for 30
    held.add(b"+PONG\r\n", NOT_HELD)            # PING after SET: must wait behind it
    assert held.release(10) == [b"+PONG\r\n"]
    assert held.held_bytes == 12
    assert held.release(30) == [b"+OK\r\n", b"+PONG\r\n"]
    assert held.held_bytes == 0 and len(held) == 0


def test_pause_freezes_the_committed_offset():
    gate, aof = gate_with_aof()
    aof.fsynced(10)
    gate.advance()
    aof.pause()
    aof.fsynced(99)                              # fsyncs go on underneath
    assert gate.advance() == [] and gate.committed_offset == 10
    aof.pause()                                  # idempotent
    aof.resume()
    gate.advance()
    assert gate.committed_offset == 99


def test_deferred_effects_run_in_offset_order_when_committed():
    gate, aof = gate_with_aof()
    ran = []
    gate.defer(5, lambda: ran.append("a"))
    gate.defer(8, lambda: ran.append("b"))
    gate.defer(0, lambda: ran.append("now"))     # already committed: runs at once
    assert ran == ["now"]
    aof.fsynced(6)
    for effect in gate.advance():
        effect()
    assert ran == ["now", "a"]
    aof.fsynced(8)
    for effect in gate.advance():
        effect()
    assert ran == ["now", "a", "b"]


def test_committed_offset_is_the_minimum_of_providers():
    a, b = AofProvider(), AofProvider()
    gate = CommitGate([a, b])
    a.fsynced(100)
    b.fsynced(40)
    gate.advance()
    assert gate.committed_offset == 40


def test_turning_gating_off_releases_everything():
    gate, aof = gate_with_aof()
    ran = []
    gate.record_write(0, [b"k"], 10)
    gate.defer(10, lambda: ran.append(1))
    for effect in gate.release_everything():
        effect()
    assert ran == [1] and len(gate.uncommitted) == 0


def test_an_advance_returns_only_the_clients_it_frees():
    gate, aof = gate_with_aof()
    early, late, gone = object(), object(), object()
    gate.wait(early, 10)
    gate.wait(late, 30)
    gate.wait(gone, 10)
    gate.waiting.discard(gone)                  # disconnected (or failed) meanwhile
    aof.fsynced(20)
    gate.advance()
    assert gate.due() == [early]
    assert gate.due() == []                     # each wait is reported once
    gate.wait(early, 25)                        # its next held reply waits for 25
    aof.fsynced(30)
    gate.advance()
    assert sorted(map(id, gate.due())) == sorted([id(early), id(late)])


def test_a_write_marks_all_its_keys_under_one_offset():
    keys = UncommittedKeys()
    keys.mark(0, [b"a", b"b"], 7)
    assert keys.offset_for(0, [b"b"]) == 7 and keys.newest == 7 and len(keys) == 2
    assert keys.drain(7) == 2 and len(keys) == 0


def test_what_held_replies_and_uncommitted_changes_pin_is_counted_and_given_back():
    """The back-pressure budget reads these counts: each held reply and each uncommitted
    change pins its bytes plus its bookkeeping, and exactly that comes back when it goes."""
    from workbench.durability.gate import HELD_REPLY_OVERHEAD, UNCOMMITTED_CHANGE_OVERHEAD
    gate, aof = gate_with_aof()
    held = HeldReplies()
    gate.replies_pinned += held.add(b"+OK\r\n", 10)
    gate.replies_pinned += held.add(b"$1\r\nv\r\n", 20)
    gate.record_write(0, [b"k", b"key2"], 10)
    gate.record_write(0, [b"k"], 20)                     # a second change of k: pinned too
    assert gate.replies_pinned == held.pinned == 5 + 7 + 2 * HELD_REPLY_OVERHEAD
    assert gate.uncommitted.pinned == 1 + 4 + 1 + 3 * UNCOMMITTED_CHANGE_OVERHEAD
    aof.fsynced(10)
    gate.advance()
    before = held.pinned
    assert held.release(gate.committed_offset) == [b"+OK\r\n"]
    gate.replies_pinned -= before - held.pinned
    assert gate.pinned_bytes == 7 + HELD_REPLY_OVERHEAD + 1 + UNCOMMITTED_CHANGE_OVERHEAD
    aof.fsynced(20)
    gate.advance()
    assert held.clear() == 1 and held.pinned == 0
    assert gate.uncommitted.pinned == 0
