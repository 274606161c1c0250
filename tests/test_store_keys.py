"""Generic key commands and the glob matcher."""

import random

import pytest

from workbench.resp import OK
from workbench.store import lookup
from workbench.store.glob import glob_match
from keyspace_helpers import argv, error, reply, run  # noqa: F401


# -- glob --------------------------------------------------------------------------------
def reference_match(p: bytes, s: bytes) -> bool:
    """A line-by-line port of Valkey's stringmatchlen_impl (no nesting limit)."""
    pi, si = 0, 0
    while pi < len(p) and si < len(s):
        c = p[pi]
        if c == ord("*"):
            while pi + 1 < len(p) and p[pi + 1] == ord("*"):
                pi += 1
            if pi + 1 == len(p):
                return True
            for k in range(si, len(s)):
                if reference_match(p[pi + 1:], s[k:]):
                    return True
            return False
        elif c == ord("?"):
            si += 1
        elif c == ord("["):
            pi += 1
            negate = pi < len(p) and p[pi] == ord("^")
            if negate:
                pi += 1
            matched = False
            while True:
                rest = len(p) - pi
                cur = p[pi] if pi < len(p) else 0
                if cur == ord("\\") and rest >= 2:
                    pi += 1
                    matched |= p[pi] == s[si]
                elif cur == ord("]"):
                    break
                elif rest == 0:
                    pi -= 1
                    break
                elif rest >= 3 and p[pi + 1] == ord("-"):
                    lo, hi = sorted((p[pi], p[pi + 2]))
                    pi += 2
                    matched |= lo <= s[si] <= hi
                else:
                    matched |= cur == s[si]
                pi += 1
            if negate:
                matched = not matched
            if not matched:
                return False
            si += 1
        else:
            if c == ord("\\") and len(p) - pi >= 2:
                pi += 1
            if p[pi] != s[si]:
                return False
            si += 1
        pi += 1
        if si == len(s):
            while pi < len(p) and p[pi] == ord("*"):
                pi += 1
            break
    return pi == len(p) and si == len(s)


@pytest.mark.parametrize("pattern, string, expected", [
    (b"*", b"", True), (b"*", b"anything", True), (b"h?llo", b"hello", True),
    (b"h?llo", b"hllo", False), (b"h*llo", b"heeeello", True), (b"h[ae]llo", b"hallo", True),
    (b"h[ae]llo", b"hillo", False), (b"h[^e]llo", b"hallo", True), (b"h[^e]llo", b"hello", False),
    (b"h[a-b]llo", b"hbllo", True), (b"h[b-a]llo", b"hallo", True), (b"h\\*llo", b"h*llo", True),
    (b"h\\*llo", b"hello", False), (b"abc\\", b"abc\\", True), (b"[abc", b"c", True),
    (b"[]", b"a", False), (b"[^]", b"a", True), (b"a*b*c", b"aXbYc", True),
    (b"a*b*c", b"aXbY", False), (b"user:*", b"user:1", True), (b"user:*", b"use", False),
    (b"**", b"", False), (b"", b"", True),
])
def test_glob_examples(pattern, string, expected):
    assert glob_match(pattern, string) is expected
    if pattern != b"*":     # KEYS, SCAN and our matcher special-case the lone star
        assert reference_match(pattern, string) is expected


def test_glob_agrees_with_valkey_port():
    rng = random.Random(7)
    alphabet = b"ab*?[]^-\\"
    for _ in range(4000):
        p = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 7)))
        s = bytes(rng.choice(b"ab-^]\\*") for _ in range(rng.randint(0, 6)))
        if p != b"*":
            assert glob_match(p, s) == reference_match(p, s), (p, s)


def test_glob_nocase():
    assert glob_match(b"max*", b"MAXMEMORY", nocase=True)
    assert glob_match(b"[A-C]x", b"bX", nocase=True)
    assert not glob_match(b"max*", b"MAXMEMORY")


def test_glob_is_not_exponential():
    assert not glob_match(b"*a*a*a*a*a*a*a*a*a*a*b", b"a" * 2000)


# -- existence and types -------------------------------------------------------------------
def test_del_unlink_exists_type(ks):
    run(ks, "MSET", "a", "1", "b", "2", "c", "3")
    run(ks, "RPUSH", "l", "x")
    assert reply(ks, "EXISTS", "a", "a", "zz") == 2
    out = run(ks, "DEL", "a", "zz")
    assert out.reply == 1 and out.propagate == [argv("DEL", "a", "zz")]
    assert out.events == [("g", "del", 0, b"a")]
    assert run(ks, "DEL", "zz").propagate == []
    assert reply(ks, "UNLINK", "b", "c") == 2
    assert reply(ks, "TYPE", "l").text == "list"
    assert reply(ks, "TYPE", "zz").text == "none"
    assert reply(ks, "TOUCH", "l", "zz") == 1


def test_command_flags():
    for name in (b"keys", b"scan", b"dbsize", b"randomkey"):
        spec = lookup(name)
        assert spec.is_keyspace and spec.is_readonly and not spec.keys([name, b"x"])
    for name in (b"flushdb", b"flushall"):
        assert lookup(name).is_write and lookup(name).first_key == 0
    assert lookup(b"mset").keys(argv("MSET", "a", "1", "b", "2")) == [b"a", b"b"]
    assert lookup(b"rename").keys(argv("RENAME", "a", "b")) == [b"a", b"b"]
    assert lookup(b"del").summary.startswith("Delete keys")


# -- enumeration ----------------------------------------------------------------------------
def test_keys_skips_expired_without_deleting(ks):
    run(ks, "MSET", "user:1", "a", "user:2", "b", "other", "c")
    run(ks, "PEXPIRE", "user:2", "10")
    assert sorted(reply(ks, "KEYS", "user:*")) == [b"user:1", b"user:2"]
    out = run(ks, "KEYS", "user:*", now=5_000)
    assert out.reply == [b"user:1"] and out.propagate == []
    assert reply(ks, "DBSIZE", now=5_000) == 3


def full_scan(ks, *opts, now=1_000, between=None):
    cursor, seen, calls = b"0", [], 0
    while True:
        cursor, batch = reply(ks, "SCAN", cursor, *opts, now=now)
        seen.extend(batch)
        calls += 1
        if between:
            between(calls)
        if cursor == b"0":
            return seen, calls


def test_scan_visits_everything_and_terminates(ks):
    for i in range(500):
        run(ks, "SET", f"k{i}", "v")
    seen, calls = full_scan(ks, "COUNT", "10")
    assert sorted(seen) == sorted(argv(*(f"k{i}" for i in range(500))))
    assert calls > 10


def test_scan_returns_keys_present_throughout_despite_changes(ks):
    for i in range(300):
        run(ks, "SET", f"stay{i}", "v")
    rng = random.Random(3)

    def churn(call):
        for _ in range(5):
            run(ks, "SET", f"new{rng.randrange(1000)}", "v")
            run(ks, "DEL", f"new{rng.randrange(1000)}")

    seen, _ = full_scan(ks, "COUNT", "7", between=churn)
    assert set(argv(*(f"stay{i}" for i in range(300)))) <= set(seen)


def test_scan_match_type_and_errors(ks):
    run(ks, "MSET", "s1", "v", "s2", "v")
    run(ks, "SADD", "set1", "m")
    seen, _ = full_scan(ks, "MATCH", "s*", "TYPE", "string")
    assert sorted(seen) == [b"s1", b"s2"]
    seen, _ = full_scan(ks, "TYPE", "SET")
    assert seen == [b"set1"]
    assert full_scan(ks, "TYPE", "nosuchtype")[0] == []
    assert error(ks, "SCAN", "x") == "ERR invalid cursor"
    assert error(ks, "SCAN", "0", "COUNT", "0") == "ERR syntax error"
    assert error(ks, "SCAN", "0", "COUNT", "x") == "ERR value is not an integer or out of range"
    assert error(ks, "SCAN", "0", "MATCH") == "ERR syntax error"
    assert error(ks, "SCAN", "0", "BOGUS", "1") == "ERR syntax error"
    assert reply(ks, "SCAN", "0", db=3) == [b"0", []]


def test_randomkey_is_deterministic_and_live(ks):
    assert reply(ks, "RANDOMKEY") is None
    run(ks, "MSET", "a", "1", "b", "2", "c", "3")
    assert reply(ks, "RANDOMKEY", now=5) == reply(ks, "RANDOMKEY", now=5)
    assert {reply(ks, "RANDOMKEY", now=t) for t in range(50)} == {b"a", b"b", b"c"}
    run(ks, "PEXPIRE", "a", "1")
    run(ks, "PEXPIRE", "b", "1")
    assert {reply(ks, "RANDOMKEY", now=5_000 + t) for t in range(20)} == {b"c"}


def test_flushdb_flushall(ks):
    run(ks, "SET", "a", "1", db=0)
    run(ks, "SET", "b", "1", "PX", "100", db=2)
    out = run(ks, "FLUSHDB", "ASYNC", db=2)
    assert out.reply is OK and out.flushed_dbs == [2]
    assert out.propagate == [argv("FLUSHDB", "ASYNC")]
    assert not ks.dbs[2].data and not ks.dbs[2].expires and ks.dbs[0].data
    out = run(ks, "FLUSHDB", db=2)      # propagated even with nothing to remove
    assert out.propagate == [argv("FLUSHDB")]
    out = run(ks, "FLUSHALL", "SYNC", db=5)
    assert out.flushed_dbs == list(range(16)) and out.propagate == [argv("FLUSHALL", "SYNC")]
    assert ks.key_count() == 0
    assert error(ks, "FLUSHALL", "LATER") == "ERR syntax error"
    assert error(ks, "FLUSHDB", "ASYNC", "SYNC") == "ERR syntax error"


# -- renames -------------------------------------------------------------------------------
def test_rename_moves_value_and_ttl(ks):
    run(ks, "SET", "a", "1", "PX", "500")
    run(ks, "SET", "b", "2")
    out = run(ks, "RENAME", "a", "b")
    assert out.reply is OK and out.propagate == [argv("RENAME", "a", "b")]
    assert out.events == [("g", "rename_from", 0, b"a"), ("g", "rename_to", 0, b"b")]
    assert ks.dbs[0].data == {b"b": b"1"} and ks.dbs[0].expires == {b"b": 1_500}
    assert error(ks, "RENAME", "a", "c") == "ERR no such key"
    out = run(ks, "RENAME", "b", "b")
    assert out.reply is OK and out.propagate == []


def test_renamenx(ks):
    run(ks, "MSET", "a", "1", "b", "2")
    assert reply(ks, "RENAMENX", "a", "b") == 0
    assert reply(ks, "RENAMENX", "a", "c") == 1
    assert reply(ks, "MGET", "a", "c") == [None, b"1"]
    assert error(ks, "RENAMENX", "zz", "c") == "ERR no such key"


# -- expiry --------------------------------------------------------------------------------
def test_relative_expiry_propagates_as_pexpireat(ks):
    run(ks, "SET", "k", "v")
    for cmd, arg in (("EXPIRE", "10"), ("PEXPIRE", "10000"), ("EXPIREAT", "11"),
                     ("PEXPIREAT", "11000")):
        out = run(ks, cmd, "k", arg, now=1_000)
        assert out.reply == 1
        assert out.propagate == [argv("PEXPIREAT", "k", 11_000)], cmd
        assert out.events == [("g", "expire", 0, b"k")]
    assert reply(ks, "TTL", "k", now=1_000) == 10
    assert reply(ks, "TTL", "k", now=1_600) == 9       # rounded to the nearest second
    assert reply(ks, "PTTL", "k", now=1_600) == 9_400
    assert reply(ks, "EXPIRETIME", "k") == 11
    assert reply(ks, "PEXPIRETIME", "k") == 11_000


def test_expire_in_the_past_deletes(ks):
    run(ks, "SET", "k", "v")
    out = run(ks, "EXPIRE", "k", "-1")
    assert out.reply == 1 and out.propagate == [argv("DEL", "k")]
    assert out.events == [("g", "del", 0, b"k")]
    assert reply(ks, "EXISTS", "k") == 0
    assert run(ks, "EXPIRE", "k", "10").reply == 0


def test_expire_in_the_past_on_a_replica_keeps_the_key(ks):
    run(ks, "SET", "k", "v")
    out = run(ks, "PEXPIREAT", "k", "5", replica=True)
    assert out.reply == 1 and ks.dbs[0].expires[b"k"] == 5


def test_expire_conditions(ks):
    run(ks, "SET", "k", "v")
    assert reply(ks, "EXPIRE", "k", "100", "XX") == 0
    assert reply(ks, "EXPIRE", "k", "100", "GT") == 0      # no ttl counts as infinite
    assert reply(ks, "EXPIRE", "k", "100", "NX") == 1
    assert reply(ks, "EXPIRE", "k", "200", "NX") == 0
    assert reply(ks, "EXPIRE", "k", "50", "GT") == 0
    assert reply(ks, "EXPIRE", "k", "200", "gt") == 1
    assert reply(ks, "EXPIRE", "k", "300", "LT") == 0
    assert reply(ks, "EXPIRE", "k", "50", "LT", "XX") == 1
    assert ks.dbs[0].expires[b"k"] == 51_000
    assert error(ks, "EXPIRE", "k", "5", "NX", "XX") == \
        "ERR NX and XX, GT or LT options at the same time are not compatible"
    assert error(ks, "EXPIRE", "k", "5", "GT", "LT") == \
        "ERR GT and LT options at the same time are not compatible"
    assert error(ks, "EXPIRE", "k", "5", "SOON") == "ERR Unsupported option SOON"


def test_expire_errors(ks):
    run(ks, "SET", "k", "v")
    assert error(ks, "EXPIRE", "k", "x") == "ERR value is not an integer or out of range"
    assert error(ks, "EXPIRE", "k", str(2**62)) == "ERR invalid expire time in 'expire' command"
    assert error(ks, "PEXPIRE", "k", str(2**63 - 1)) == \
        "ERR invalid expire time in 'pexpire' command"
    assert reply(ks, "EXPIRE", "nokey", "10") == 0


def test_ttl_missing_and_persist(ks):
    assert reply(ks, "TTL", "k") == -2 and reply(ks, "PTTL", "k") == -2
    run(ks, "SET", "k", "v")
    assert reply(ks, "TTL", "k") == -1
    assert run(ks, "PERSIST", "k").propagate == []
    run(ks, "EXPIRE", "k", "10")
    out = run(ks, "PERSIST", "k")
    assert out.reply == 1 and out.events == [("g", "persist", 0, b"k")]
    assert reply(ks, "TTL", "k") == -1


def test_set_without_keepttl_clears_expiry(ks):
    run(ks, "SET", "k", "v", "EX", "10")
    run(ks, "SET", "k", "w")
    assert reply(ks, "TTL", "k") == -1
