"""Hash, list and set commands."""

from collections import deque

import pytest

from workbench.resp import NULL_ARRAY, OK, Map, ReplyError, SetReply, encode
from keyspace_helpers import argv, error, reply, run  # noqa: F401

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "ERR value is not an integer or out of range"


# -- hashes --------------------------------------------------------------------------------
def test_hset_hget_hgetall(ks):
    out = run(ks, "HSET", "h", "a", "1", "b", "2")
    assert out.reply == 2 and out.events == [("h", "hset", 0, b"h")]
    assert reply(ks, "HSET", "h", "a", "9", "c", "3") == 1
    assert reply(ks, "HGET", "h", "a") == b"9"
    assert reply(ks, "HGET", "h", "zz") is None
    assert reply(ks, "HGET", "nokey", "a") is None
    everything = reply(ks, "HGETALL", "h")
    assert type(everything) is Map and everything == {b"a": b"9", b"b": b"2", b"c": b"3"}
    assert encode(reply(ks, "HGETALL", "nokey"), 3) == b"%0\r\n"
    assert reply(ks, "HMSET", "h", "d", "4") is OK
    assert reply(ks, "HLEN", "h") == 4
    assert reply(ks, "HKEYS", "h") == [b"a", b"b", b"c", b"d"]
    assert reply(ks, "HVALS", "h") == [b"9", b"2", b"3", b"4"]
    assert reply(ks, "HMGET", "h", "a", "zz", "d") == [b"9", None, b"4"]
    assert reply(ks, "HMGET", "nokey", "a") == [None]
    assert (reply(ks, "HEXISTS", "h", "a"), reply(ks, "HEXISTS", "h", "zz")) == (1, 0)
    assert reply(ks, "HSTRLEN", "h", "a") == 1
    assert error(ks, "HSET", "h", "a", "1", "b") == \
        "ERR wrong number of arguments for 'hset' command"
    assert error(ks, "HMSET", "h", "a") == "ERR wrong number of arguments for 'hmset' command"


def test_hsetnx(ks):
    assert reply(ks, "HSETNX", "h", "f", "1") == 1
    out = run(ks, "HSETNX", "h", "f", "2")
    assert out.reply == 0 and out.propagate == []
    assert reply(ks, "HGET", "h", "f") == b"1"


def test_hdel_removes_empty_hash(ks):
    run(ks, "HSET", "h", "a", "1", "b", "2")
    assert run(ks, "HDEL", "h", "zz").propagate == []
    out = run(ks, "HDEL", "h", "a", "b", "zz")
    assert out.reply == 2
    assert out.events == [("h", "hdel", 0, b"h"), ("g", "del", 0, b"h")]
    assert reply(ks, "EXISTS", "h") == 0
    assert reply(ks, "HDEL", "h", "a") == 0


def test_hincrby(ks):
    assert reply(ks, "HINCRBY", "h", "n", "5") == 5
    out = run(ks, "HINCRBY", "h", "n", "-7")
    assert out.reply == -2 and out.events == [("h", "hincrby", 0, b"h")]
    run(ks, "HSET", "h", "s", "abc", "big", str(2**63 - 1))
    assert error(ks, "HINCRBY", "h", "s", "1") == "ERR hash value is not an integer"
    assert error(ks, "HINCRBY", "h", "n", "x") == NOT_INTEGER
    assert error(ks, "HINCRBY", "h", "big", "1") == "ERR increment or decrement would overflow"
    assert error(ks, "HINCRBY", "fresh", "n", "x") == NOT_INTEGER
    assert reply(ks, "EXISTS", "fresh") == 0


def test_hincrbyfloat_propagates_hset(ks):
    run(ks, "HSET", "h", "f", "10.5")
    out = run(ks, "HINCRBYFLOAT", "h", "f", "0.1")
    assert out.reply == b"10.6" and out.propagate == [argv("HSET", "h", "f", "10.6")]
    run(ks, "HSET", "h", "s", "abc")
    assert error(ks, "HINCRBYFLOAT", "h", "s", "1") == "ERR hash value is not a float"
    assert error(ks, "HINCRBYFLOAT", "h", "f", "x") == "ERR value is not a valid float"


# -- lists ---------------------------------------------------------------------------------
def test_push_and_range(ks):
    out = run(ks, "RPUSH", "l", "a", "b")
    assert out.reply == 2 and out.events == [("l", "rpush", 0, b"l")]
    assert reply(ks, "LPUSH", "l", "x", "y") == 4      # y goes in front of x
    assert type(ks.dbs[0].data[b"l"]) is deque
    assert reply(ks, "LRANGE", "l", "0", "-1") == [b"y", b"x", b"a", b"b"]
    assert reply(ks, "LRANGE", "l", "1", "2") == [b"x", b"a"]
    assert reply(ks, "LRANGE", "l", "-2", "100") == [b"a", b"b"]
    assert reply(ks, "LRANGE", "l", "-100", "0") == [b"y"]
    assert reply(ks, "LRANGE", "l", "3", "1") == []
    assert reply(ks, "LRANGE", "l", "10", "20") == []
    assert reply(ks, "LRANGE", "nokey", "0", "-1") == []
    assert error(ks, "LRANGE", "l", "a", "1") == NOT_INTEGER
    assert reply(ks, "LLEN", "l") == 4 and reply(ks, "LLEN", "nokey") == 0
    assert (reply(ks, "LINDEX", "l", "0"), reply(ks, "LINDEX", "l", "-1")) == (b"y", b"b")
    assert reply(ks, "LINDEX", "l", "4") is None
    assert reply(ks, "LINDEX", "nokey", "x") is None
    assert error(ks, "LINDEX", "l", "x") == NOT_INTEGER


def test_pushx(ks):
    out = run(ks, "LPUSHX", "l", "a")
    assert out.reply == 0 and out.propagate == [] and reply(ks, "EXISTS", "l") == 0
    run(ks, "RPUSH", "l", "a")
    assert reply(ks, "RPUSHX", "l", "b") == 2
    assert reply(ks, "LPUSHX", "l", "c") == 3


def test_pop_single_and_count(ks):
    run(ks, "RPUSH", "l", "a", "b", "c", "d")
    out = run(ks, "LPOP", "l")
    assert out.reply == b"a" and out.events == [("l", "lpop", 0, b"l")]
    assert out.propagate == [argv("LPOP", "l")]
    assert reply(ks, "RPOP", "l") == b"d"
    assert reply(ks, "LPOP", "l", "0") == []
    out = run(ks, "RPOP", "l", "5")
    assert out.reply == [b"c", b"b"]
    assert out.events == [("l", "rpop", 0, b"l"), ("g", "del", 0, b"l")]
    assert reply(ks, "EXISTS", "l") == 0
    assert reply(ks, "LPOP", "l") is None
    assert reply(ks, "LPOP", "l", "2") is NULL_ARRAY
    assert encode(reply(ks, "LPOP", "l", "2"), 2) == b"*-1\r\n"


def test_pop_errors(ks):
    run(ks, "RPUSH", "l", "a")
    assert error(ks, "LPOP", "l", "-1") == "ERR value is out of range, must be positive"
    assert error(ks, "RPOP", "l", "x") == NOT_INTEGER
    assert error(ks, "LPOP", "l", "1", "2") == "ERR wrong number of arguments for 'lpop' command"
    assert error(ks, "LPOP", "nokey", "-1") == "ERR value is out of range, must be positive"


# -- sets ----------------------------------------------------------------------------------
def test_sadd_srem_members(ks):
    out = run(ks, "SADD", "s", "a", "b", "a")
    assert out.reply == 2 and out.events == [("s", "sadd", 0, b"s")]
    out = run(ks, "SADD", "s", "a")
    assert out.reply == 0 and out.propagate == []
    members = reply(ks, "SMEMBERS", "s")
    assert type(members) is SetReply and sorted(members) == [b"a", b"b"]
    assert encode(reply(ks, "SMEMBERS", "nokey"), 3) == b"~0\r\n"
    assert (reply(ks, "SISMEMBER", "s", "a"), reply(ks, "SISMEMBER", "s", "z")) == (1, 0)
    assert reply(ks, "SMISMEMBER", "s", "a", "z") == [1, 0]
    assert reply(ks, "SCARD", "s") == 2 and reply(ks, "SCARD", "nokey") == 0
    assert run(ks, "SREM", "s", "z").propagate == []
    out = run(ks, "SREM", "s", "a", "b", "z")
    assert out.reply == 2
    assert out.events == [("s", "srem", 0, b"s"), ("g", "del", 0, b"s")]
    assert reply(ks, "EXISTS", "s") == 0


def test_spop_propagates_as_srem(ks):
    run(ks, "SADD", "s", "a", "b", "c", "d")
    out = run(ks, "SPOP", "s")
    assert out.reply in (b"a", b"b", b"c", b"d")
    assert out.propagate == [[b"SREM", b"s", out.reply]]
    assert out.events == [("s", "spop", 0, b"s")]
    out = run(ks, "SPOP", "s", "2")
    assert type(out.reply) is SetReply and len(out.reply) == 2
    assert out.propagate == [[b"SREM", b"s", *out.reply]]
    left = set(ks.dbs[0].data[b"s"])
    out = run(ks, "SPOP", "s", "10")        # the whole set: propagated as DEL
    assert set(out.reply) == left and out.propagate == [argv("DEL", "s")]
    assert out.events == [("s", "spop", 0, b"s"), ("g", "del", 0, b"s")]
    assert reply(ks, "SPOP", "s") is None
    assert reply(ks, "SPOP", "s", "3") == []
    assert run(ks, "SPOP", "s", "3").propagate == []


def test_spop_last_member_deletes_key(ks):
    run(ks, "SADD", "s", "only")
    out = run(ks, "SPOP", "s")
    assert out.reply == b"only" and out.propagate == [argv("SREM", "s", "only")]
    assert reply(ks, "EXISTS", "s") == 0


def test_spop_srandmember_errors(ks):
    run(ks, "SADD", "s", "a")
    assert error(ks, "SPOP", "s", "-1") == "ERR value is out of range, must be positive"
    assert error(ks, "SPOP", "s", "x") == NOT_INTEGER
    assert error(ks, "SPOP", "s", "1", "2") == "ERR syntax error"
    assert error(ks, "SRANDMEMBER", "s", "x") == NOT_INTEGER


def test_srandmember(ks):
    run(ks, "SADD", "s", "a", "b", "c")
    assert reply(ks, "SRANDMEMBER", "s") in (b"a", b"b", b"c")
    assert reply(ks, "SRANDMEMBER", "s", now=7) == reply(ks, "SRANDMEMBER", "s", now=7)
    assert sorted(reply(ks, "SRANDMEMBER", "s", "5")) == [b"a", b"b", b"c"]
    assert len(reply(ks, "SRANDMEMBER", "s", "2")) == 2
    assert len(reply(ks, "SRANDMEMBER", "s", "-7")) == 7
    assert reply(ks, "SRANDMEMBER", "nokey") is None
    assert reply(ks, "SRANDMEMBER", "nokey", "3") == []
    assert run(ks, "SRANDMEMBER", "s").propagate == []


# -- types ---------------------------------------------------------------------------------
@pytest.mark.parametrize("setup, commands", [
    (("SET", "k", "v"), [("HGET", "k", "f"), ("HSET", "k", "f", "v"), ("LPUSH", "k", "a"),
                         ("LRANGE", "k", "0", "1"), ("SADD", "k", "m"), ("SMEMBERS", "k"),
                         ("SPOP", "k"), ("LPOP", "k"), ("HGETALL", "k"),
                         ("HINCRBY", "k", "f", "1")]),
    (("RPUSH", "k", "a"), [("GET", "k"), ("APPEND", "k", "x"), ("INCR", "k"), ("HLEN", "k"),
                           ("SCARD", "k"), ("SREM", "k", "a")]),
    (("HSET", "k", "f", "v"), [("GET", "k"), ("LLEN", "k"), ("SISMEMBER", "k", "f"),
                               ("RPUSH", "k", "x"), ("STRLEN", "k")]),
    (("SADD", "k", "m"), [("GET", "k"), ("HDEL", "k", "m"), ("RPOP", "k"),
                          ("INCRBYFLOAT", "k", "1"), ("HKEYS", "k")]),
])
def test_wrongtype(ks, setup, commands):
    run(ks, *setup)
    for cmd in commands:
        out = run(ks, *cmd)
        assert isinstance(out.reply, ReplyError) and out.reply.text == WRONGTYPE, cmd
        assert out.propagate == [], cmd
