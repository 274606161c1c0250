"""SMOVE and the set algebra on the pure keyspace: what they propagate, change and delete.

The side-by-side test checks replies and events against redis-server; here are the
effects it cannot see: the propagated commands (verbatim, behind the ``DEL`` of any key
found expired), the changed keys, and a replica rebuilding the same keyspace from them.
"""

from __future__ import annotations

from workbench.resp import ReplyError, SetReply
from workbench.store import Keyspace
from workbench.store.table import lookup
from keyspace_helpers import argv, reply, run


def members(ks, key):
    return ks.dbs[0].data.get(key.encode())


def test_stores_propagate_verbatim_and_change_only_the_destination(ks):
    run(ks, "SADD", "a", "1", "2", "3")
    run(ks, "SADD", "b", "2", "3", "4")
    for name, expected in [("SINTERSTORE", {b"2", b"3"}), ("SUNIONSTORE", {b"1", b"2", b"3", b"4"}),
                           ("SDIFFSTORE", {b"1"})]:
        out = run(ks, name, "d", "a", "b")
        assert out.reply == len(expected) and members(ks, "d") == expected
        assert out.propagate == [argv(name, "d", "a", "b")] and out.changed_keys == [b"d"]
        assert out.events == [("s", name.lower(), 0, b"d")]


def test_a_stored_set_shares_nothing_with_its_sources(ks):
    run(ks, "SADD", "a", "1", "2")
    run(ks, "SUNIONSTORE", "d", "a")
    run(ks, "SINTERSTORE", "i", "a")
    run(ks, "SDIFFSTORE", "f", "a", "missing")
    run(ks, "SADD", "a", "3")
    assert members(ks, "d") == members(ks, "i") == members(ks, "f") == {b"1", b"2"}


def test_an_empty_result_deletes_the_destination_and_fires_del(ks):
    run(ks, "SADD", "a", "1")
    run(ks, "SET", "d", "x")
    out = run(ks, "SINTERSTORE", "d", "a", "missing")
    assert out.reply == 0 and b"d" not in ks.dbs[0].data
    assert out.propagate == [argv("SINTERSTORE", "d", "a", "missing")]
    assert out.changed_keys == [b"d"] and out.events == [("g", "del", 0, b"d")]
    for command in [("SINTERSTORE", "d", "a", "missing"), ("SDIFFSTORE", "d", "a", "a"),
                    ("SUNIONSTORE", "d", "missing")]:
        out = run(ks, *command)              # nothing there to delete: nothing happened
        assert (out.reply, out.propagate, out.changed_keys, out.events) == (0, [], [], [])


def test_a_wrongtype_source_leaves_the_destination_alone(ks):
    run(ks, "SADD", "a", "1")
    run(ks, "SADD", "d", "old")
    run(ks, "SET", "str", "x")
    out = run(ks, "SUNIONSTORE", "d", "a", "str")
    assert isinstance(out.reply, ReplyError) and out.propagate == []
    assert members(ks, "d") == {b"old"}


def test_an_expired_source_is_deleted_first_and_its_del_propagated(ks):
    run(ks, "SADD", "a", "1", "2")
    run(ks, "SADD", "b", "2")
    run(ks, "PEXPIRE", "b", "10")
    out = run(ks, "SUNIONSTORE", "d", "a", "b", now=2_000)
    assert out.propagate == [argv("DEL", "b"), argv("SUNIONSTORE", "d", "a", "b")]
    assert members(ks, "d") == {b"1", b"2"} and b"b" not in ks.dbs[0].data
    run(ks, "SADD", "c", "1")
    run(ks, "PEXPIRE", "c", "10", now=2_000)
    out = run(ks, "SINTERSTORE", "e", "a", "c", now=3_000)   # empty, nothing to delete
    assert out.reply == 0 and out.propagate == [argv("DEL", "c")]
    out = run(ks, "SDIFF", "a", "b", now=3_000)                 # a read: nothing to delete
    assert set(out.reply) == {b"1", b"2"} and out.propagate == []


def test_an_expired_destination_expires_before_a_store_but_is_just_deleted_when_empty(ks):
    run(ks, "SADD", "a", "1")
    run(ks, "SADD", "d", "old")
    run(ks, "PEXPIRE", "d", "10")
    out = run(ks, "SUNIONSTORE", "d", "a", now=2_000)           # as Valkey's setKey
    assert out.propagate == [argv("DEL", "d"), argv("SUNIONSTORE", "d", "a")]
    assert [e[1] for e in out.events] == ["expired", "sunionstore"]
    assert members(ks, "d") == {b"1"} and ks.dbs[0].expires == {}
    run(ks, "PEXPIRE", "d", "10", now=2_000)
    out = run(ks, "SINTERSTORE", "d", "a", "missing", now=3_000)  # Valkey's dbDelete: del
    assert out.propagate == [argv("SINTERSTORE", "d", "a", "missing")]
    assert out.events == [("g", "del", 0, b"d")] and ks.dbs[0].data.keys() == {b"a"}


def test_a_replica_applying_a_store_still_sees_an_expired_source(ks):
    run(ks, "SADD", "a", "1", "2")
    run(ks, "SADD", "b", "2")
    run(ks, "PEXPIRE", "b", "10")
    out = run(ks, "SINTERSTORE", "d", "a", "b", now=5_000, replica=True)
    assert out.reply == 1 and members(ks, "d") == {b"2"}
    assert out.propagate == [argv("SINTERSTORE", "d", "a", "b")]
    assert b"b" in ks.dbs[0].data                                 # until the primary's DEL
    out = run(ks, "SINTER", "a", "b", now=5_000, replica=True)   # its clients: b is gone
    assert out.reply == SetReply() and b"b" in ks.dbs[0].data


def test_smove_propagates_verbatim_and_changes_both_keys(ks):
    run(ks, "SADD", "a", "1", "2")
    run(ks, "SADD", "b", "2")
    out = run(ks, "SMOVE", "a", "b", "1")
    assert out.reply == 1 and out.propagate == [argv("SMOVE", "a", "b", "1")]
    assert out.changed_keys == [b"a", b"b"]
    assert out.events == [("s", "srem", 0, b"a"), ("s", "sadd", 0, b"b")]
    out = run(ks, "SMOVE", "a", "b", "2")       # already there: only the source changes
    assert out.reply == 1 and out.propagate == [argv("SMOVE", "a", "b", "2")]
    assert out.changed_keys == [b"a"] and b"a" not in ks.dbs[0].data
    assert out.events == [("s", "srem", 0, b"a"), ("g", "del", 0, b"a")]
    assert members(ks, "b") == {b"1", b"2"}


def test_smove_that_moves_nothing_propagates_nothing(ks):
    run(ks, "SADD", "a", "1")
    for command in [("SMOVE", "a", "a", "1"), ("SMOVE", "a", "b", "9"),
                    ("SMOVE", "missing", "a", "1")]:
        out = run(ks, *command)
        assert out.propagate == [] and out.changed_keys == [] and out.events == []
    assert members(ks, "a") == {b"1"} and b"b" not in ks.dbs[0].data


def test_smove_creates_the_destination_without_the_sources_expiry(ks):
    run(ks, "SADD", "a", "1", "2")
    run(ks, "PEXPIRE", "a", "100000")
    assert reply(ks, "SMOVE", "a", "new", "1") == 1
    assert members(ks, "new") == {b"1"} and ks.dbs[0].expires == {b"a": 101_000}


def test_smove_looks_up_an_expired_destination_even_when_the_source_is_missing(ks):
    run(ks, "SADD", "d", "x")
    run(ks, "PEXPIRE", "d", "10")
    out = run(ks, "SMOVE", "missing", "d", "x", now=2_000)
    assert out.reply == 0 and out.propagate == [argv("DEL", "d")]


def test_sintercard_key_spec_covers_every_key():
    spec = lookup(b"sintercard")
    command = argv("SINTERCARD", "2", "a", "b", "LIMIT", "1")
    assert {b"a", b"b"} <= set(spec.keys(command))
    assert lookup(b"smove").keys(argv("SMOVE", "s", "d", "m")) == [b"s", b"d"]
    assert lookup(b"sdiffstore").keys(argv("SDIFFSTORE", "d", "a", "b")) == [b"d", b"a", b"b"]


def test_sintercard_counts_up_to_the_limit(ks):
    run(ks, "SADD", "a", "1", "2", "3")
    run(ks, "SADD", "b", "1", "2", "3", "4")
    assert [reply(ks, "SINTERCARD", "2", "a", "b", "LIMIT", n) for n in range(5)] == \
        [3, 1, 2, 3, 3]
    assert run(ks, "SINTERCARD", "1", "a").propagate == []


WORKLOAD = [
    ("SADD", "a", "1", "2", "3"), ("SADD", "b", "2", "3", "4"), ("PEXPIRE", "b", "70"),
    ("SINTERSTORE", "i", "a", "b"), ("SUNIONSTORE", "u", "a", "b"), ("SDIFFSTORE", "f", "a", "b"),
    ("SMOVE", "a", "u", "1"), ("PEXPIRE", "u", "40"),
    ("SINTERSTORE", "i", "a", "b"),             # b has expired: DEL b, then i is emptied
    ("SUNIONSTORE", "u", "a", "f"),             # u has expired: DEL u, then stored anew
    ("SMOVE", "f", "g", "1"), ("SADD", "h", "x"), ("PEXPIRE", "h", "10"),
    ("SDIFFSTORE", "h", "missing"),             # h has expired: just deleted
    ("SINTERCARD", "2", "a", "u"), ("SMOVE", "a", "a", "2"), ("SMOVE", "u", "a", "3"),
    ("SADD", "k", "z"), ("PEXPIRE", "k", "100000"), ("SUNIONSTORE", "k", "k", "a"),
    ("SADD", "m", "z"), ("PEXPIRE", "m", "100000"), ("SMOVE", "k", "m", "z"),
]


def test_replaying_the_propagated_commands_on_a_replica_rebuilds_the_keyspace(ks):
    stream, now = [], 1_000
    for command in WORKLOAD:
        now += 20
        out = run(ks, *command, now=now)
        assert not isinstance(out.reply, ReplyError), (command, out.reply)
        stream.extend(out.propagate)
    assert [c[0] for c in stream].count(b"DEL") == 2
    replica = Keyspace()
    for command in stream:                      # later: the replica keeps what expired
        out = replica.execute(command, db=0, now_ms=now + 10_000, replica=True)
        assert not isinstance(out.reply, ReplyError), (command, out.reply)
    assert replica.dbs[0].data == ks.dbs[0].data and replica.dbs[0].expires == ks.dbs[0].expires
    assert ks.dbs[0].data == {b"a": {b"2", b"3"}, b"g": {b"1"},
                              b"k": {b"2", b"3"}, b"m": {b"z"}, b"u": {b"1", b"2"}}
    assert ks.dbs[0].expires == {b"m": 101_440}
