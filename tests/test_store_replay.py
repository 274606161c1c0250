"""Replaying what a keyspace propagates rebuilds it; so does loading its snapshot."""

import random

import pytest

from workbench.resp import ReplyError, RequestParser, encode_command
from workbench.store import Keyspace
from workbench.store.cmd_streams_readgroup import XREADGROUP_NOW
from workbench.store.snapshot import CHUNK, dump, dump_commands, load

KEYS = [b"k%d" % i for i in range(8)]
FIELDS = [b"f%d" % i for i in range(4)]


def random_command(rng: random.Random) -> list:
    """One command, mostly writes, with arguments that sometimes fail or change nothing."""
    k, k2 = rng.choice(KEYS), rng.choice(KEYS)
    f = rng.choice(FIELDS)
    v = b"%d" % rng.randrange(-5, 20)
    n = b"%d" % rng.randrange(0, 4)
    ms = b"%d" % rng.randrange(-200, 2_000)
    score = rng.choice([b"%d" % rng.randrange(-5, 20), b"0.1", b"-2.5", b"1e-3", b"1.7"])
    choices = [
        [b"SET", k, v], [b"SET", k, v, b"PX", b"%d" % rng.randrange(1, 2_000)],
        [b"SET", k, v, b"EX", b"1", b"GET"], [b"SET", k, v, b"KEEPTTL"], [b"SET", k, v, b"NX"],
        [b"SET", k, v, b"XX", b"GET"], [b"SETEX", k, b"1", v], [b"SETNX", k, v],
        [b"GETSET", k, v], [b"GETDEL", k], [b"MSET", k, v, k2, v], [b"MSETNX", k, v, k2, v],
        [b"INCR", k], [b"INCRBY", k, v], [b"DECRBY", k, v], [b"INCRBYFLOAT", k, b"0.1"],
        [b"APPEND", k, v], [b"DEL", k, k2], [b"UNLINK", k], [b"RENAME", k, k2],
        [b"RENAMENX", k, k2], [b"EXPIRE", k, b"1"], [b"PEXPIRE", k, ms],
        [b"PEXPIRE", k, ms, rng.choice([b"NX", b"XX", b"GT", b"LT"])],
        [b"EXPIREAT", k, b"0"], [b"PERSIST", k],
        [b"HSET", k, f, v, rng.choice(FIELDS), v], [b"HDEL", k, f], [b"HINCRBY", k, f, v],
        [b"HINCRBYFLOAT", k, f, b"1.5"], [b"HSETNX", k, f, v],
        [b"LPUSH", k, v, v + b"x"], [b"RPUSH", k, v], [b"LPOP", k], [b"RPOP", k, n],
        [b"LPUSHX", k, v], [b"SADD", k, v, b"%d" % rng.randrange(10)], [b"SREM", k, v],
        [b"SADD", k, f, n, v, b"%d" % rng.randrange(10)],
        [b"SPOP", k], [b"SPOP", k, n],
        [b"GET", k], [b"TTL", k], [b"EXISTS", k, k2], [b"LRANGE", k, b"0", b"-1"],
        [b"HGETALL", k], [b"SMEMBERS", k], [b"KEYS", b"k*"], [b"SCAN", b"0"], [b"RANDOMKEY"],
        [b"LSET", k, n, v], [b"LSET", k, b"-1", v],
        [b"LTRIM", k, n, b"%d" % rng.randrange(-4, 4)],
        [b"LREM", k, b"%d" % rng.randrange(-2, 3), n],
        [b"LINSERT", k, rng.choice([b"BEFORE", b"AFTER"]), n, v],
        [b"LPOS", k, n, b"RANK", b"-1", b"COUNT", n],
        [b"LMOVE", k, k2, rng.choice([b"LEFT", b"RIGHT"]), rng.choice([b"LEFT", b"RIGHT"])],
        [b"RPOPLPUSH", k, k2], [b"RPUSH", k, n, v, n],
        [b"SMOVE", k, k2, v], [b"SINTERSTORE", k, k2, k], [b"SINTERSTORE", k2, k],
        [b"SUNIONSTORE", k2, k],
        [b"SUNIONSTORE", k2, k, k2], [b"SDIFFSTORE", k, k2, k], [b"SDIFFSTORE", k2, k],
        [b"SINTER", k, k2], [b"SUNION", k, k2], [b"SDIFF", k, k2],
        [b"SINTERCARD", b"2", k, k2, b"LIMIT", n],
        [b"SETRANGE", k, n, v], [b"SETRANGE", k, n, b""], [b"GETRANGE", k, b"0", b"-1"],
        [b"GETEX", k], [b"GETEX", k, b"PX", ms], [b"GETEX", k, b"EX", n],
        [b"GETEX", k, b"PXAT", ms], [b"GETEX", k, b"EXAT", n], [b"GETEX", k, b"PERSIST"],
        [b"HRANDFIELD", k, n, b"WITHVALUES"], [b"HSCAN", k, b"0"],
        [b"SSCAN", k, b"0", b"COUNT", n],
        [b"MOVE", k, b"%d" % rng.randrange(3)], [b"COPY", k, k2],
        [b"COPY", k, k2, b"DB", b"%d" % rng.randrange(3), b"REPLACE"],
        # sorted sets (scores with fractions, so replay must rebuild the exact doubles)
        [b"ZADD", k, score, f, b"%d" % rng.randrange(-3, 3), rng.choice(FIELDS)],
        [b"ZADD", k, rng.choice([b"NX", b"XX", b"GT", b"LT", b"CH"]), score, f],
        [b"ZADD", k, b"XX", rng.choice([b"GT", b"LT"]), b"CH", score, f],
        [b"ZADD", k, b"INCR", score, f], [b"ZADD", k, b"GT", b"INCR", score, f],
        [b"ZINCRBY", k, score, f], [b"ZINCRBY", k, b"inf", f], [b"ZREM", k, f, f + b"x"],
        [b"ZREMRANGEBYRANK", k, n, b"%d" % rng.randrange(-3, 3)],
        [b"ZREMRANGEBYSCORE", k, b"(0", score], [b"ZREMRANGEBYLEX", k, b"[f1", b"+"],
        [b"ZPOPMIN", k], [b"ZPOPMAX", k, n],
        [b"ZMPOP", b"2", k, k2, rng.choice([b"MIN", b"MAX"]), b"COUNT", b"2"],
        [b"ZRANGESTORE", k2, k, b"0", b"-1"], [b"ZRANGESTORE", k2, k, b"+inf", b"(0",
                                                 b"BYSCORE", b"REV", b"LIMIT", b"0", n],
        [b"ZUNIONSTORE", k2, b"2", k, k2, b"WEIGHTS", b"0.5", b"3"],
        [b"ZINTERSTORE", k2, b"2", k, k2, b"AGGREGATE", rng.choice([b"MIN", b"MAX"])],
        [b"ZDIFFSTORE", k2, b"2", k2, k], [b"ZRANDMEMBER", k, b"-3", b"WITHSCORES"],
        [b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"], [b"ZSCAN", k, b"0"],
        # bitmaps, HyperLogLog, SORT ... STORE (which reads keys by pattern)
        [b"SETBIT", k, n, b"1"], [b"SETBIT", k, b"%d" % rng.randrange(40), b"0"],
        [b"BITOP", b"OR", k, k, k2], [b"BITOP", b"NOT", k2, k], [b"BITCOUNT", k],
        [b"BITFIELD", k, b"OVERFLOW", b"FAIL", b"INCRBY", b"u3", b"#2", v],
        [b"BITFIELD", k, b"SET", b"i8", b"0", v], [b"PFADD", k, v, f],
        [b"PFMERGE", k2, k], [b"PFCOUNT", k, k2],
        [b"SORT", k, b"BY", b"k*", b"GET", b"#", b"STORE", k2],
        [b"SORT", k, b"BY", b"nosort", b"ALPHA", b"STORE", k2], [b"SORT", k, b"ALPHA"],
        [b"LMPOP", b"2", k, k2, rng.choice([b"LEFT", b"RIGHT"]), b"COUNT", n],
        # geo: points are sorted-set members; the STORE forms write a sorted set
        [b"GEOADD", k, b"%.4f" % rng.uniform(-10, 10), b"%.4f" % rng.uniform(-10, 10), f],
        [b"GEOSEARCHSTORE", k2, k, b"FROMLONLAT", b"0", b"0", b"BYRADIUS", b"2000", b"km",
         b"STOREDIST"],
        [b"GEORADIUS", k, b"0", b"0", b"1500", b"km", b"STORE", k2],
        # streams: generated IDs, trims, groups and their pending entries
        [b"XADD", k, b"*", f, v], [b"XADD", k, b"MAXLEN", b"~", n, b"*", f, v],
        [b"XADD", k, b"MAXLEN", n, b"*", f, v], [b"XADD", k, b"%d-*" % rng.randrange(1_000_000, 1_400_000), f, v],
        [b"XADD", k, b"NOMKSTREAM", b"MINID", b"=", b"%d" % rng.randrange(1_000_000, 1_010_000),
         b"*", f, v],
        [b"XDEL", k, b"%d-0" % rng.randrange(1_000_000, 1_010_000)],
        [b"XTRIM", k, b"MAXLEN", n], [b"XSETID", k, b"9999999999-%s" % n],
        [b"XGROUP", b"CREATE", k, b"g", rng.choice([b"0", b"$"]), b"MKSTREAM"],
        [b"XGROUP", b"SETID", k, b"g", b"0"], [b"XGROUP", b"DELCONSUMER", k, b"g", f],
        [b"XGROUP", b"CREATECONSUMER", k, b"g", f],
        [b"XCLAIM", k, b"g", f, b"0", b"%d-0" % rng.randrange(1_000_000, 1_010_000)],
        [b"XAUTOCLAIM", k, b"g", f, b"10", b"0", b"COUNT", b"3"],
        [b"XACK", k, b"g", b"%d-0" % rng.randrange(1_000_000, 1_010_000)],
        [b"XREADGROUP_NOW", b"GROUP", b"g", f, b"COUNT", b"2", b"STREAMS", k,
         rng.choice([b">", b"0"])],
    ]
    if rng.random() < 0.01:
        return [b"SWAPDB", b"%d" % rng.randrange(3), b"%d" % rng.randrange(3)]
    if rng.random() < 0.01:
        return [rng.choice([b"FLUSHDB", b"FLUSHALL"])]
    return rng.choice(choices)


def execute_on_primary(ks: Keyspace, argv: list, db: int, now_ms: int):
    """``ks.execute``; XREADGROUP (a server command, as it may block) runs its read."""
    if argv[0] == b"XREADGROUP_NOW":
        return ks.run(XREADGROUP_NOW, [b"XREADGROUP", *argv[1:]], db, now_ms)
    return ks.execute(argv, db=db, now_ms=now_ms)


def stream_of(log) -> bytes:
    """The bytes a primary would send: propagated commands with SELECT on a db change."""
    out, current = [], None
    for db, commands in log:
        if commands and db != current:
            out.append(encode_command([b"SELECT", b"%d" % db]))
            current = db
        out.extend(encode_command(c) for c in commands)
    return b"".join(out)


def assert_same(a: Keyspace, b: Keyspace) -> None:
    for da, db_ in zip(a.dbs, b.dbs):
        assert da.data == db_.data, da.id
        assert da.expires == db_.expires, da.id


def run_workload(seed: int, steps: int):
    rng = random.Random(seed)
    primary = Keyspace(databases=3)
    log, now = [], 1_000_000
    effects = set()     # (command, what it propagated as)
    for _ in range(steps):
        now += rng.randrange(0, 300)
        db = rng.choice([0, 0, 0, 1, 2])
        argv = random_command(rng)
        out = execute_on_primary(primary, argv, db, now)
        log.append((db, out.propagate))
        if out.propagate:
            effects.add((argv[0], out.propagate[-1][0]))
    return primary, log, now, rng, effects


@pytest.mark.parametrize("seed", range(6))
def test_replaying_the_propagated_stream_rebuilds_the_keyspace(seed):
    primary, log, now, rng, _ = run_workload(seed, 1_500)
    replica = Keyspace(databases=3)
    data = stream_of(log)
    # the replica applies in pieces, lagging by seconds: it must not expire on its own
    cut = rng.randrange(len(data))
    parser = RequestParser()
    db = 0
    for piece in (data[:cut], data[cut:]):
        for argv in parser.feed(piece):
            if argv[0] == b"SELECT":
                db = int(argv[1])
                continue
            out = replica.execute(argv, db=db, now_ms=now + 5_000, replica=True)
            assert not isinstance(out.reply, ReplyError), (argv, out.reply)
    assert_same(primary, replica)


def test_workload_exercises_the_rewritten_forms():
    effects = set().union(*(run_workload(seed, 3_000)[4] for seed in range(6)))
    assert {(b"SPOP", b"SREM"), (b"SPOP", b"DEL"), (b"PEXPIRE", b"PEXPIREAT"),
            (b"EXPIRE", b"DEL"), (b"GET", b"DEL"), (b"INCRBYFLOAT", b"SET"),
            (b"HINCRBYFLOAT", b"HSET"), (b"SETEX", b"SET"), (b"FLUSHALL", b"FLUSHALL"),
            (b"MOVE", b"MOVE"), (b"COPY", b"COPY"), (b"SWAPDB", b"SWAPDB"),
            (b"SINTERSTORE", b"SINTERSTORE"), (b"LSET", b"LSET"),
            (b"LTRIM", b"LTRIM"), (b"ZMPOP", b"ZPOPMIN"), (b"ZMPOP", b"ZPOPMAX"),
            (b"ZADD", b"ZADD"), (b"ZINCRBY", b"ZINCRBY"), (b"ZPOPMAX", b"ZPOPMAX"),
            (b"ZUNIONSTORE", b"ZUNIONSTORE"), (b"ZRANGESTORE", b"ZRANGESTORE"),
            (b"SORT", b"RPUSH"), (b"SETBIT", b"SETBIT"), (b"PFADD", b"PFADD"),
            (b"GEOADD", b"zadd"), (b"GEOSEARCHSTORE", b"GEOSEARCHSTORE")} <= effects


def test_replay_at_the_primarys_own_times_as_a_non_replica():
    rng = random.Random(99)
    primary, follower = Keyspace(databases=3), Keyspace(databases=3)
    now = 0
    for _ in range(1_000):
        now += rng.randrange(0, 300)
        db = rng.choice([0, 1])
        applied_in = db
        for argv in execute_on_primary(primary, random_command(rng), db, now).propagate:
            if argv[0] == b"SELECT":             # MOVE/COPY deleting an expired key elsewhere
                applied_in = int(argv[1])
                continue
            follower.execute(argv, db=applied_in, now_ms=now)
    assert_same(primary, follower)


def test_propagated_commands_are_deterministic_forms():
    _, log, _, _, _ = run_workload(11, 2_000)
    names = {cmds[0] for _, batch in log for cmds in batch}
    assert not names & {b"GETEX", b"SPOP", b"EXPIRE", b"PEXPIRE", b"EXPIREAT", b"SETEX",
                        b"INCRBYFLOAT", b"HINCRBYFLOAT", b"GETSET", b"GETDEL", b"ZMPOP"}
    for _, batch in log:
        for argv in batch:
            if argv[0] == b"SET":
                assert not {b"EX", b"PX", b"GET"} & {a.upper() for a in argv[3:]}


# -- snapshots ------------------------------------------------------------------------------
def live_view(ks: Keyspace, now_ms: int):
    return [({k: v for k, v in d.data.items() if d.expires.get(k, now_ms + 1) > now_ms},
             {k: w for k, w in d.expires.items() if w > now_ms}) for d in ks.dbs]


@pytest.mark.parametrize("seed", range(4))
def test_snapshot_round_trip(seed):
    primary, _, now, _, _ = run_workload(100 + seed, 1_500)
    copy = Keyspace(databases=3)
    load(copy, dump(primary, now), now)
    assert live_view(copy, now) == live_view(primary, now)
    assert [(d.data, d.expires) for d in copy.dbs] == live_view(primary, now)


def test_snapshot_format():
    ks = Keyspace()
    ks.execute([b"RPUSH", b"big", *[b"%d" % i for i in range(300)]], db=3, now_ms=0)
    ks.execute([b"HSET", b"h", *[x for i in range(200) for x in (b"f%d" % i, b"v")]], db=3,
               now_ms=0)
    ks.execute([b"SET", b"s", b"v", b"PX", b"500"], db=3, now_ms=0)
    ks.execute([b"SET", b"gone", b"v", b"PX", b"10"], db=3, now_ms=0)
    ks.execute([b"SADD", b"set", b"m"], db=0, now_ms=0)
    commands = list(dump_commands(ks, 100))
    assert commands[0] == [b"SELECT", b"0"] and commands[1] == [b"SADD", b"set", b"m"]
    assert commands[2] == [b"SELECT", b"3"]
    pushes = [c for c in commands if c[0] == b"RPUSH"]
    assert [len(c) - 2 for c in pushes] == [CHUNK, CHUNK, 300 - 2 * CHUNK]
    assert [int(x) for c in pushes for x in c[2:]] == list(range(300))
    assert [(len(c) - 2) // 2 for c in commands if c[0] == b"HSET"] == [CHUNK, 200 - CHUNK]
    assert commands[-2:] == [[b"SET", b"s", b"v"], [b"PEXPIREAT", b"s", b"500"]]
    assert not any(b"gone" in c for c in commands)
    assert dump(Keyspace(), 0) == b""


def test_snapshot_load_keeps_keys_that_expire_while_loading():
    ks = Keyspace()
    ks.execute([b"RPUSH", b"l", *[b"x"] * 300], now_ms=0)
    ks.execute([b"PEXPIRE", b"l", b"1000"], now_ms=0)
    copy = Keyspace()
    load(copy, dump(ks, 0), now_ms=5_000)     # the key's time passes during the transfer
    assert len(copy.dbs[0].data[b"l"]) == 300 and copy.dbs[0].expires[b"l"] == 1_000


def test_snapshot_load_rejects_bad_input():
    data = encode_command([b"SET", b"a", b"1"]) + b"*2\r\n$3\r\nDEL"
    with pytest.raises(ValueError):
        load(Keyspace(), data, 0)
    with pytest.raises(ValueError):
        load(Keyspace(), encode_command([b"SELECT", b"99"]), 0)
    with pytest.raises(ValueError):
        load(Keyspace(), encode_command([b"NOSUCH"]), 0)
