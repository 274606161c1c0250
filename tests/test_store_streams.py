"""Streams in the pure keyspace: IDs, trimming, groups, and deterministic replay.

The replies and errors are checked against redis-server in
``test_differential_streams.py``; here: what needs the clock in hand (generated IDs,
delivery times), the propagated forms, and that the AOF / a replica / a snapshot rebuild
exactly the same streams, consumer groups and pending entries.
"""

from __future__ import annotations

import random

import pytest

from workbench.resp import NULL_ARRAY, ReplyError, RequestParser
from workbench.store import Keyspace
from workbench.store.cmd_dump import deserialize, serialize
from workbench.store.cmd_streams import XREAD_NOW, parse_id
from workbench.store.cmd_streams_readgroup import XREADGROUP_NOW
from workbench.store.snapshot import dump, load
from test_store_replay import assert_same, stream_of


def run(ks, line: str, now_ms: int = 1_000, db: int = 0):
    argv = [w.encode() for w in line.split()]
    if argv[0].upper() == b"XREADGROUP":
        return ks.run(XREADGROUP_NOW, argv, db, now_ms)
    if argv[0].upper() == b"XREAD":
        return ks.run(XREAD_NOW, argv, db, now_ms)
    return ks.execute(argv, db=db, now_ms=now_ms)


def reply(ks, line, now_ms=1_000):
    return run(ks, line, now_ms).reply


def test_star_takes_the_commands_time_and_propagates_the_id():
    ks = Keyspace()
    out = run(ks, "XADD s * a 1", now_ms=5_000)
    assert out.reply == b"5000-0"
    assert out.propagate == [[b"XADD", b"s", b"5000-0", b"a", b"1"]]
    assert out.events == [("t", "xadd", 0, b"s")]
    assert reply(ks, "XADD s * a 2", now_ms=4_000) == b"5000-1"     # the clock went back
    assert reply(ks, "XADD s 5000-* a 3") == b"5000-2"
    assert reply(ks, "XADD s 6000-* a 4") == b"6000-0"
    assert run(ks, "XADD s 6000-* a 4").propagate[0][2] == b"6000-1"


def test_id_parsing_follows_strtoull():
    assert parse_id(b"+5-0") == (5, 0)
    assert parse_id(b" 7") == (7, 0)
    assert parse_id(b"3", missing_seq=9) == (3, 9)
    assert parse_id(b"18446744073709551615-18446744073709551615") == (2**64 - 1,) * 2
    for bad in (b"-1", b"1-2-3", b"x", b"18446744073709551616", b"1-", b""):
        with pytest.raises(ReplyError):
            parse_id(bad)


def test_approximate_trim_removes_whole_nodes_and_propagates_what_it_kept():
    ks = Keyspace()
    for i in range(1, 251):
        run(ks, f"XADD s {i}-1 f v")
    assert ks.dbs[0].data[b"s"].nodes[0][3] == 100          # nodes of 100 entries
    out = run(ks, "XADD s MAXLEN ~ 120 251-1 f v")
    assert reply(ks, "XLEN s") == 151                        # one node of 100 went
    assert out.propagate == [[b"XADD", b"s", b"MAXLEN", b"=", b"151", b"251-1", b"f", b"v"]]
    assert out.events == [("t", "xadd", 0, b"s"), ("t", "xtrim", 0, b"s")]
    out = run(ks, "XTRIM s MINID ~ 240")
    assert out.reply == 100 and out.propagate == [[b"XTRIM", b"s", b"MINID", b"=", b"201-1"]]
    assert reply(ks, "XTRIM s MAXLEN ~ 10 LIMIT 10") == 0      # a node is more than 10


def test_xread_and_dollar():
    ks = Keyspace()
    run(ks, "XADD s 1-1 a 1")
    assert reply(ks, "XREAD STREAMS s $") is NULL_ARRAY
    assert reply(ks, "XREAD COUNT 1 STREAMS s nokey 0 0") == [[b"s", [[b"1-1", [b"a", b"1"]]]]]


def test_xreadgroup_propagates_claims_with_absolute_times():
    ks = Keyspace()
    run(ks, "XADD s 1-1 a 1")
    run(ks, "XADD s 2-1 b 2")
    run(ks, "XGROUP CREATE s g 0")
    out = run(ks, "XREADGROUP GROUP g alice COUNT 1 STREAMS s >", now_ms=7_000)
    assert out.reply == [[b"s", [[b"1-1", [b"a", b"1"]]]]]
    assert out.propagate == [
        [b"XGROUP", b"CREATECONSUMER", b"s", b"g", b"alice"],
        [b"XCLAIM", b"s", b"g", b"alice", b"0", b"1-1", b"TIME", b"7000", b"RETRYCOUNT", b"1",
         b"FORCE", b"JUSTID", b"LASTID", b"1-1"],
        [b"XGROUP", b"SETID", b"s", b"g", b"1-1", b"ENTRIESREAD", b"1"]]
    assert reply(ks, "XPENDING s g - + 10", now_ms=7_500) == [[b"1-1", b"alice", 500, 1]]
    # reading its history again delivers it again
    out = run(ks, "XREADGROUP GROUP g alice STREAMS s 0", now_ms=8_000)
    assert out.reply == [[b"s", [[b"1-1", [b"a", b"1"]]]]]
    assert out.propagate[0][7] == b"8000" and out.propagate[0][9] == b"2"
    assert reply(ks, "XPENDING s g IDLE 100 - + 10", now_ms=8_050) == []
    assert reply(ks, "XAUTOCLAIM s g bob 10 0 JUSTID", now_ms=8_100) == [b"0-0", [b"1-1"], []]
    run(ks, "XDEL s 1-1")
    assert reply(ks, "XAUTOCLAIM s g bob 0 0", now_ms=8_200) == [b"0-0", [], [b"1-1"]]
    assert reply(ks, "XPENDING s g") == [0, None, None, NULL_ARRAY]


def test_group_lag_and_info():
    ks = Keyspace()
    for i in range(1, 6):
        run(ks, f"XADD s {i}-0 f v")
    run(ks, "XGROUP CREATE s g 0")
    run(ks, "XREADGROUP GROUP g c COUNT 2 STREAMS s >")
    info = reply(ks, "XINFO GROUPS s")[0]
    assert (info[b"entries-read"], info[b"lag"], info[b"pending"]) == (2, 3, 2)
    run(ks, "XDEL s 4-0")
    assert reply(ks, "XINFO GROUPS s")[0][b"lag"] is None     # a hole ahead: unknown
    consumer = reply(ks, "XINFO CONSUMERS s g", now_ms=1_300)[0]
    assert consumer[b"idle"] == 300 and consumer[b"inactive"] == 300


def test_copy_is_deep_and_dump_restores_a_stream():
    ks = Keyspace()
    run(ks, "XADD s 1-1 a 1")
    run(ks, "XGROUP CREATE s g 0")
    run(ks, "XREADGROUP GROUP g c STREAMS s >")
    run(ks, "COPY s t")
    run(ks, "XACK s g 1-1")
    assert reply(ks, "XPENDING t g")[0] == 1
    value = ks.dbs[0].data[b"t"]
    assert deserialize(serialize(value)) == value


STREAM_KEYS = [b"s1", b"s2", b"s3"]


def stream_command(rng: random.Random) -> list:
    k = rng.choice(STREAM_KEYS)
    c = rng.choice([b"alice", b"bob", b"carol"])
    some_id = b"%d-0" % rng.randrange(1_000_000, 1_030_000)
    if rng.random() < 0.005:
        return [b"DEL", k]
    return rng.choice([
        [b"XADD", k, b"*", b"f", b"%d" % rng.randrange(9)],
        [b"XADD", k, b"*", b"f", b"v"], [b"XADD", k, b"*", b"a", b"b", b"c", b"d"],
        [b"XADD", k, b"MAXLEN", b"~", b"%d" % rng.randrange(30), b"*", b"f", b"v"],
        [b"XADD", k, b"MINID", b"%d" % rng.randrange(1_000_000, 1_030_000), b"*", b"f", b"v"],
        [b"XDEL", k, some_id], [b"XTRIM", k, b"MAXLEN", b"%d" % rng.randrange(40)],
        [b"XGROUP", b"CREATE", k, rng.choice([b"g1", b"g2"]), b"0", b"MKSTREAM"],
        [b"XGROUP", b"SETID", k, b"g1", some_id], [b"XGROUP", b"DESTROY", k, b"g2"],
        [b"XGROUP", b"DELCONSUMER", k, b"g1", c], [b"XGROUP", b"CREATECONSUMER", k, b"g1", c],
        [b"XREADGROUP", b"GROUP", rng.choice([b"g1", b"g2"]), c, b"COUNT", b"3",
         b"STREAMS", k, b">"],
        [b"XREADGROUP", b"GROUP", b"g1", c, b"NOACK", b"STREAMS", k, b">"],
        [b"XREADGROUP", b"GROUP", b"g1", c, b"COUNT", b"2", b"STREAMS", k, b"0"],
        [b"XACK", k, b"g1", some_id], [b"XCLAIM", k, b"g1", c, b"100", some_id],
        [b"XCLAIM", k, b"g1", c, b"0", some_id, b"IDLE", b"50", b"LASTID", some_id],
        [b"XAUTOCLAIM", k, b"g1", c, b"200", b"0", b"COUNT", b"2"],
        [b"XSETID", k, b"99999999999-%d" % rng.randrange(3)],
    ])


def stream_workload(seed: int, steps: int):
    rng = random.Random(seed)
    primary, log, now = Keyspace(databases=1), [], 1_000_000
    for _ in range(steps):
        now += rng.randrange(0, 40)
        argv = stream_command(rng)
        spec_run = argv[0] == b"XREADGROUP"
        out = (primary.run(XREADGROUP_NOW, argv, 0, now) if spec_run
               else primary.execute(argv, db=0, now_ms=now))
        log.append((0, out.propagate))
    return primary, log, now


@pytest.mark.parametrize("seed", range(5))
def test_replay_and_snapshot_rebuild_streams_groups_and_pels(seed):
    primary, log, now = stream_workload(seed, 1_200)
    propagated = {argv[0] for _, batch in log for argv in batch}
    assert {b"XCLAIM", b"XGROUP", b"XADD", b"XTRIM", b"XSETID"} <= propagated
    replica = Keyspace(databases=1)
    for argv in RequestParser().feed(stream_of(log)):
        if argv[0] == b"SELECT":
            continue
        out = replica.execute(argv, db=0, now_ms=now + 5_000, replica=True)
        assert not isinstance(out.reply, ReplyError), (argv, out.reply)
    assert_same(primary, replica)
    copy = Keyspace(databases=1)
    load(copy, dump(primary, now), now)
    assert_same(primary, copy)
