"""String commands, driven through Keyspace.execute: exact replies and propagated forms."""

from workbench.resp import OK
from keyspace_helpers import argv, error, reply, run  # noqa: F401

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "ERR value is not an integer or out of range"


def test_get_set_and_propagation(ks):
    out = run(ks, "SET", "k", "v")
    assert out.reply is OK and out.propagate == [argv("SET", "k", "v")]
    assert out.events == [("$", "set", 0, b"k")]
    assert reply(ks, "GET", "k") == b"v"
    assert reply(ks, "GET", "missing") is None
    assert run(ks, "GET", "k").propagate == []


def test_set_options(ks):
    assert reply(ks, "SET", "k", "1", "NX") is OK
    assert reply(ks, "SET", "k", "2", "NX") is None
    assert reply(ks, "SET", "k", "3", "XX", "GET") == b"1"
    assert reply(ks, "SET", "nope", "3", "XX") is None
    assert error(ks, "SET", "k", "v", "NX", "XX") == "ERR syntax error"
    assert error(ks, "SET", "k", "v", "EX", "0") == "ERR invalid expire time in 'set' command"
    assert error(ks, "SET", "k", "v", "EX", "x") == NOT_INTEGER
    out = run(ks, "SET", "k", "v", "EX", "10", now=5_000)
    assert out.propagate == [argv("SET", "k", "v", "PXAT", 15_000)]
    assert reply(ks, "PTTL", "k", now=6_000) == 9_000


def test_set_keepttl_and_get_rewrite(ks):
    run(ks, "SET", "k", "v", "PX", "100")
    out = run(ks, "SET", "k", "w", "KEEPTTL", "GET")
    assert out.reply == b"v"
    assert out.propagate == [argv("SET", "k", "w", "KEEPTTL")]
    assert ks.dbs[0].expires[b"k"] == 1_100


def test_setex_psetex(ks):
    out = run(ks, "SETEX", "k", "2", "v", now=1_000)
    assert out.propagate == [argv("SET", "k", "v", "PXAT", 3_000)]
    assert run(ks, "PSETEX", "p", "5", "v", now=1_000).propagate == [
        argv("SET", "p", "v", "PXAT", 1_005)]
    assert error(ks, "SETEX", "k", "0", "v") == "ERR invalid expire time in 'setex' command"


def test_setnx_getset_getdel(ks):
    assert reply(ks, "SETNX", "k", "a") == 1
    out = run(ks, "SETNX", "k", "b")
    assert out.reply == 0 and out.propagate == []
    run(ks, "PEXPIRE", "k", "500")
    out = run(ks, "GETSET", "k", "c")
    assert out.reply == b"a" and out.propagate == [argv("SET", "k", "c")]
    assert b"k" not in ks.dbs[0].expires
    out = run(ks, "GETDEL", "k")
    assert out.reply == b"c" and out.propagate == [argv("DEL", "k")]
    assert run(ks, "GETDEL", "k").propagate == []


def test_mget_mset(ks):
    assert reply(ks, "MSET", "a", "1", "b", "2") is OK
    run(ks, "RPUSH", "l", "x")
    assert reply(ks, "MGET", "a", "l", "zz", "b") == [b"1", None, None, b"2"]
    assert error(ks, "MSET", "a", "1", "b") == "ERR wrong number of arguments for 'mset' command"
    assert reply(ks, "MSETNX", "c", "3", "a", "9") == 0
    assert reply(ks, "MGET", "c", "a") == [None, b"1"]
    assert reply(ks, "MSETNX", "c", "3", "d", "4") == 1


def test_incr_family(ks):
    assert reply(ks, "INCR", "n") == 1
    assert reply(ks, "INCRBY", "n", "41") == 42
    assert reply(ks, "DECR", "n") == 41
    assert reply(ks, "DECRBY", "n", "-9") == 50
    assert reply(ks, "GET", "n") == b"50"
    out = run(ks, "INCRBY", "n", "5")
    assert out.propagate == [argv("INCRBY", "n", "5")]
    assert out.events == [("$", "incrby", 0, b"n")]


def test_incr_keeps_ttl(ks):
    run(ks, "SET", "n", "1", "PX", "1000")
    run(ks, "INCR", "n")
    assert ks.dbs[0].expires[b"n"] == 2_000


def test_incr_errors(ks):
    run(ks, "SET", "s", "abc")
    assert error(ks, "INCR", "s") == NOT_INTEGER
    run(ks, "SET", "s", " 1")
    assert error(ks, "INCR", "s") == NOT_INTEGER
    assert error(ks, "INCRBY", "n", "1.5") == NOT_INTEGER
    assert error(ks, "INCRBY", "n", "99999999999999999999") == NOT_INTEGER
    run(ks, "SET", "big", str(2**63 - 1))
    assert error(ks, "INCR", "big") == "ERR increment or decrement would overflow"
    run(ks, "SET", "small", str(-2**63))
    assert error(ks, "DECR", "small") == "ERR increment or decrement would overflow"
    assert error(ks, "DECRBY", "n", str(-2**63)) == "ERR decrement would overflow"
    run(ks, "RPUSH", "l", "x")
    assert error(ks, "INCR", "l") == WRONGTYPE
    assert run(ks, "INCR", "s").propagate == []


def test_incrbyfloat(ks):
    run(ks, "SET", "f", "10.50")
    assert reply(ks, "INCRBYFLOAT", "f", "0.1") == b"10.6"
    assert reply(ks, "INCRBYFLOAT", "f", "-5") == b"5.6"
    run(ks, "SET", "e", "5.0e3")
    assert reply(ks, "INCRBYFLOAT", "e", "2.0e2") == b"5200"
    run(ks, "SET", "z", "0.1")
    assert reply(ks, "INCRBYFLOAT", "z", "0.2") == b"0.3"
    assert reply(ks, "INCRBYFLOAT", "new", "-0.0") == b"0"
    assert reply(ks, "INCRBYFLOAT", "i", "3") == b"3"


def test_incrbyfloat_propagates_set_keepttl(ks):
    run(ks, "SET", "f", "1", "PX", "5000")
    out = run(ks, "INCRBYFLOAT", "f", "1.5")
    assert out.propagate == [argv("SET", "f", "2.5", "KEEPTTL")]
    assert ks.dbs[0].expires[b"f"] == 6_000
    assert out.events == [("$", "incrbyfloat", 0, b"f")]


def test_incrbyfloat_errors(ks):
    run(ks, "SET", "s", "abc")
    assert error(ks, "INCRBYFLOAT", "s", "1") == "ERR value is not a valid float"
    assert error(ks, "INCRBYFLOAT", "f", "nan") == "ERR value is not a valid float"
    assert error(ks, "INCRBYFLOAT", "f", " 1") == "ERR value is not a valid float"
    assert error(ks, "INCRBYFLOAT", "f", "1_0") == "ERR value is not a valid float"
    assert error(ks, "INCRBYFLOAT", "f", "inf") == "ERR increment would produce NaN or Infinity"
    run(ks, "SADD", "set", "x")
    assert error(ks, "INCRBYFLOAT", "set", "1") == WRONGTYPE


def test_append_strlen(ks):
    assert reply(ks, "APPEND", "k", "Hello") == 5
    out = run(ks, "APPEND", "k", " World")
    assert out.reply == 11 and out.events == [("$", "append", 0, b"k")]
    assert reply(ks, "GET", "k") == b"Hello World"
    assert reply(ks, "STRLEN", "k") == 11
    assert reply(ks, "STRLEN", "nope") == 0
    run(ks, "HSET", "h", "f", "v")
    assert error(ks, "APPEND", "h", "x") == WRONGTYPE
    assert error(ks, "STRLEN", "h") == WRONGTYPE


def test_wrongtype_for_strings(ks):
    run(ks, "SADD", "s", "m")
    assert error(ks, "GET", "s") == WRONGTYPE
    assert error(ks, "GETSET", "s", "v") == WRONGTYPE
    assert error(ks, "SET", "s", "v", "GET") == WRONGTYPE
    assert reply(ks, "SET", "s", "v") is OK      # plain SET replaces any type


def test_arity_errors(ks):
    assert error(ks, "GET") == "ERR wrong number of arguments for 'get' command"
    assert error(ks, "GET", "a", "b") == "ERR wrong number of arguments for 'get' command"
    assert error(ks, "set", "a") == "ERR wrong number of arguments for 'set' command"
    assert error(ks, "INCRBY", "a") == "ERR wrong number of arguments for 'incrby' command"
    out = run(ks, "NOSUCH", "a", "b")
    assert out.reply.text == "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' "


def test_lazy_expiry_deletes_and_propagates_del(ks):
    run(ks, "SET", "k", "v", "PX", "100", now=1_000)
    assert reply(ks, "GET", "k", now=1_099) == b"v"
    out = run(ks, "GET", "k", now=1_100)
    assert out.reply is None
    assert out.propagate == [argv("DEL", "k")]
    assert out.events == [("x", "expired", 0, b"k")]
    assert b"k" not in ks.dbs[0].data and b"k" not in ks.dbs[0].expires


def test_write_on_expired_key_propagates_del_first(ks):
    run(ks, "SET", "n", "5", "PX", "10", now=1_000)
    out = run(ks, "INCR", "n", now=2_000)
    assert out.reply == 1
    assert out.propagate == [argv("DEL", "n"), argv("INCR", "n")]


def test_replica_reads_hide_expired_keys_but_keep_them(ks):
    run(ks, "SET", "k", "v", "PX", "10", now=1_000)
    out = run(ks, "GET", "k", now=5_000, replica=True)
    assert out.reply is None and out.propagate == []
    assert b"k" in ks.dbs[0].data      # the primary's DEL removes it


def test_replica_applies_writes_to_keys_as_the_primary_saw_them(ks):
    run(ks, "SET", "n", "5", "PX", "10", now=1_000)
    out = run(ks, "INCR", "n", now=5_000, replica=True)
    assert out.reply == 6 and ks.dbs[0].expires[b"n"] == 1_010
