"""GETRANGE, SETRANGE, GETEX, HRANDFIELD, HSCAN and SSCAN side by side with redis-server.

Deterministic replies (errors included) must be equal word for word. Random picks and
scan batches are not: for those the test checks what Valkey specifies (lengths,
distinctness, membership, every element of a full scan seen, cursor 0 at the end).
"""

from __future__ import annotations

import pytest
import redis

from differential_helpers import both, keyspace_events, redis_server, run_side_by_side  # noqa: F401

pytestmark = pytest.mark.compat

GETRANGE = [
    "SET s hello", "GETRANGE s 0 -1", "GETRANGE s 0 -100", "GETRANGE s -1 -5",
    "GETRANGE s -100 -200", "GETRANGE s -3 -1", "GETRANGE s -100 2", "GETRANGE s -7 2", "GETRANGE s 0 -7",
    "GETRANGE s -1 -1",
    "GETRANGE s 10 20", "GETRANGE s 3 1", "GETRANGE s 2 2", "GETRANGE s 1 99999",
    "GETRANGE s 4 -1", "GETRANGE s 5 -1",
    "GETRANGE s x 1", "GETRANGE s 1 y", "GETRANGE s 0 99999999999999999999",
    "GETRANGE nokey x 1", "GETRANGE nokey 0 1", "GETRANGE nokey -1 -5",
    "SUBSTR s 1 3", "SUBSTR s -2 -1", "SUBSTR nokey 0 1", "SUBSTR s x 1",
    "SUBSTR s 1", "GETRANGE s 1", "GETRANGE s 1 2 3", "GETRANGE",
    "RPUSH l a", "GETRANGE l 0 1", "GETRANGE l x 1", "GETRANGE l 0 y", "SUBSTR l 0 1",
    "SET i 12345", "GETRANGE i 1 2", "GETRANGE i -2 -1",
]

SETRANGE = [
    "SETRANGE s -1 x", "SETRANGE s x x", "SETRANGE s 99999999999999999999 x",
    "SETRANGE nokey -1 x", "EXISTS nokey",
    "RPUSH l a", "SETRANGE l 0 x", "SETRANGE l -1 x", "SETRANGE l x x",
    "SETRANGE l 536870912 a",
    # the 512 MB limit (proto-max-bulk-len), checked before anything is allocated
    "SETRANGE big 536870911 ab", "SETRANGE big 536870912 a",
    "SETRANGE big 9223372036854775807 a", "EXISTS big",
    "SET s hello", "SETRANGE s 536870911 ab", "SETRANGE s 0 J", "GET s",
    "SETRANGE s 7 xy", "GET s", "STRLEN s", "SETRANGE s 4 OWORLD", "GET s",
    "SETRANGE n2 2 ab", "GET n2", "STRLEN n2",
    "SET i 123", "SETRANGE i 1 9", "GET i", "INCR i",
    "SET t v EX 100", "SETRANGE t 1 w", "TTL t", "GET t",
    "SETRANGE s 1", "SETRANGE s 1 2 3", "SETRANGE",
]

GETEX = [
    "SET s v", "GETEX s", "TTL s", "GETEX nokey", "GETEX nokey EX abc", "GETEX nokey FOO",
    "GETEX nokey EX 10 PX 10",
    # syntax, checked before the key
    "GETEX s FOO", "GETEX s EX", "GETEX s PXAT", "GETEX s EX 10 PX 10",
    "GETEX s EX 10 EXAT 10", "GETEX s PXAT 10 PX 10", "GETEX s PERSIST EX 10",
    "GETEX s EX 10 PERSIST", "GETEX s PERSIST PX 10", "GETEX s KEEPTTL", "GETEX s NX",
    "GETEX s XX", "GETEX s GET", "GETEX s EX 10 extra",
    # the time, checked after the key
    "GETEX s EX 0", "GETEX s EX -1", "GETEX s PX 0", "GETEX s PX -5", "GETEX s EXAT 0",
    "GETEX s PXAT -1", "GETEX s EX abc", "GETEX s EX 1.5", "GETEX s EX 99999999999999999999",
    "GETEX s EX 9223372036854775807", "GETEX s EX 9223372036854775",
    "GETEX s EX 9223372036854774", "GETEX s PX 9223372036854775807",
    "GETEX s EXAT 9223372036854775807", "GETEX s EX 10 EX abc", "TTL s",
    # setting and removing the expiry
    "GETEX s EX 100", "TTL s", "GETEX s EX abc EX 200", "TTL s",
    "GETEX s PX 10 PX 300000", "TTL s", "GETEX s PERSIST", "TTL s",
    "GETEX s PERSIST PERSIST", "TTL s", "GETEX s ex 100", "GETEX s persist", "TTL s",
    "GETEX s exat 99999999999", "EXPIRETIME s", "GETEX s pxat 99999999999999",
    "PEXPIRETIME s", "GETEX s EXAT 9223372036854775", "EXPIRETIME s",
    "GETEX s PXAT 9223372036854775807", "PEXPIRETIME s", "GETEX s", "PEXPIRETIME s",
    # an absolute time in the past deletes the key
    "GETEX s EXAT 1", "EXISTS s", "SET s v", "GETEX s PXAT 1", "EXISTS s",
    "RPUSH l a", "GETEX l", "GETEX l EX abc", "GETEX l FOO", "GETEX",
    "SET n 5", "GETEX n PERSIST", "GETEX n EX 50", "INCR n", "TTL n",
]

HRANDFIELD = [
    "HSET h a 1 b 2 c 3", "SET str v",
    "HRANDFIELD nokey", "HRANDFIELD nokey 1", "HRANDFIELD nokey 0",
    "HRANDFIELD nokey -5 WITHVALUES", "HRANDFIELD nokey x", "HRANDFIELD nokey 1 FOO",
    "HRANDFIELD str", "HRANDFIELD str 0", "HRANDFIELD str x", "HRANDFIELD str 1 FOO",
    "HRANDFIELD h 0", "HRANDFIELD h 0 withvalues", "HRANDFIELD h 1 withvalues extra",
    "HRANDFIELD h 1 withvaluesx", "HRANDFIELD h 1.5", "HRANDFIELD h -9223372036854775808",
    "HRANDFIELD h 9223372036854775808", "HRANDFIELD nokey -9223372036854775808",
    "HRANDFIELD str -9223372036854775808 withvalues",
    "HRANDFIELD h 4611686018427387904 withvalues",
    "HRANDFIELD h -4611686018427387904 WITHVALUES",
    "HRANDFIELD str 4611686018427387904 withvalues",
    # a count covering the whole hash returns it whole, in its order
    "HRANDFIELD h 3", "HRANDFIELD h 9223372036854775807", "HRANDFIELD",
]
# WITHVALUES replies field, value, field, value ... in RESP2 (pairs in RESP3: see below)
HRANDFIELD_WITHVALUES = [
    "HSET h a 1 b 2 c 3", "HRANDFIELD h 4611686018427387903 withvalues",
    "HRANDFIELD h 3 WITHVALUES", "HRANDFIELD h 0 WITHVALUES", "HRANDFIELD nokey 2 WITHVALUES",
]

SCANS = [
    "HSET h a 1 b 2 c 3", "SADD st x y z", "SADD ints 1 2 3", "SET str v",
    # the cursor first (as strtoul reads it), then the key, then the options
    "HSCAN h x", "HSCAN h 1.5", "HSCAN h 18446744073709551616",
    "HSCAN h -18446744073709551616", "HSCAN h -", "HSCAN h +", "HSCAN h 0x10",
    "HSCAN nokey x", "HSCAN str x", "SSCAN str 1.5", "SSCAN nokey -",
    "HSCAN str 0", "HSCAN str 0 FOO", "HSCAN st 0", "SSCAN h 0", "SSCAN str 0 COUNT 0",
    "HSCAN nokey 0", "HSCAN nokey 0 COUNT 0", "HSCAN nokey 0 FOO",
    "SSCAN nokey 18446744073709551615 COUNT -1", "SSCAN nokey -1 MATCH",
    "HSCAN h 0 COUNT 0", "HSCAN h 0 COUNT -1", "HSCAN h 0 COUNT x",
    "HSCAN h 0 COUNT 99999999999999999999", "HSCAN h 0 COUNT", "HSCAN h 0 MATCH",
    "HSCAN h 0 FOO", "HSCAN h 0 TYPE hash", "HSCAN h 0 NOVALUES", "HSCAN h 0 COUNT x MATCH",
    "HSCAN h 0 MATCH a COUNT 0", "SSCAN st 0 COUNT 0", "SSCAN st 0 MATCH", "SSCAN st 0 TYPE set",
    "SSCAN st 1.5", "SSCAN st", "HSCAN h", "SSCAN",
    # small collections come back whole in one call
    "HSCAN h 0", "HSCAN h 0 MATCH a", "HSCAN h 0 match [ab] COUNT 5 match b",
    "HSCAN h 0 MATCH *", "HSCAN h 0 MATCH nomatch",
    "SSCAN st 0 MATCH x", "SSCAN st 0 MATCH nomatch", "SSCAN st 0 MATCH [^xz] COUNT 100",
    "SSCAN ints 0 MATCH 2", "SSCAN ints 0 COUNT 100 MATCH [^13]",
]


@pytest.mark.parametrize("script", [GETRANGE, SETRANGE, GETEX, HRANDFIELD, SCANS],
                         ids=["getrange", "setrange", "getex", "hrandfield", "scans"])
def test_the_same_replies_as_redis_server(both, script):
    run_side_by_side(*both, script)


def _resp2(client) -> redis.Redis:
    """A second connection to the same server, speaking RESP2."""
    port = client.connection_pool.connection_kwargs["port"]
    return redis.Redis(port=port, protocol=2, single_connection_client=True, socket_timeout=5)


def test_the_same_resp2_replies_as_redis_server(both):
    ours, theirs = (_resp2(client) for client in both)
    with ours, theirs:
        run_side_by_side(ours, theirs, HRANDFIELD_WITHVALUES)


def test_hrandfield_withvalues_pairs_in_resp3(both):
    run_side_by_side(*both, HRANDFIELD_WITHVALUES)


def _reply(client, *args):
    try:
        return client.execute_command(*args)
    except redis.ResponseError as err:
        return ("error", str(err))


def test_empty_arguments_as_redis_server(both):
    """Arguments a space-split script cannot spell: empty values and cursors."""
    ours, theirs = both
    for args in [("SETRANGE", "nokey", "0", ""), ("EXISTS", "nokey"),
                 ("SETRANGE", "nokey", "-1", ""), ("SETRANGE", "nokey", "9999999999", ""),
                 ("SET", "s", "hello"), ("SETRANGE", "s", "9223372036854775807", ""),
                 ("SETRANGE", "s", "2", ""), ("GET", "s"), ("RPUSH", "l", "a"),
                 ("SETRANGE", "l", "0", ""), ("SET", "e", ""), ("GETRANGE", "e", "0", "-1"),
                 ("GETRANGE", "e", "-1", "0"), ("SETRANGE", "e", "0", ""), ("EXISTS", "e"),
                 ("SETRANGE", "e", "1", "z"), ("GET", "e"), ("GETRANGE", "s", "", "1"),
                 ("SADD", "st", "x"), ("SSCAN", "st", ""), ("SSCAN", "st", "", "MATCH", ""),
                 ("SADD", "st", ""), ("SSCAN", "st", "0", "MATCH", ""),
                 ("HSET", "h", "", "v"), ("HSCAN", "h", "0", "MATCH", ""),
                 ("HRANDFIELD", "h"), ("HRANDFIELD", "h", "1"),
                 ("GETEX", "s", "EX", ""), ("GETEX", "s", "")]:
        assert _reply(ours, *args) == _reply(theirs, *args), args


def _fill(client, size: int) -> dict:
    fields = {b"f%d" % i: b"v%d" % i for i in range(size)}
    client.hset("h", mapping=fields)
    return fields


@pytest.mark.parametrize("size", [5, 300], ids=["small", "large"])
def test_hrandfield_picks_as_redis_server_specifies(both, size):
    for client in both:
        fields = _fill(client, size)
        assert client.execute_command("HRANDFIELD", "h") in fields
        for count in (1, 3, size - 1, size, size + 7):
            picked = client.execute_command("HRANDFIELD", "h", count)
            assert len(picked) == min(count, size) == len(set(picked))
            assert set(picked) <= set(fields)
            flat = client.execute_command("HRANDFIELD", "h", count, "WITHVALUES",
                                          withvalues=True)     # flat, whatever the protocol
            pairs = list(zip(flat[::2], flat[1::2]))
            assert len(pairs) == min(count, size) == len({f for f, _ in pairs})
            assert all(fields[f] == v for f, v in pairs)
        for count in (-1, -3, -size, -2 * size - 1):
            picked = client.execute_command("HRANDFIELD", "h", count)
            assert len(picked) == -count and set(picked) <= set(fields)
            flat = client.execute_command("HRANDFIELD", "h", count, "WITHVALUES",
                                          withvalues=True)
            assert len(flat) == -2 * count
            assert all(fields[f] == v for f, v in zip(flat[::2], flat[1::2]))
        # a large repeating pick covers the whole of a small hash
        if size == 5:
            assert set(client.execute_command("HRANDFIELD", "h", -500)) == set(fields)


def _full_scan(client, command: str, key: str, *options) -> tuple[list, int]:
    """Everything a complete scan returns (in order, repeats kept) and how many calls."""
    seen, cursor, calls = [], 0, 0
    while True:
        cursor, batch = client.execute_command(command, key, cursor, *options)
        seen.extend(batch.items() if isinstance(batch, dict) else batch)
        calls += 1
        if cursor == 0:
            return seen, calls
        assert calls < 10_000


@pytest.mark.parametrize("size", [7, 400], ids=["small", "large"])
def test_full_scans_return_every_element_as_redis_server(both, size):
    outcomes = []
    for client in both:
        fields = _fill(client, size)
        members = [b"m%d" % i for i in range(size)]
        client.sadd("s", *members)
        client.sadd("ints", *range(size))
        result = {}
        for options in [(), ("COUNT", "3"), ("COUNT", "1000"), ("MATCH", "*1*"),
                        ("MATCH", "m?", "COUNT", "7")]:
            hseen, _ = _full_scan(client, "HSCAN", "h", *options)
            sseen, _ = _full_scan(client, "SSCAN", "s", *options)
            iseen, _ = _full_scan(client, "SSCAN", "ints", *options)
            assert all(fields[f] == v for f, v in hseen)
            result[options] = ({f for f, _ in hseen}, set(sseen), set(iseen))
        everything = result[()]
        assert everything == (set(fields), set(members), {b"%d" % i for i in range(size)})
        assert result[("COUNT", "3")] == result[("COUNT", "1000")] == everything
        for found, all_ in zip(result[("MATCH", "*1*")], everything):
            assert found == {e for e in all_ if b"1" in e}
        outcomes.append(result)
    assert outcomes[0] == outcomes[1]


def test_a_scan_of_a_large_collection_takes_several_calls(both):
    for client in both:
        client.sadd("s", *[b"m%d" % i for i in range(400)])
        seen, calls = _full_scan(client, "SSCAN", "s", "COUNT", "10")
        assert calls > 5 and len(set(seen)) == 400


def test_a_scan_sees_every_element_present_throughout_while_the_set_changes(both):
    for client in both:
        client.sadd("s", *[b"keep%d" % i for i in range(300)])
        seen, cursor, step = set(), 0, 0
        while True:
            cursor, batch = client.execute_command("SSCAN", "s", cursor, "COUNT", "20")
            seen.update(batch)
            client.sadd("s", *[b"new%d-%d" % (step, i) for i in range(10)])
            client.srem("s", *[b"new%d-%d" % (step - 1, i) for i in range(10)])
            step += 1
            if cursor == 0:
                break
        assert {b"keep%d" % i for i in range(300)} <= seen


def test_the_same_keyspace_events_as_redis_server(both):
    ours, theirs = both
    script = ["SET s hello", "SETRANGE s 1 a", "SETRANGE s 0 hello", "SETRANGE n 2 x",
              "SETRANGE n -1 x", "GETRANGE s 0 1", "SUBSTR s 0 1", "GETEX s", "GETEX s EX 100",
              "GETEX s PX 100000", "GETEX s EXAT 99999999999", "GETEX s PERSIST",
              "GETEX s PERSIST", "GETEX s EX 0", "GETEX s PXAT 1", "SET t v", "GETEX t EXAT 1",
              "GETEX nokey EX 10", "HSET h a 1 b 2", "HRANDFIELD h", "HRANDFIELD h -3 WITHVALUES",
              "HSCAN h 0", "SADD st x", "SSCAN st 0", "SETRANGE h 0 x", "GETEX n PXAT 1"]
    expected = keyspace_events(theirs, script)
    assert len(expected) >= 20                    # set, setrange, expire, persist, del ...
    assert keyspace_events(ours, script) == expected
