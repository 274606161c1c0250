"""GETRANGE, SETRANGE, GETEX, HRANDFIELD, HSCAN and SSCAN on the pure keyspace.

What each write propagates (and that replaying it rebuilds the same state, on a replica
too), that random picks are a function of key and time, and that scans see every
element of a collection that stays in it while the collection changes.
"""

import random

import pytest

from keyspace_helpers import argv, error, reply, run
from workbench.resp import ReplyError
from workbench.store import Keyspace
from workbench.store.cmd_scans import parse_cursor

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


# -- GETRANGE / SUBSTR ----------------------------------------------------------------------
@pytest.mark.parametrize("start, end, expected", [
    (0, -1, b"hello"), (0, -100, b"h"), (-1, -5, b""), (-100, -200, b""), (-3, -1, b"llo"),
    (-100, 1, b"he"), (-7, 2, b"hel"), (0, -7, b"h"), (1, 99, b"ello"), (10, 20, b""),
    (3, 1, b""), (4, 4, b"o")])
def test_getrange_offsets(ks, start, end, expected):
    run(ks, "SET", "s", "hello")
    assert reply(ks, "GETRANGE", "s", start, end) == expected
    assert reply(ks, "SUBSTR", "s", start, end) == expected


def test_getrange_of_nothing_and_errors(ks):
    run(ks, "SET", "e", "")
    assert reply(ks, "GETRANGE", "e", "0", "-1") == b""
    assert reply(ks, "GETRANGE", "missing", "0", "-1") == b""
    run(ks, "RPUSH", "l", "a")
    assert error(ks, "GETRANGE", "l", "x", "0") == "ERR value is not an integer or out of range"
    assert error(ks, "GETRANGE", "l", "0", "1") == WRONGTYPE
    assert run(ks, "GETRANGE", "l", "0", "1").propagate == []


# -- SETRANGE --------------------------------------------------------------------------------
def test_setrange_pads_with_zero_bytes_and_propagates_itself(ks):
    out = run(ks, "SETRANGE", "k", "3", "ab")
    assert out.reply == 5 and reply(ks, "GET", "k") == b"\0\0\0ab"
    assert out.propagate == [argv("SETRANGE", "k", "3", "ab")]
    assert out.events == [("$", "setrange", 0, b"k")]
    assert reply(ks, "SETRANGE", "k", "1", "XYZW") == 5
    assert reply(ks, "GET", "k") == b"\0XYZW"


def test_setrange_keeps_the_expiry(ks):
    run(ks, "SET", "k", "hello", "PX", "500")
    assert reply(ks, "SETRANGE", "k", "0", "J") == 5
    assert ks.dbs[0].expires[b"k"] == 1_500 and reply(ks, "GET", "k") == b"Jello"


def test_setrange_with_nothing_to_write_changes_nothing(ks):
    out = run(ks, "SETRANGE", "missing", "10", "")
    assert out.reply == 0 and out.propagate == [] and out.events == []
    assert b"missing" not in ks.dbs[0].data
    run(ks, "SET", "k", "abc")
    out = run(ks, "SETRANGE", "k", "9223372036854775807", "")     # no size check then
    assert out.reply == 3 and out.propagate == [] and out.changed_keys == []


def test_setrange_errors_change_nothing(ks):
    assert error(ks, "SETRANGE", "k", "-1", "x") == "ERR offset is out of range"
    assert error(ks, "SETRANGE", "k", "536870911", "ab") == \
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    run(ks, "SADD", "s", "m")
    assert error(ks, "SETRANGE", "s", "0", "") == WRONGTYPE
    assert error(ks, "SETRANGE", "s", "-1", "") == "ERR offset is out of range"
    assert run(ks, "SETRANGE", "k", "536870912", "a").propagate == []
    assert b"k" not in ks.dbs[0].data


# -- GETEX ---------------------------------------------------------------------------------
@pytest.mark.parametrize("unit, amount, at", [
    ("EX", "10", 11_000), ("PX", "250", 1_250), ("EXAT", "7", 7_000), ("PXAT", "1234", 1_234)])
def test_getex_with_a_time_propagates_an_absolute_pexpireat(ks, unit, amount, at):
    run(ks, "SET", "k", "v")
    out = run(ks, "GETEX", "k", unit, amount, now=1_000)
    assert out.reply == b"v"
    assert out.propagate == [argv("PEXPIREAT", "k", at)]
    assert out.events == [("g", "expire", 0, b"k")]
    assert ks.dbs[0].expires[b"k"] == at


def test_getex_at_a_time_already_past_deletes_the_key(ks):
    run(ks, "SET", "k", "v")
    out = run(ks, "GETEX", "k", "PXAT", "999", now=1_000)
    assert out.reply == b"v" and out.propagate == [argv("DEL", "k")]
    assert out.events == [("g", "del", 0, b"k")]
    assert ks.dbs[0].data == {}


def test_getex_on_a_replica_keeps_a_past_expiry_until_the_primarys_del(ks):
    ks.dbs[0].data[b"k"] = b"v"
    out = run(ks, "GETEX", "k", "EXAT", "1", now=5_000, replica=True)
    assert out.reply == b"v" and ks.dbs[0].expires[b"k"] == 1_000
    assert b"k" in ks.dbs[0].data


def test_getex_persist_propagates_only_a_removed_expiry(ks):
    run(ks, "SET", "k", "v", "PX", "100")
    out = run(ks, "GETEX", "k", "PERSIST")
    assert out.propagate == [argv("PERSIST", "k")]
    assert out.events == [("g", "persist", 0, b"k")] and ks.dbs[0].expires == {}
    out = run(ks, "GETEX", "k", "PERSIST")
    assert out.reply == b"v" and out.propagate == [] and out.events == []


def test_plain_getex_propagates_nothing_but_an_expired_keys_del(ks):
    run(ks, "SET", "k", "v", "PX", "100")
    out = run(ks, "GETEX", "k")
    assert out.reply == b"v" and out.propagate == []
    out = run(ks, "GETEX", "k", "EX", "10", now=2_000)
    assert out.reply is None and out.propagate == [argv("DEL", "k")]
    assert out.events == [("x", "expired", 0, b"k")]


def test_getex_options(ks):
    run(ks, "SET", "k", "v")
    assert error(ks, "GETEX", "k", "EX", "10", "PX", "10") == "ERR syntax error"
    assert error(ks, "GETEX", "k", "PERSIST", "EX", "10") == "ERR syntax error"
    assert error(ks, "GETEX", "k", "EX") == "ERR syntax error"
    assert error(ks, "GETEX", "k", "EX", "0") == "ERR invalid expire time in 'getex' command"
    assert error(ks, "GETEX", "missing", "NX") == "ERR syntax error"
    assert reply(ks, "GETEX", "missing", "EX", "nope") is None      # the time is read later
    assert run(ks, "GETEX", "k", "EX", "nope", "EX", "3").propagate == [
        argv("PEXPIREAT", "k", 4_000)]                              # the last one counts
    run(ks, "RPUSH", "l", "a")
    assert error(ks, "GETEX", "l", "EX", "nope") == WRONGTYPE


# -- HRANDFIELD ------------------------------------------------------------------------------
def _hash(ks, size, key="h"):
    run(ks, "HSET", key, *[x for i in range(size) for x in (f"f{i}", f"v{i}")])
    return {b"f%d" % i: b"v%d" % i for i in range(size)}


def test_hrandfield_is_a_function_of_key_and_time(ks):
    _hash(ks, 50)
    for args in [(), ("5",), ("-20",), ("7", "WITHVALUES")]:
        assert reply(ks, "HRANDFIELD", "h", *args, now=42) == \
            reply(ks, "HRANDFIELD", "h", *args, now=42)
    picks = {tuple(reply(ks, "HRANDFIELD", "h", "5", now=t)) for t in range(20)}
    assert len(picks) > 1


def test_hrandfield_counts(ks):
    fields = _hash(ks, 10)
    assert reply(ks, "HRANDFIELD", "h") in fields
    picked = reply(ks, "HRANDFIELD", "h", "4")
    assert len(picked) == len(set(picked)) == 4 and set(picked) <= set(fields)
    assert reply(ks, "HRANDFIELD", "h", "99") == list(fields)
    repeated = reply(ks, "HRANDFIELD", "h", "-30")
    assert len(repeated) == 30 and set(repeated) <= set(fields)
    pairs = reply(ks, "HRANDFIELD", "h", "-3", "WITHVALUES")     # flat on the wire in RESP2
    assert len(pairs) == 3 and all(fields[f] == v for f, v in pairs)
    assert reply(ks, "HRANDFIELD", "h", "0") == []
    assert reply(ks, "HRANDFIELD", "missing") is None
    assert reply(ks, "HRANDFIELD", "missing", "-3") == []
    assert error(ks, "HRANDFIELD", "h", "4611686018427387904", "WITHVALUES") == \
        "ERR value is out of range"
    assert run(ks, "HRANDFIELD", "h", "3").propagate == []


# -- HSCAN / SSCAN -----------------------------------------------------------------------------
def _scan_all(ks, command, key, *options, between=None):
    seen, cursor, calls = [], b"0", 0
    while True:
        cursor, batch = reply(ks, command, key, cursor, *options)
        seen.extend(batch)
        calls += 1
        if between:
            between(calls)
        if cursor == b"0":
            return seen, calls


@pytest.mark.parametrize("count", ["1", "3", "10", "1000"])
def test_a_full_scan_visits_every_element(ks, count):
    fields = _hash(ks, 200)
    run(ks, "SADD", "s", *range(200))
    seen, calls = _scan_all(ks, "HSCAN", "h", "COUNT", count)
    pairs = dict(zip(seen[::2], seen[1::2]))
    assert pairs == fields and len(seen) == 400
    assert calls == 1 if count == "1000" else calls >= 200 // int(count) // 2
    members, _ = _scan_all(ks, "SSCAN", "s", "COUNT", count)
    assert sorted(members) == sorted(b"%d" % i for i in range(200))


def test_a_scan_sees_every_element_present_throughout_while_the_collection_changes(ks):
    run(ks, "SADD", "s", *[f"keep{i}" for i in range(150)])
    _hash(ks, 150)
    rng = random.Random(7)

    def churn(step):
        run(ks, "SADD", "s", *[f"new{step}-{i}" for i in range(5)])
        run(ks, "SREM", "s", *[f"new{rng.randrange(step)}-{i}" for i in range(5)])
        run(ks, "HSET", "h", f"extra{step}", "x")
        run(ks, "HDEL", "h", f"extra{rng.randrange(step)}")

    members, calls = _scan_all(ks, "SSCAN", "s", "COUNT", "4", between=churn)
    assert calls > 10 and {b"keep%d" % i for i in range(150)} <= set(members)
    seen, _ = _scan_all(ks, "HSCAN", "h", "COUNT", "4", between=churn)
    assert {b"f%d" % i for i in range(150)} <= set(seen[::2])


def test_scan_match_filters_after_the_step(ks):
    run(ks, "SADD", "s", *[f"m{i}" for i in range(30)])
    members, _ = _scan_all(ks, "SSCAN", "s", "MATCH", "m1*", "COUNT", "2")
    assert sorted(members) == sorted([b"m1"] + [b"m1%d" % i for i in range(10)])
    _hash(ks, 12)
    seen, _ = _scan_all(ks, "HSCAN", "h", "MATCH", "f1?")
    assert sorted(zip(seen[::2], seen[1::2])) == [(b"f10", b"v10"), (b"f11", b"v11")]


@pytest.mark.parametrize("raw, cursor", [
    (b"", 0), (b"0", 0), (b"+7", 7), (b"-1", 2**64 - 1), (b"-0", 0),
    (b"18446744073709551615", 2**64 - 1), (b"-18446744073709551615", 1)])
def test_cursors_as_strtoul_reads_them(raw, cursor):
    assert parse_cursor(raw) == cursor


@pytest.mark.parametrize("raw", [b"-", b"+", b" 1", b"1 ", b"1.5", b"0x1", b"18446744073709551616"])
def test_invalid_cursors(raw):
    with pytest.raises(ReplyError, match="ERR invalid cursor"):
        parse_cursor(raw)


def test_scan_checks_the_cursor_then_the_key_then_the_options(ks):
    assert reply(ks, "HSCAN", "missing", "0", "COUNT", "0") == [b"0", []]
    assert error(ks, "SSCAN", "missing", "x") == "ERR invalid cursor"
    run(ks, "SET", "str", "v")
    assert error(ks, "SSCAN", "str", "0", "COUNT", "0") == WRONGTYPE
    run(ks, "SADD", "s", "m")
    assert error(ks, "SSCAN", "s", "0", "COUNT", "0") == "ERR syntax error"
    assert error(ks, "SSCAN", "s", "0", "COUNT", "x") == \
        "ERR value is not an integer or out of range"
    assert error(ks, "SSCAN", "s", "0", "TYPE", "set") == "ERR syntax error"
    assert reply(ks, "SSCAN", "s", "99999999999") == [b"0", []]


# -- replay ------------------------------------------------------------------------------------
KEYS = [b"k%d" % i for i in range(4)]


def _command(rng):
    k = rng.choice(KEYS)
    v = b"%d" % rng.randrange(-5, 20)
    n = b"%d" % rng.randrange(0, 4)
    ms = b"%d" % rng.randrange(-200, 2_000)
    return rng.choice([
        [b"SET", k, v], [b"SET", k, v, b"PX", b"%d" % rng.randrange(1, 2_000)],
        [b"HSET", k, b"f" + n, v], [b"SADD", k, v], [b"PEXPIRE", k, ms],
        [b"SETRANGE", k, n, v], [b"SETRANGE", k, n, b""], [b"GETRANGE", k, b"0", b"-1"],
        [b"GETEX", k], [b"GETEX", k, b"PX", ms], [b"GETEX", k, b"EX", n],
        [b"GETEX", k, b"PXAT", ms], [b"GETEX", k, b"EXAT", n], [b"GETEX", k, b"PERSIST"],
        [b"HRANDFIELD", k, n, b"WITHVALUES"], [b"HSCAN", k, b"0"], [b"SSCAN", k, b"0"],
    ])


@pytest.mark.parametrize("seed", range(4))
def test_replaying_the_propagated_commands_on_a_replica_rebuilds_the_state(seed):
    rng = random.Random(seed)
    primary, replica = Keyspace(databases=1), Keyspace(databases=1)
    now, rewritten = 1_000_000, set()
    for _ in range(1_500):
        now += rng.randrange(0, 300)
        command = _command(rng)
        out = primary.execute(command, now_ms=now)
        for propagated in out.propagate:
            rewritten.add((command[0], propagated[0]))
            # a lagging replica: the primary's keys may look expired there, it waits for DEL
            result = replica.execute(propagated, now_ms=now + 5_000, replica=True)
            assert not isinstance(result.reply, ReplyError), (propagated, result.reply)
    assert primary.dbs[0].data == replica.dbs[0].data
    assert primary.dbs[0].expires == replica.dbs[0].expires
    assert {(b"GETEX", b"PEXPIREAT"), (b"GETEX", b"DEL"), (b"GETEX", b"PERSIST"),
            (b"SETRANGE", b"SETRANGE")} <= rewritten
    reads = {b"GETRANGE", b"HRANDFIELD", b"HSCAN", b"SSCAN"}
    assert all(form == b"DEL" for name, form in rewritten if name in reads)  # expired keys
