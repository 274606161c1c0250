"""Sorted sets side by side with a real redis-server: replies byte for byte, errors word for
word (so argument-check order too), and keyspace events.

Replies are compared as raw RESP bytes, so a score's spelling counts. Redis 7.0 spells
doubles with ``%.17g`` (0.1 -> 0.10000000000000001) where Valkey (7.2+) writes the
shortest exact form (0.1), as the workbench does: the scripts use scores both spell
alike, and ``test_store_zsets.py`` checks Valkey's spelling. ZRANK WITHSCORE (7.2) is
checked there too.
"""

from __future__ import annotations


import pytest

from differential_helpers import (both, keyspace_events, port_of, redis_server,  # noqa: F401
                                  run_side_by_side, wire_replies)

pytestmark = pytest.mark.compat


SCRIPTS = {}
SCRIPTS["scores"] = [
    'ZADD z 1 a 2 b 3 c', 'ZADD z NX XX 1 a', 'ZADD z GT LT 1 a', 'ZADD z GT NX 1 a',
    'ZADD z LT NX 1 a', 'ZADD z INCR 1 a 2 b', 'ZADD z 1', 'ZADD z', 'ZADD z NX', 'ZADD z x a',
    'ZADD z 1 a x b', 'ZADD z NX XX x a', 'ZADD z nan a', 'ZADD z inf a', 'ZADD z INCR -inf a',
    'ZADD z 1 a', 'ZADD z CH 5 a 6 d', 'ZADD z XX CH 7 a 8 e', 'ZADD z GT CH 1 a 9 b',
    'ZADD z LT CH 1 a 9 c', 'ZADD z XX INCR 1 nope', 'ZADD nokey XX 1 a',
    'ZADD nokey XX INCR 1 a', 'EXISTS nokey', 'ZADD z NX INCR 1 a', 'ZADD z GT INCR -1 a',
    'ZADD z GT INCR 1 a', 'ZADD z INCR 0 a', 'ZINCRBY z 2.5 a', 'ZINCRBY z x a',
    'ZINCRBY z 1 new', 'ZINCRBY z nx a', 'ZINCRBY z -inf new', 'ZINCRBY z inf new',
    'ZADD z 1e400 a', 'ZADD z 1e-400 a', 'ZADD z " 1" a', 'ZADD z "1 " a', 'ZADD z 0x10 hex',
    'ZADD z +inf pinf', 'ZADD z -Infinity minf', 'ZADD z 1e308 big', 'ZADD z 1e20 huge',
    'ZSCORE z hex', 'ZRANGE z 0 -1 WITHSCORES', 'ZSCORE z a', 'ZSCORE z nope', 'ZSCORE nokey a',
    'ZMSCORE z a nope b', 'ZMSCORE nokey a b', 'ZCARD z', 'ZCARD nokey', 'ZRANK z a',
    'ZRANK z nope', 'ZREVRANK z a', 'ZRANK nokey a', 'SET str x', 'ZADD str 1 a',
    'ZADD str x a', 'ZINCRBY str 1 a', 'ZRANK str a', 'ZSCORE str a', 'ZMSCORE str a',
    'ZCARD str', 'ZRANGE str 0 1', 'ZCOUNT str 0 1', 'ZCOUNT z -inf +inf', 'ZCOUNT z (1 3',
    'ZCOUNT z 1 (3', 'ZCOUNT z x 3', 'ZCOUNT z ( 3', 'ZCOUNT z "" 3', 'ZCOUNT z " 1" 3',
    'ZCOUNT z "1 " 3', 'ZCOUNT z nan 3', 'ZCOUNT z 1e400 -1e400', 'ZCOUNT z -1e400 1e400',
    'ZCOUNT nokey x 1', 'ZCOUNT str x 1', 'ZREM z a nope', 'ZREM z nope', 'ZREM nokey a',
    'ZREM str a', 'ZADD two 1 a 2 b', 'ZREM two a b c', 'EXISTS two',
]

SCRIPTS["ranges"] = [
    'ZADD z 1 a 2 b 3 c 4 d 5 e 5 f -1.5 neg inf top -inf bottom', 'ZRANGE z 0 -1',
    'ZRANGE z 0 -1 WITHSCORES', 'ZRANGE z 2 4 withscores', 'ZRANGE z -3 -1',
    'ZRANGE z -100 100', 'ZRANGE z 5 2', 'ZRANGE z 100 200', 'ZRANGE z 0 -1 REV',
    'ZRANGE z 1 3 REV WITHSCORES', 'ZRANGE z x 1', 'ZRANGE z 0 1 LIMIT 0 1',
    'ZRANGE z 0 1 LIMIT 0 -1', 'ZRANGE z 0 1 LIMIT', 'ZRANGE z 0 1 LIMIT 1', 'ZRANGE z 0 1 FOO',
    'ZRANGE z 0 1 REV REV', 'ZRANGE z 0 1 BYSCORE BYLEX', 'ZRANGE z (1 5 BYSCORE',
    'ZRANGE z 1 (5 BYSCORE WITHSCORES', 'ZRANGE z -inf +inf BYSCORE LIMIT 2 3',
    'ZRANGE z -inf +inf BYSCORE LIMIT 2 -1', 'ZRANGE z -inf +inf BYSCORE LIMIT -1 2',
    'ZRANGE z -inf +inf BYSCORE LIMIT 100 2', 'ZRANGE z -inf +inf BYSCORE LIMIT 0 0',
    'ZRANGE z 5 1 BYSCORE REV', 'ZRANGE z 5 1 BYSCORE REV LIMIT 1 2 WITHSCORES',
    'ZRANGE z (5 (1 BYSCORE REV', 'ZRANGE z 1 5 BYSCORE REV', 'ZRANGE z x 5 BYSCORE',
    'ZRANGE z [a [c BYLEX', 'ZRANGE z - + BYLEX', 'ZRANGE z - + BYLEX WITHSCORES',
    'ZRANGE z a c BYLEX', 'ZRANGE z 1 5 BYLEX LIMIT x 1', 'ZRANGEBYSCORE z 1 5',
    'ZRANGEBYSCORE z 1 5 WITHSCORES LIMIT 1 2', 'ZRANGEBYSCORE z 1 5 REV',
    'ZRANGEBYSCORE z 1 5 BYSCORE', 'ZREVRANGEBYSCORE z 5 1',
    'ZREVRANGEBYSCORE z 5 1 WITHSCORES LIMIT 1 10', 'ZREVRANGEBYSCORE z +inf -inf',
    'ZREVRANGE z 0 2', 'ZREVRANGE z 0 2 WITHSCORES', 'ZREVRANGE z 0 2 LIMIT 0 1',
    'ZRANGE nokey 0 -1', 'ZRANGE nokey x 1', 'ZRANGEBYSCORE nokey 0 x', 'SET str v',
    'ZRANGE str 0 -1', 'ZRANGE str x -1', 'ZADD l 0 a 0 b 0 c 0 d 0 e 0 ff 0 g',
    'ZRANGEBYLEX l - +', 'ZRANGEBYLEX l [b (e', 'ZRANGEBYLEX l (b [e', 'ZRANGEBYLEX l [b [b',
    'ZRANGEBYLEX l (b (b', 'ZRANGEBYLEX l [e [b', 'ZRANGEBYLEX l [f +', 'ZRANGEBYLEX l [ff +',
    'ZRANGEBYLEX l - [c LIMIT 1 1', 'ZRANGEBYLEX l - + LIMIT 2 -1',
    'ZRANGEBYLEX l - + LIMIT -1 2', 'ZRANGEBYLEX l - + WITHSCORES', 'ZRANGEBYLEX l b c',
    'ZRANGEBYLEX l -- +', 'ZRANGEBYLEX l "" +', 'ZRANGEBYLEX l + -', 'ZRANGEBYLEX l [ +',
    'ZREVRANGEBYLEX l + -', 'ZREVRANGEBYLEX l [e (b', 'ZREVRANGEBYLEX l + - LIMIT 1 2',
    'ZLEXCOUNT l - +', 'ZLEXCOUNT l [b (e', 'ZLEXCOUNT l x +', 'ZLEXCOUNT nokey - +',
    'ZLEXCOUNT str - +', 'ZLEXCOUNT z - +', 'ZRANGEBYLEX z - +', 'ZRANGEBYLEX z [b [e',
    'ZREVRANGEBYLEX z [e [b', 'ZLEXCOUNT z [b [e', 'ZRANGESTORE dst z 0 2',
    'ZRANGE dst 0 -1 WITHSCORES', 'ZRANGESTORE dst z 0 2 WITHSCORES',
    'ZRANGESTORE dst z 5 1 BYSCORE REV LIMIT 0 2', 'ZRANGE dst 0 -1 WITHSCORES',
    'ZRANGESTORE dst l [b [d BYLEX', 'ZRANGE dst 0 -1 WITHSCORES', 'ZRANGESTORE dst z 100 200',
    'EXISTS dst', 'ZRANGESTORE dst nokey 0 -1', 'ZRANGESTORE str z 0 0', 'TYPE str',
    'ZRANGESTORE dst str 0 0', 'ZREMRANGEBYRANK z 0 1', 'ZRANGE z 0 -1',
    'ZREMRANGEBYRANK z x 1', 'ZREMRANGEBYRANK z 10 20', 'ZREMRANGEBYRANK z -2 -1',
    'ZREMRANGEBYSCORE z (1 3', 'ZREMRANGEBYSCORE z x 3', 'ZRANGE z 0 -1 WITHSCORES',
    'ZREMRANGEBYLEX l [b (e', 'ZRANGE l 0 -1', 'ZREMRANGEBYLEX l x (e', 'ZREMRANGEBYLEX l - +',
    'EXISTS l', 'ZREMRANGEBYSCORE nokey 1 2', 'ZREMRANGEBYRANK str 0 1',
    'ZREMRANGEBYSCORE -inf +inf x', 'ZREMRANGEBYSCORE z -inf +inf', 'EXISTS z',
]

SCRIPTS["pops"] = [
    'ZADD z 1 a 2 b 3 c 4 d 5 e', 'SET str v', 'ZPOPMIN z', 'ZPOPMAX z', 'ZPOPMIN z 2',
    'ZPOPMIN z 0', 'ZPOPMIN z -1', 'ZPOPMIN z x', 'ZPOPMIN z 1 2', 'ZPOPMIN nokey',
    'ZPOPMIN nokey 0', 'ZPOPMIN nokey -1', 'ZPOPMIN str', 'ZPOPMIN str 0', 'ZPOPMAX z 10',
    'EXISTS z', 'ZADD z 1 a 2 b 3 c 4 d 5 e', 'ZMPOP 1 z MIN', 'ZMPOP 1 z MAX COUNT 2',
    'ZMPOP 2 nokey z MIN COUNT 10', 'ZMPOP 2 nokey z MIN COUNT 10', 'ZMPOP 0 z MIN',
    'ZMPOP x z MIN', 'ZMPOP -1 z MIN', 'ZMPOP 1 z', 'ZMPOP 1 z FOO', 'ZMPOP 2 z MIN',
    'ZMPOP 1 z MIN COUNT', 'ZMPOP 1 z MIN COUNT 0', 'ZMPOP 1 z MIN COUNT -1',
    'ZMPOP 1 z MIN COUNT x', 'ZMPOP 1 z MIN COUNT 1 COUNT 1', 'ZMPOP 1 z MIN FOO',
    'ZMPOP 2 str z MIN', 'ZMPOP 2 nokey str MIN', 'ZMPOP 1 nokey MAX', 'ZMPOP 5 a b MIN',
    'ZADD z 1 a 2 b 3 c', 'ZRANDMEMBER nokey', 'ZRANDMEMBER nokey 5',
    'ZRANDMEMBER nokey 5 WITHSCORES', 'ZRANDMEMBER str', 'ZRANDMEMBER str 1', 'ZRANDMEMBER z x',
    'ZRANDMEMBER z 1 FOO', 'ZRANDMEMBER z 1 WITHSCORES FOO', 'ZRANDMEMBER z 0',
    'ZRANDMEMBER z 0 WITHSCORES', 'ZRANDMEMBER z 3', 'ZRANDMEMBER z 10 WITHSCORES',
    'ZRANDMEMBER z 9223372036854775807 WITHSCORES',
    'ZRANDMEMBER z -9223372036854775807 WITHSCORES', 'ZRANDMEMBER z -9223372036854775808',
    'ZRANDMEMBER z 4611686018427387904 WITHSCORES', 'ZRANDMEMBER z x WITHSCORES',
    'ZRANDMEMBER x 1 FOO', 'ZADD one 7 only', 'ZRANDMEMBER one',
    'ZRANDMEMBER one -3 WITHSCORES', 'ZRANDMEMBER one 1 WITHSCORES',
]

SCRIPTS["alg"] = [
    'ZADD a 1 x 2 y 3 z', 'ZADD b 10 y 20 z 30 w', 'SADD s y w v', 'SET str q', 'ZUNION 2 a b',
    'ZUNION 2 a b WITHSCORES', 'ZUNION 3 a b s WITHSCORES',
    'ZUNION 2 a b WEIGHTS 2 3 WITHSCORES', 'ZUNION 2 a b WEIGHTS 2 WITHSCORES',
    'ZUNION 2 a b WEIGHTS 2 x WITHSCORES', 'ZUNION 2 a b AGGREGATE MIN WITHSCORES',
    'ZUNION 2 a b AGGREGATE max WITHSCORES', 'ZUNION 2 a b AGGREGATE foo',
    'ZUNION 2 a b AGGREGATE', 'ZUNION 2 a b WITHSCORES WITHSCORES', 'ZUNION 0 a', 'ZUNION -1 a',
    'ZUNION x a', 'ZUNION 3 a b', 'ZUNION 2 a str', 'ZUNION 2 str x', 'ZUNION 2 nokey str',
    'ZUNION 1 nokey', 'ZUNION 2 a b FOO', 'ZINTER 2 a b WITHSCORES',
    'ZINTER 3 a b s WITHSCORES', 'ZINTER 2 a nokey',
    'ZINTER 2 a b WEIGHTS 1 -1 AGGREGATE MIN WITHSCORES', 'ZINTER 2 a a WITHSCORES',
    'ZDIFF 2 a b WITHSCORES', 'ZDIFF 2 b s WITHSCORES', 'ZDIFF 2 s a WITHSCORES',
    'ZDIFF 1 nokey', 'ZDIFF 2 a b WEIGHTS 1 2', 'ZDIFF 2 a b AGGREGATE SUM',
    'ZADD i1 inf m 1 n', 'ZADD i2 -inf m 1 n', 'ZUNION 2 i1 i2 WITHSCORES',
    'ZINTER 2 i1 i2 WITHSCORES', 'ZUNION 2 i1 i2 WEIGHTS 0 1 WITHSCORES',
    'ZINTER 2 i1 i2 WEIGHTS 0 0 AGGREGATE MAX WITHSCORES', 'ZUNIONSTORE d 2 a b',
    'ZRANGE d 0 -1 WITHSCORES', 'ZUNIONSTORE d 2 a b WITHSCORES',
    'ZINTERSTORE d 2 a b WEIGHTS 2 2', 'ZRANGE d 0 -1 WITHSCORES', 'ZINTERSTORE d 2 a nokey',
    'EXISTS d', 'ZDIFFSTORE d 2 b a', 'ZRANGE d 0 -1 WITHSCORES', 'ZDIFFSTORE str 1 a',
    'TYPE str', 'ZUNIONSTORE d 0 a', 'ZUNIONSTORE d 1', 'ZUNIONSTORE a 2 a b',
    'ZRANGE a 0 -1 WITHSCORES', 'ZINTERCARD 2 a b', 'ZINTERCARD 2 a b LIMIT 1',
    'ZINTERCARD 2 a b LIMIT 0', 'ZINTERCARD 2 a b LIMIT -1', 'ZINTERCARD 2 a b LIMIT x',
    'ZINTERCARD 0 a', 'ZINTERCARD 3 a b', 'ZINTERCARD 2 a b WITHSCORES',
    'ZINTERCARD 2 a b WEIGHTS 1 1', 'ZINTERCARD 3 a b s', 'ZINTERCARD 2 a str',
    'ZINTERCARD 1 nokey', 'ZADD big 1 m1 2 m2 3 m3 4 m4', 'ZSCAN big 0',
    'ZSCAN big 0 MATCH m[12] COUNT 100', 'ZSCAN big x', 'ZSCAN nokey 0', 'ZSCAN str 0',
    'ZSCAN big 0 COUNT 0',
]

def assert_same_wire(ours, theirs, script, proto):
    mine = wire_replies(port_of(ours), ["FLUSHALL"] + script, proto)
    real = wire_replies(port_of(theirs), ["FLUSHALL"] + script, proto)
    for command, a, b in zip(["FLUSHALL"] + script, mine, real):
        assert a == b, command


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_replies_and_errors_resp2(both, name):
    assert_same_wire(*both, SCRIPTS[name], 2)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_replies_and_errors_resp3(both, name):
    assert_same_wire(*both, SCRIPTS[name], 3)


EVENTS = [
    "ZADD z 1 a 2 b 3 c 4 d 5 e", "ZADD z 1 a", "ZADD z NX 9 a", "ZADD z XX 9 nope",
    "ZADD z CH 7 a", "ZADD z INCR 1 a", "ZINCRBY z 1 b", "ZADD z INCR inf a",
    "ZADD z INCR -inf a", "ZREM z nope", "ZREM z a", "ZREMRANGEBYRANK z 0 0",
    "ZREMRANGEBYSCORE z 3 3", "ZREMRANGEBYSCORE z 100 200", "ZADD l 0 a 0 b 0 c",
    "ZREMRANGEBYLEX l [a [b", "ZREMRANGEBYLEX l - +", "ZPOPMIN z", "ZPOPMAX z 0",
    "ZPOPMAX z 5", "ZADD z 1 a 2 b 3 c", "ZRANGESTORE d z 0 1", "ZRANGESTORE d z 5 6",
    "ZRANGESTORE d nokey 0 1", "ZUNIONSTORE u 1 z", "ZINTERSTORE u 2 z nokey",
    "ZDIFFSTORE u 1 z", "ZDIFFSTORE u 2 z z", "SET str v", "ZUNIONSTORE str 1 z",
    "ZMPOP 2 nokey z MIN COUNT 2", "ZMPOP 1 z MAX", "ZMPOP 1 z MAX", "ZREM u a b c",
    "ZADD e 1 a", "PEXPIREAT e 1", "ZADD e 1 a", "ZRANGESTORE e z 0 -1",
]


def test_keyspace_events(both):
    ours, theirs = both
    assert keyspace_events(ours, EVENTS) == keyspace_events(theirs, EVENTS)


# redis-py 8 speaks RESP3 by default: its WITHSCORES parsing needs the nested pairs.
def test_redis_py_sorted_set_api(both):
    """What an application's client calls, through redis-py's own reply parsing."""
    for client in both:
        client.zadd("board", {"ann": 10, "bob": 7.5, "cid": 12, "dee": 7.5})
        client.zadd("other", {"bob": 1, "eve": 2})
    results = []
    for client in both:
        results.append([
            client.zrange("board", 0, -1, withscores=True),
            client.zrange("board", 0, 1, desc=True, withscores=True),
            client.zrangebyscore("board", 7, 11, start=1, num=2, withscores=True),
            client.zrevrangebyscore("board", "+inf", "(7.5"),
            client.zrank("board", "ann"), client.zrevrank("board", "ann"),
            client.zscore("board", "bob"), client.zmscore("board", ["ann", "nope"]),
            client.zincrby("board", 2.5, "bob"), client.zcount("board", "-inf", 10),
            client.zunionstore("sum", {"board": 2, "other": 10}, aggregate="MAX"),
            client.zrange("sum", 0, -1, withscores=True),
            client.zinter(["board", "other"], withscores=True),
            client.zdiff(["board", "other"], withscores=True),
            client.zpopmin("board"), client.zpopmax("board", 2),
            client.zmpop(2, ["nope", "sum"], min=True, count=2),
            client.zrangestore("copy", "sum", 0, -1), client.zcard("copy"),
            client.zscan("copy", 0), client.type("copy"),
        ])
    assert results[0] == results[1]
    run_side_by_side(*both, ["ZRANGE copy 0 -1 WITHSCORES", "ZINTERCARD 2 copy sum LIMIT 1"])
