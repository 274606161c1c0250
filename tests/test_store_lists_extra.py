"""LSET, LTRIM, LREM, LINSERT, LPOS, LMOVE and RPOPLPUSH on the pure keyspace: what they
propagate, which keys they change, the emptied key deleted, and a replica rebuilt from the
propagated stream. Replies and events are compared with redis-server in
test_differential_lists.py."""

from collections import deque

from workbench.resp import ReplyError
from workbench.store import Keyspace
from keyspace_helpers import argv, reply, run

NO_CHANGE = ([], [])


def effects(out):
    return out.propagate, out.changed_keys


def listed(ks, key, db=0):
    value = ks.dbs[db].data.get(key.encode())
    return None if value is None else [x.decode() for x in value]


def test_lset_propagates_itself(ks):
    run(ks, "RPUSH", "l", "a", "b")
    out = run(ks, "LSET", "l", "-1", "B")
    assert effects(out) == ([argv("LSET", "l", "-1", "B")], [b"l"])
    assert out.events == [("l", "lset", 0, b"l")] and listed(ks, "l") == ["a", "B"]
    for failing in (["l", "2", "x"], ["l", "x", "x"], ["nokey", "0", "x"]):
        out = run(ks, "LSET", *failing)
        assert isinstance(out.reply, ReplyError) and effects(out) == NO_CHANGE
        assert out.events == []


def test_ltrim_that_removes_nothing_fires_its_event_but_changes_nothing(ks):
    run(ks, "RPUSH", "l", "a", "b", "c")
    out = run(ks, "LTRIM", "l", "-100", "100")
    assert effects(out) == NO_CHANGE and out.events == [("l", "ltrim", 0, b"l")]
    assert effects(run(ks, "LTRIM", "nokey", "0", "1")) == NO_CHANGE


def test_ltrim_propagates_itself_and_deletes_the_emptied_list(ks):
    run(ks, "RPUSH", "l", "a", "b", "c")
    out = run(ks, "LTRIM", "l", "1", "-1")
    assert effects(out) == ([argv("LTRIM", "l", "1", "-1")], [b"l"])
    assert listed(ks, "l") == ["b", "c"]
    out = run(ks, "LTRIM", "l", "5", "9")
    assert effects(out) == ([argv("LTRIM", "l", "5", "9")], [b"l"])
    assert out.events == [("l", "ltrim", 0, b"l"), ("g", "del", 0, b"l")]
    assert b"l" not in ks.dbs[0].data


def test_lrem_changes_only_when_it_removes(ks):
    run(ks, "RPUSH", "l", "a", "b", "a", "b", "a")
    assert effects(run(ks, "LREM", "l", "0", "zz")) == NO_CHANGE
    out = run(ks, "LREM", "l", "-2", "a")
    assert out.reply == 2 and listed(ks, "l") == ["a", "b", "b"]
    assert effects(out) == ([argv("LREM", "l", "-2", "a")], [b"l"])
    out = run(ks, "LREM", "l", "1", "a")
    assert out.reply == 1 and listed(ks, "l") == ["b", "b"]
    out = run(ks, "LREM", "l", "0", "b")
    assert out.reply == 2 and b"l" not in ks.dbs[0].data
    assert out.events == [("l", "lrem", 0, b"l"), ("g", "del", 0, b"l")]


def test_counts_are_refused_at_long_min_as_in_valkey(ks):
    # Redis 7.0 negates LONG_MIN instead; Valkey keeps -LONG_MAX..LONG_MAX
    run(ks, "RPUSH", "l", "a")
    text = "ERR value is out of range, value must between -9223372036854775807 and " \
           "9223372036854775807"
    assert reply(ks, "LREM", "l", "-9223372036854775808", "a").text == text
    assert reply(ks, "LPOS", "l", "a", "RANK", "-9223372036854775808").text == text
    assert reply(ks, "LREM", "l", "-9223372036854775807", "a") == 1


def test_linsert_changes_only_when_the_pivot_is_there(ks):
    assert effects(run(ks, "LINSERT", "l", "BEFORE", "a", "x")) == NO_CHANGE
    run(ks, "RPUSH", "l", "a", "b")
    out = run(ks, "LINSERT", "l", "before", "zz", "x")
    assert out.reply == -1 and effects(out) == NO_CHANGE
    out = run(ks, "LINSERT", "l", "after", "a", "x")
    assert out.reply == 3 and effects(out) == ([argv("LINSERT", "l", "after", "a", "x")], [b"l"])
    assert listed(ks, "l") == ["a", "x", "b"]


def test_lpos_reads_only(ks):
    run(ks, "RPUSH", "l", "a", "b", "a")
    out = run(ks, "LPOS", "l", "a", "RANK", "-1", "COUNT", "0")
    assert out.reply == [2, 0] and effects(out) == NO_CHANGE and out.events == []


def test_lmove_between_two_lists_propagates_itself(ks):
    run(ks, "RPUSH", "src", "a", "b")
    out = run(ks, "LMOVE", "src", "dst", "RIGHT", "LEFT")
    assert out.reply == b"b" and effects(out) == (
        [argv("LMOVE", "src", "dst", "RIGHT", "LEFT")], [b"dst", b"src"])
    assert out.events == [("l", "lpush", 0, b"dst"), ("l", "rpop", 0, b"src")]
    out = run(ks, "RPOPLPUSH", "src", "dst")
    assert out.reply == b"a" and out.propagate == [argv("RPOPLPUSH", "src", "dst")]
    assert out.events[-1] == ("g", "del", 0, b"src") and b"src" not in ks.dbs[0].data
    assert listed(ks, "dst") == ["a", "b"]
    assert effects(run(ks, "LMOVE", "src", "dst", "LEFT", "LEFT")) == NO_CHANGE


def test_lmove_into_the_wrong_type_changes_nothing(ks):
    run(ks, "RPUSH", "src", "a")
    run(ks, "SET", "str", "v")
    out = run(ks, "LMOVE", "src", "str", "LEFT", "LEFT")
    assert out.reply.text.startswith("WRONGTYPE") and effects(out) == NO_CHANGE
    assert listed(ks, "src") == ["a"]


def test_lmove_with_the_same_source_and_destination_rotates(ks):
    run(ks, "RPUSH", "l", "a", "b", "c")
    out = run(ks, "LMOVE", "l", "l", "LEFT", "RIGHT")
    assert out.reply == b"a" and listed(ks, "l") == ["b", "c", "a"]
    assert out.propagate == [argv("LMOVE", "l", "l", "LEFT", "RIGHT")]
    assert set(out.changed_keys) == {b"l"}
    assert reply(ks, "RPOPLPUSH", "l", "l") == b"a" and listed(ks, "l") == ["a", "b", "c"]
    assert reply(ks, "LMOVE", "l", "l", "LEFT", "LEFT") == b"a"
    assert listed(ks, "l") == ["a", "b", "c"]
    run(ks, "RPUSH", "one", "z")
    out = run(ks, "LMOVE", "one", "one", "RIGHT", "LEFT")
    assert out.events == [("l", "lpush", 0, b"one"), ("l", "rpop", 0, b"one")]
    assert listed(ks, "one") == ["z"]


def test_lmove_into_an_expired_list_propagates_its_deletion_first(ks):
    run(ks, "RPUSH", "src", "a")
    run(ks, "RPUSH", "dst", "old")
    run(ks, "PEXPIRE", "dst", "10", now=1_000)
    out = run(ks, "LMOVE", "src", "dst", "LEFT", "LEFT", now=2_000)
    assert out.propagate == [argv("DEL", "dst"), argv("LMOVE", "src", "dst", "LEFT", "LEFT")]
    assert listed(ks, "dst") == ["a"] and b"dst" not in ks.dbs[0].expires


WORKLOAD = [
    ("RPUSH", "a", "1", "2", "3", "2", "1"), ("RPUSH", "b", "x", "y"), ("PEXPIRE", "b", "50"),
    ("LSET", "a", "0", "one"), ("LINSERT", "a", "AFTER", "2", "2.5"), ("LREM", "a", "-1", "2"),
    ("LMOVE", "a", "b", "LEFT", "RIGHT"),       # b has expired: deleted, then created anew
    ("RPOPLPUSH", "a", "b"), ("LMOVE", "b", "b", "RIGHT", "LEFT"), ("LTRIM", "a", "0", "0"),
    ("LPOS", "a", "2"), ("LTRIM", "a", "-100", "100"), ("PEXPIRE", "a", "10"),
    ("LSET", "a", "0", "late"),                 # a has expired: no such key, deleted
    ("RPUSH", "c", "p", "q"), ("PEXPIRE", "c", "100000"), ("LMOVE", "c", "c", "LEFT", "LEFT"),
    ("LREM", "c", "0", "p"), ("LINSERT", "c", "BEFORE", "q", "p"), ("RPOPLPUSH", "b", "c"),
    ("LMOVE", "b", "c", "RIGHT", "RIGHT"), ("LTRIM", "b", "1", "0"), ("LREM", "c", "1", "zz"),
]


def test_replaying_the_propagated_commands_on_a_replica_rebuilds_the_keyspace(ks):
    stream, now = [], 1_000
    for command in WORKLOAD:
        now += 20
        out = run(ks, *command, now=now)
        assert not isinstance(out.reply, ReplyError) or command[0] == "LSET", (command, out)
        stream.extend(out.propagate)
    assert [c[0] for c in stream].count(b"DEL") == 2
    replica = Keyspace()
    for command in stream:                      # later: the replica keeps what expired
        out = replica.execute(command, db=0, now_ms=now + 10_000, replica=True)
        assert not isinstance(out.reply, ReplyError), (command, out.reply)
    assert replica.dbs[0].data == ks.dbs[0].data and replica.dbs[0].expires == ks.dbs[0].expires
    assert ks.dbs[0].data == {b"c": deque([b"1", b"p", b"q", b"one"])}
    assert list(ks.dbs[0].expires) == [b"c"]
