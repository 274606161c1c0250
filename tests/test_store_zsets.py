"""Sorted sets in the pure keyspace: the value type, the commands, their effects.

Replies are checked as the handlers return them (scores as ``Double``); what redis-server
answers for the same commands is checked in ``test_differential_zsets.py``. Here are the
parts a Redis 7.0 server cannot judge (Valkey 7.2's ZRANK WITHSCORE, Valkey's shortest
score spelling), the propagated forms, the keyspace events and the ZSet invariants.
"""

from __future__ import annotations

import random

import pytest

from workbench.resp import NULL_ARRAY, Double, encode
from workbench.store import Keyspace, lookup
from workbench.store.cmd_zsets import parse_score, scored
from workbench.store.snapshot import dump, dump_commands, load
from workbench.store.zset import LEX_MAX, LEX_MIN, ZSet, score_text

from keyspace_helpers import outcome as reply, run


@pytest.fixture
def ks():
    k = Keyspace()
    run(k, "ZADD", "z", 1, "a", 2, "b", 3, "c", 4, "d", 5, "e")
    return k


# -- the value type ------------------------------------------------------------------------
def test_zset_orders_by_score_then_member_bytes():
    z = ZSet([(b"b", 1.0), (b"a", 1.0), (b"c", 0.5), (b"\xff", 1.0), (b"", 1.0)])
    assert list(z.items()) == [(b"c", 0.5), (b"", 1.0), (b"a", 1.0), (b"b", 1.0),
                               (b"\xff", 1.0)]
    assert [z.rank(m) for m in (b"c", b"", b"a", b"b", b"\xff")] == [0, 1, 2, 3, 4]
    assert z.rank(b"nope") is None and z.score(b"nope") is None


def test_zset_add_moves_and_remove_keeps_both_views_in_step():
    rng = random.Random(7)
    z, model = ZSet(), {}
    for _ in range(3_000):
        member = b"m%d" % rng.randrange(60)
        if rng.random() < 0.6:
            score = float(rng.randrange(-5, 5)) / rng.choice([1, 2, 4])
            z.add(member, score)
            model[member] = score
        else:
            assert z.remove(member) == (model.pop(member, None) is not None)
        assert len(z) == len(model)
    expected = sorted(((s, m) for m, s in model.items()))
    assert list(z.items()) == [(m, s) for s, m in expected]
    assert [z.rank(m) for _, m in expected] == list(range(len(expected)))


def test_zset_copy_shares_nothing():
    z = ZSet([(b"a", 1.0)])
    copy = ZSet(z)
    copy.add(b"b", 2.0)
    z.remove(b"a")
    assert list(copy.items()) == [(b"a", 1.0), (b"b", 2.0)] and len(z) == 0


def test_zset_spans():
    z = ZSet([(b"a", 1.0), (b"b", 2.0), (b"c", 2.0), (b"d", 3.0)])
    assert z.score_span(2.0, False, 2.0, False) == (1, 3)
    assert z.score_span(2.0, True, 3.0, False) == (3, 4)
    assert z.score_span(float("-inf"), False, float("inf"), False) == (0, 4)
    assert z.score_span(3.0, False, 1.0, False) == (3, 3)
    same = ZSet([(m, 0.0) for m in (b"a", b"b", b"c", b"d")])
    assert same.lex_span(b"b", False, b"c", False) == (1, 3)
    assert same.lex_span(b"b", True, LEX_MAX, True) == (2, 4)
    assert same.lex_span(LEX_MIN, True, b"c", True) == (0, 2)
    assert same.lex_span(b"c", False, b"b", False) == (0, 0)


def test_score_text_is_exact_and_short():
    for value in (0.1, 1 / 3, 1e300, -2.5e-300, 5e-324, 2.0**62 + 2048, 1e17, 123.0):
        assert float(score_text(value)) == value
    assert score_text(3.0) == b"3" and score_text(-0.0) == b"-0" and score_text(0.0) == b"0"
    assert score_text(0.1) == b"0.1" and score_text(1e17) == b"100000000000000000"
    assert score_text(float("inf")) == b"inf" and score_text(float("-inf")) == b"-inf"
    assert score_text(2.0**63) == b"9.223372036854776e+18"


def test_parse_score_is_strtod_on_the_whole_argument():
    assert parse_score(b"1.5") == 1.5 and parse_score(b"-inf") == float("-inf")
    assert parse_score(b"+Infinity") == float("inf") and parse_score(b"0x10") == 16.0
    assert parse_score(b".5") == 0.5 and parse_score(b"5.") == 5.0 and parse_score(b"1e3") == 1e3
    for bad in (b"", b" 1", b"1 ", b"nan", b"1e400", b"1e-400", b"1_0", b"x", b"1e", b"--1"):
        assert parse_score(bad) is None, bad


# -- commands not judged by redis-server 7.0 --------------------------------------------------
def test_zrank_withscore_is_valkey_7_2(ks):
    assert reply(ks, "ZRANK", "z", "c", "WITHSCORE") == [2, 3.0]
    assert reply(ks, "ZREVRANK", "z", "c", "withscore") == [2, 3.0]
    assert reply(ks, "ZRANK", "z", "nope", "WITHSCORE") is NULL_ARRAY
    assert reply(ks, "ZRANK", "nokey", "a", "WITHSCORE") is NULL_ARRAY
    assert reply(ks, "ZRANK", "nokey", "a") is None
    assert reply(ks, "ZRANK", "z", "c", "FOO") == ("error", "ERR syntax error")
    assert reply(ks, "ZRANK", "z", "c", "WITHSCORE", "x") == (
        "error", "ERR wrong number of arguments for 'zrank' command")


def test_scores_reply_as_doubles_in_valkeys_spelling():
    ks = Keyspace()
    assert reply(ks, "ZADD", "z", "INCR", "0.1", "m") == 0.1
    assert isinstance(reply(ks, "ZSCORE", "z", "m"), Double)
    assert encode(reply(ks, "ZSCORE", "z", "m"), 2) == b"$3\r\n0.1\r\n"
    assert encode(reply(ks, "ZINCRBY", "z", "0.2", "m"), 3) == b",0.30000000000000004\r\n"


def test_withscores_reply_shape():
    pairs = [(b"a", 1.0), (b"b", 2.5)]
    assert scored(pairs, False) == [b"a", b"b"]
    flat = b"*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$3\r\n2.5\r\n"
    assert encode(scored(pairs), 2) == flat
    assert encode(scored(pairs), 3) == b"*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"


def test_zrandmember_is_seeded_by_key_and_time(ks):
    first = run(ks, "ZRANDMEMBER", "z", "-20", now=5).reply
    assert first == run(ks, "ZRANDMEMBER", "z", "-20", now=5).reply
    distinct = run(ks, "ZRANDMEMBER", "z", "3", now=5).reply
    assert len(set(distinct)) == 3 and set(distinct) <= {b"a", b"b", b"c", b"d", b"e"}
    assert run(ks, "ZRANDMEMBER", "z", "3").propagate == []


# -- effects: propagation and events -----------------------------------------------------------
def test_writes_propagate_as_themselves(ks):
    for words in (["ZADD", "z", "INCR", "1", "a"], ["ZINCRBY", "z", "2", "b"],
                  ["ZPOPMIN", "z", "2"], ["ZREMRANGEBYSCORE", "z", "4", "4"],
                  ["ZRANGESTORE", "d", "z", "0", "-1"]):
        argv = [w.encode() for w in words]
        assert ks.execute(argv, now_ms=0).propagate == [argv]


def test_nothing_changed_propagates_nothing(ks):
    for words in (["ZADD", "z", "NX", "9", "a"], ["ZADD", "z", "1", "a"],
                  ["ZADD", "z", "GT", "0", "a"], ["ZREM", "z", "nope"],
                  ["ZPOPMIN", "nokey"], ["ZPOPMIN", "z", "0"], ["ZADD", "nokey", "XX", "1", "a"],
                  ["ZREMRANGEBYRANK", "z", "10", "20"], ["ZINCRBY", "z", "0", "a"]):
        out = ks.execute([w.encode() for w in words], now_ms=0)
        assert out.propagate == [] and out.events == [], words


def test_zmpop_propagates_as_the_pop_it_amounted_to(ks):
    out = run(ks, "ZMPOP", "2", "nokey", "z", "MAX", "COUNT", "10")
    assert out.reply == [b"z", [[b"e", 5.0], [b"d", 4.0], [b"c", 3.0], [b"b", 2.0], [b"a", 1.0]]]
    assert out.propagate == [[b"ZPOPMAX", b"z", b"5"]]
    assert [e[1] for e in out.events] == ["zpopmax", "del"]


def test_events(ks):
    def events(*words):
        return [(c, name) for c, name, _, _ in run(ks, *words).events]
    assert events("ZADD", "z", "9", "new") == [("z", "zadd")]
    assert events("ZADD", "z", "INCR", "1", "new") == [("z", "zincr")]
    assert events("ZINCRBY", "z", "1", "new") == [("z", "zincr")]
    assert events("ZREM", "z", "new") == [("z", "zrem")]
    assert events("ZREMRANGEBYRANK", "z", "0", "0") == [("z", "zremrangebyrank")]
    assert events("ZREMRANGEBYSCORE", "z", "2", "2") == [("z", "zremrangebyscore")]
    assert events("ZRANGESTORE", "d", "z", "0", "-1") == [("z", "zrangestore")]
    assert events("ZUNIONSTORE", "u", "1", "z") == [("z", "zunionstore")]
    assert events("ZINTERSTORE", "u", "1", "z") == [("z", "zinterstore")]
    assert events("ZDIFFSTORE", "u", "2", "z", "z") == [("g", "del")]
    assert events("ZPOPMIN", "z") == [("z", "zpopmin")]
    assert events("ZREMRANGEBYLEX", "z", "-", "+") == [("z", "zremrangebylex"), ("g", "del")]


def test_commands_are_registered_as_valkey_has_them():
    expect = {  # name: (arity, first, last, step)
        "zadd": (-4, 1, 1, 1), "zincrby": (4, 1, 1, 1), "zrangestore": (-5, 1, 2, 1),
        "zunion": (-3, 0, 0, 0), "zunionstore": (-4, 1, 1, 1), "zmpop": (-4, 0, 0, 0),
        "zintercard": (-3, 0, 0, 0), "zscan": (-3, 1, 1, 1), "zrank": (-3, 1, 1, 1),
    }
    for name, (arity, first, last, step) in expect.items():
        spec = lookup(name.encode())
        assert (spec.arity, spec.first_key, spec.last_key, spec.step) == (arity, first, last, step)
    keys = lookup(b"zunionstore").keys
    argv = [b"ZUNIONSTORE", b"d", b"2", b"a", b"b", b"WEIGHTS", b"1", b"2"]
    assert keys(argv) == [b"d", b"a", b"b"]
    assert lookup(b"zinter").keys([b"ZINTER", b"2", b"a", b"b", b"WITHSCORES"]) == [b"a", b"b"]
    assert lookup(b"zmpop").keys([b"ZMPOP", b"1", b"k", b"MIN"]) == [b"k"]
    assert lookup(b"zmpop").keys([b"ZMPOP", b"x", b"k", b"MIN"]) == []
    assert "movablekeys" in lookup(b"zdiff").flags and lookup(b"zdiffstore").is_write


def test_type_copy_rename_and_scan_type(ks):
    assert reply(ks, "TYPE", "z").text == "zset"
    assert reply(ks, "COPY", "z", "z2") == 1
    run(ks, "ZADD", "z2", "9", "only-in-copy")
    assert reply(ks, "ZCARD", "z") == 5 and reply(ks, "ZCARD", "z2") == 6
    assert reply(ks, "RENAME", "z2", "z3") is not None and reply(ks, "ZCARD", "z3") == 6
    run(ks, "SET", "s", "v")
    assert sorted(reply(ks, "SCAN", "0", "TYPE", "zset", "COUNT", "100")[1]) == [b"z", b"z3"]


# -- snapshots ---------------------------------------------------------------------------------
def test_snapshot_writes_exact_scores_in_chunks():
    ks = Keyspace()
    members = [x for i in range(300) for x in (score_text(i / 7), b"m%d" % i)]
    run(ks, "ZADD", "z", *members)
    run(ks, "ZADD", "odd", "inf", "top", "-inf", "bottom", "-0", "negzero", "0.1", "tenth")
    commands = list(dump_commands(ks, 0))
    assert [len(c) for c in commands if c[1] == b"z"] == [2 + 256, 2 + 256, 2 + 2 * 44]
    copy = Keyspace()
    load(copy, dump(ks, 0), 0)
    assert copy.dbs[0].data == ks.dbs[0].data
    assert list(copy.dbs[0].data[b"z"].items()) == list(ks.dbs[0].data[b"z"].items())
    assert str(copy.dbs[0].data[b"odd"].score(b"negzero")) == "-0.0"
