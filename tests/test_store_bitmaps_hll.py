"""Bitmaps, HyperLogLog, SORT and LCS on the pure keyspace.

The side-by-side test checks replies and events against redis-server 7.0; here are
what it cannot see: the propagated commands and a replica rebuilding the same state from
them, Valkey 8's behaviour where it differs from Redis 7.0, the HyperLogLog encoding
details (sparse values read, caches honoured, corrupt values refused) and LCS against a
plain transcription of Valkey's table walk.
"""

from __future__ import annotations

import random
from collections import deque

import pytest

from workbench.resp import Map, ReplyError
from workbench.store import Keyspace
from workbench.store.cmd_hll import (REGISTERS, dense_to_raw, dense_value, estimate,
                                     murmurhash64a, raw_to_dense, register_and_run)
from workbench.store.cmd_lcs import lcs_walk, lcs_rows
from workbench.store.cmd_sort import sort_keys, sort_score
from workbench.store.table import lookup
from keyspace_helpers import argv, error, reply, run


def value(ks, key):
    return ks.dbs[0].data.get(key.encode())


# -- bitmaps -------------------------------------------------------------------------

def test_setbit_propagates_only_when_the_string_changes(ks):
    out = run(ks, "SETBIT", "k", "9", "1")
    assert out.reply == 0 and value(ks, "k") == b"\x00\x40"
    assert out.propagate == [argv("SETBIT", "k", "9", "1")]
    assert out.events == [("$", "setbit", 0, b"k")]
    same = run(ks, "SETBIT", "k", "9", "1")
    assert same.reply == 1 and same.propagate == [] and same.events == []
    grow = run(ks, "SETBIT", "k", "40", "0")         # a 0 past the end still grows it
    assert grow.propagate and value(ks, "k") == b"\x00\x40\x00\x00\x00\x00"


def test_offsets_up_to_proto_max_bulk_len(ks):
    assert error(ks, "SETBIT", "k", str(2**32), "1") == \
        "ERR bit offset is not an integer or out of range"
    assert error(ks, "GETBIT", "k", str(2**32)) == \
        "ERR bit offset is not an integer or out of range"
    assert reply(ks, "GETBIT", "k", str(2**32 - 1)) == 0
    assert error(ks, "SETBIT", "k", "0", "2") == "ERR bit is not an integer or out of range"


def test_valkey_checks_bitcount_and_bitpos_arguments_before_the_key(ks):
    # Redis 7.0 answered 0 / -1 for a missing key whatever the arguments; Valkey 8 checks
    run(ks, "RPUSH", "l", "x")
    assert error(ks, "BITCOUNT", "missing", "x", "1") == "ERR value is not an integer or out of range"
    assert error(ks, "BITCOUNT", "missing", "0", "1", "FOO") == "ERR syntax error"
    assert error(ks, "BITCOUNT", "l", "x", "1") == "ERR value is not an integer or out of range"
    assert error(ks, "BITPOS", "missing", "1", "x") == "ERR value is not an integer or out of range"
    assert error(ks, "BITPOS", "l", "1", "0", "1", "FOO") == "ERR syntax error"
    assert reply(ks, "BITCOUNT", "missing", "0", "1") == 0


def test_valkey_bitcount_takes_a_start_without_end(ks):
    run(ks, "SET", "s", "foobar")                    # f=4 o=6 o=6 b=3 a=3 r=4 bits
    assert reply(ks, "BITCOUNT", "s", "1") == 22
    assert reply(ks, "BITCOUNT", "s", "-2") == 7
    assert reply(ks, "BITCOUNT", "s", "-2", "-1", "BIT") == 1


def test_an_empty_string_has_no_bits(ks):
    run(ks, "SET", "e", "")
    assert reply(ks, "BITCOUNT", "e") == 0
    assert reply(ks, "BITCOUNT", "e", "0", "-1") == 0
    assert reply(ks, "BITPOS", "e", "0") == -1 and reply(ks, "BITPOS", "e", "1") == -1
    assert reply(ks, "BITFIELD", "e", "GET", "u8", "0") == [0]


def _model_bitpos(data: bytes, bit: int, first: int, last: int, end_given: bool) -> int:
    for pos in range(first, last + 1):
        if (data[pos >> 3] >> (7 - (pos & 7))) & 1 == bit:
            return pos
    return -1 if bit or end_given else last + 1


def test_bitcount_and_bitpos_agree_with_a_bit_by_bit_model(ks):
    rng = random.Random(7)
    for trial in range(300):
        data = bytes(rng.choice([0, 255, rng.randrange(256)]) for _ in range(rng.randrange(1, 9)))
        ks.dbs[0].data[b"s"] = data
        in_bits = rng.random() < 0.5
        total = len(data) * (8 if in_bits else 1)
        start, end = rng.randrange(-total - 2, total + 2), rng.randrange(-total - 2, total + 2)
        unit = ["BIT"] if in_bits else []
        s, e = (start + total if start < 0 else start), (end + total if end < 0 else end)
        s, e = max(s, 0), min(max(e, 0), total - 1)
        first, last = (s, e) if in_bits else (s * 8, e * 8 + 7)
        count = 0 if (start < 0 and end < 0 and start > end) or s > e else \
            sum((data[p >> 3] >> (7 - (p & 7))) & 1 for p in range(first, last + 1))
        assert reply(ks, "BITCOUNT", "s", start, end, *unit) == count, (data, start, end, unit)
        for bit in (0, 1):
            want = -1 if s > e else _model_bitpos(data, bit, first, last, True)
            assert reply(ks, "BITPOS", "s", bit, start, end, *unit) == want, (data, bit, start, end)
        if not in_bits:
            e = len(data) - 1
            want = -1 if s > e else _model_bitpos(data, 0, s * 8, e * 8 + 7, False)
            assert reply(ks, "BITPOS", "s", 0, start) == want, (data, start)


def test_bitop_replaces_the_destination_and_an_empty_result_deletes_it(ks):
    run(ks, "SET", "a", b"\x0f\xf0")
    run(ks, "SET", "d", "old", "PX", "5000")
    out = run(ks, "BITOP", "NOT", "d", "a")
    assert out.reply == 2 and value(ks, "d") == b"\xf0\x0f" and b"d" not in ks.dbs[0].expires
    assert out.propagate == [argv("BITOP", "NOT", "d", "a")]
    out = run(ks, "BITOP", "OR", "d", "missing", "missing2")
    assert out.reply == 0 and value(ks, "d") is None and out.events == [("g", "del", 0, b"d")]
    assert run(ks, "BITOP", "OR", "d", "missing").propagate == []


def test_bitfield_fields_that_straddle_bytes(ks):
    # Valkey's own example: u5 = 23 at offset 7 is 00000001|01110000
    assert reply(ks, "BITFIELD", "f", "SET", "u5", "7", "23") == [0]
    assert value(ks, "f") == b"\x01\x70"
    assert reply(ks, "BITFIELD", "f", "GET", "u5", "7", "GET", "i5", "7", "GET", "u9", "3") == \
        [23, -9, 23]
    assert reply(ks, "BITFIELD", "f", "SET", "i64", "7", "-2", "GET", "u63", "8") == \
        [(23 << 59) - 2**64, 2**63 - 2]
    assert len(value(ks, "f")) == 9


def test_bitfield_that_only_grows_the_string_still_propagates(ks):
    # Valkey keeps the zero-padded key without propagating it; we propagate, silently
    out = run(ks, "BITFIELD", "n", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "100")
    assert out.reply == [None] and value(ks, "n") == b"\x00"
    assert out.propagate and out.events == []
    gets = run(ks, "BITFIELD", "n", "GET", "u8", "0")
    assert gets.propagate == [] and gets.reply == [0]


def test_bitfield_ro_is_readonly_and_refuses_writes(ks):
    spec = lookup(b"bitfield_ro")
    assert spec.is_readonly and not spec.is_write
    assert error(ks, "BITFIELD_RO", "k", "INCRBY", "u8", "0", "1") == \
        "ERR BITFIELD_RO only supports the GET subcommand"


def test_a_huge_string_that_cannot_be_allocated_is_an_oom_error(ks, monkeypatch):
    import workbench.store.cmd_bitmaps as bitmaps

    def no_memory(size):
        raise MemoryError
    monkeypatch.setattr(bitmaps, "bytearray", no_memory, raising=False)
    assert error(ks, "SETBIT", "big", str(2**32 - 1), "1").startswith("OOM ")
    assert value(ks, "big") is None


# -- HyperLogLog ---------------------------------------------------------------------

def test_the_register_choice_is_valkeys():
    # the registers redis-server's PFDEBUG GETREG shows after PFADD of each element alone
    assert register_and_run(b"hello") == (9216, 1)
    assert register_and_run(b"abcdefgh") == (1383, 1)      # one whole 8-byte block
    assert register_and_run(b"abcdefghi") == (6903, 1)     # a block and a tail
    assert murmurhash64a(b"hello") & (REGISTERS - 1) == 9216


def test_registers_round_trip_through_the_dense_encoding():
    rng = random.Random(3)
    raw = bytearray(rng.randrange(64) for _ in range(REGISTERS))
    dense = raw_to_dense(raw)
    assert len(dense) == 12288 and dense_to_raw(dense) == raw
    # register 1 is bits 6..11, least significant first (Valkey's HLL_DENSE_GET_REGISTER)
    one = bytearray(REGISTERS)
    one[1] = 0b101011
    assert raw_to_dense(one)[:2] == bytes([0b11000000, 0b1010])


def test_pfadd_changes_and_propagates_only_when_a_register_grows(ks):
    out = run(ks, "PFADD", "h", "a", "b")
    assert out.reply == 1 and out.propagate == [argv("PFADD", "h", "a", "b")]
    stored = value(ks, "h")
    assert stored[:5] == b"HYLL\x00" and len(stored) == 16 + 12288 and stored[15] & 0x80
    again = run(ks, "PFADD", "h", "b", "a")
    assert again.reply == 0 and again.propagate == [] and again.events == []
    count = run(ks, "PFCOUNT", "h")
    assert count.reply == 2 and count.propagate == [] and count.changed_keys == []
    assert lookup(b"pfcount").is_readonly


def test_an_empty_hll_counts_zero(ks):
    assert estimate(bytearray(REGISTERS)) == 0
    run(ks, "PFADD", "h")
    assert reply(ks, "PFCOUNT", "h") == 0


def test_a_fresh_cached_cardinality_is_honoured(ks):
    ks.dbs[0].data[b"h"] = dense_value(bytearray(REGISTERS), cached=42)
    assert reply(ks, "PFCOUNT", "h") == 42                  # single key: the cache
    assert reply(ks, "PFCOUNT", "h", "missing") == 0        # a union recounts


def test_sparse_values_are_read_and_corrupt_ones_refused(ks):
    header = b"HYLL\x01\x00\x00\x00" + b"\x00" * 7 + b"\x80"
    # XZERO 100, VAL 5 x2, XZERO for the rest (16384 - 102)
    rest = REGISTERS - 102 - 1
    sparse = header + bytes([0x40 | (99 >> 8), 99 & 0xFF, 0x80 | (4 << 2) | 1,
                             0x40 | (rest >> 8), rest & 0xFF])
    ks.dbs[0].data[b"s"] = sparse
    assert reply(ks, "PFCOUNT", "s") == 2
    assert reply(ks, "PFADD", "s", "x") in (0, 1)
    assert value(ks, "s")[4] == 0                           # written back dense
    ks.dbs[0].data[b"bad"] = header + b"\x7f\xff\x00"       # one register too many
    assert error(ks, "PFCOUNT", "bad") == "INVALIDOBJ Corrupted HLL object detected"
    ks.dbs[0].data[b"short"] = b"HYLL\x00"
    assert error(ks, "PFADD", "short", "a") == \
        "WRONGTYPE Key is not a valid HyperLogLog string value."


def test_pfcount_of_many_stays_within_valkeys_error(ks):
    for n in (1000, 20000):
        key = "h%d" % n
        for i in range(0, n, 1000):
            run(ks, "PFADD", key, *[f"{n}:{j}" for j in range(i, min(i + 1000, n))])
        assert abs(reply(ks, "PFCOUNT", key) - n) <= 6 * 0.0081 * n


# -- SORT ----------------------------------------------------------------------------

def test_sort_store_propagates_its_result_not_the_lookup(ks):
    run(ks, "RPUSH", "l", "2", "1", "3")
    run(ks, "MSET", "w_1", "30", "w_2", "20", "w_3", "10", "v_1", "one")
    out = run(ks, "SORT", "l", "BY", "w_*", "GET", "#", "GET", "v_*", "STORE", "d")
    assert out.reply == 6
    assert out.propagate == [argv("DEL", "d"), argv("RPUSH", "d", "3", "", "2", "", "1", "one")]
    assert out.events == [("l", "sortstore", 0, b"d")]
    empty = run(ks, "SORT", "missing", "STORE", "d")
    assert empty.reply == 0 and empty.propagate == [argv("DEL", "d")]
    assert run(ks, "SORT", "missing", "STORE", "d").propagate == []
    assert run(ks, "SORT", "l", "BY", "w_*").propagate == []


def test_sort_of_a_set_by_nosort_is_sorted_for_determinism(ks):
    run(ks, "SADD", "s", "b", "10", "a", "9")
    assert reply(ks, "SORT", "s", "BY", "nosort") == argv("10", "9", "a", "b")
    assert reply(ks, "SORT", "s", "BY", "nosort", "DESC", "LIMIT", "0", "2") == argv("b", "a")


def test_alpha_ties_under_by_fall_back_to_the_element(ks):
    run(ks, "RPUSH", "l", "c", "a", "b")
    assert reply(ks, "SORT", "l", "BY", "nothing_*", "ALPHA") == argv("a", "b", "c")
    assert reply(ks, "SORT", "l", "BY", "nothing_*", "ALPHA", "DESC") == argv("c", "b", "a")


def test_sort_ro_refuses_store_and_sort_finds_its_keys(ks):
    run(ks, "RPUSH", "l", "1")
    assert error(ks, "SORT_RO", "l", "STORE", "d") == "ERR syntax error"
    spec = lookup(b"sort")
    assert spec.keys(argv("SORT", "l", "GET", "store", "STORE", "d")) == argv("l", "d")
    assert sort_keys(argv("SORT", "l", "LIMIT", "store", "x", "STORE", "a", "store", "b")) == \
        argv("l", "b")
    assert lookup(b"sort_ro").keys(argv("SORT_RO", "l", "BY", "x")) == argv("l")


@pytest.mark.parametrize("raw, score", [
    (b"", 0.0), (b"  7", 7.0), (b"0x10", 16.0), (b"-0x1p-2", -0.25), (b"1e3", 1000.0),
    (b"+inf", float("inf")), (b"-Infinity", float("-inf")), (b".5", 0.5), (b"5.", 5.0),
    (b"nan", None), (b"1e400", None), (b"1e-400", None), (b"7 ", None), (b"1_0", None),
    (b"0e500", 0.0), (b"abc", None)])
def test_sort_scores_read_as_strtod(raw, score):
    assert sort_score(raw) == score


# -- LCS -----------------------------------------------------------------------------

def _valkey_lcs(a: bytes, b: bytes):
    """Valkey's lcsCommand transcribed: the full table, then the walk back."""
    L = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            L[i][j] = L[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(L[i - 1][j], L[i][j - 1])
    i, j, out, ranges = len(a), len(b), bytearray(), []
    ast = len(a)
    aend = bst = bend = 0
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            out.append(a[i - 1])
            if ast == len(a):
                ast, aend, bst, bend = i - 1, i - 1, j - 1, j - 1
            elif ast == i and bst == j:
                ast, bst = ast - 1, bst - 1
            else:
                emit = True
            if ast == 0 or bst == 0:
                emit = True
            i, j = i - 1, j - 1
        else:
            if L[i - 1][j] > L[i][j - 1]:
                i -= 1
            else:
                j -= 1
            if ast != len(a):
                emit = True
        if emit:
            ranges.append(((ast, aend), (bst, bend), aend - ast + 1))
            ast = len(a)
    return bytes(reversed(out)), ranges


def test_lcs_walks_back_exactly_as_valkey():
    rng = random.Random(11)
    for _ in range(400):
        a = bytes(rng.choice(b"abc") for _ in range(rng.randrange(0, 25)))
        b = bytes(rng.choice(b"abc") for _ in range(rng.randrange(0, 25)))
        assert lcs_walk(a, b, lcs_rows(a, b)) == _valkey_lcs(a, b), (a, b)


def test_lcs_replies(ks):
    run(ks, "MSET", "a", "ohmytext", "b", "mynewtext")
    assert reply(ks, "LCS", "a", "b") == b"mytext"
    assert reply(ks, "LCS", "a", "b", "LEN") == 6
    idx = reply(ks, "LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN")
    assert type(idx) is Map and idx == {b"matches": [[[4, 7], [5, 8], 4]], b"len": 6}


def test_lcs_of_long_strings_and_the_table_limit(ks):
    rng = random.Random(5)
    a = bytes(rng.choice(b"acgt") for _ in range(4000))
    b = bytes(rng.choice(b"acgt") for _ in range(4000))
    ks.dbs[0].data.update({b"a": a, b"b": b})
    common = reply(ks, "LCS", "a", "b")
    assert len(common) == reply(ks, "LCS", "a", "b", "LEN") > 2500
    ks.dbs[0].data.update({b"a": b"x" * 12000, b"b": b"y" * 12000})
    assert error(ks, "LCS", "a", "b") == ("ERR Insufficient memory, transient memory for LCS "
                                          "exceeds proto-max-bulk-len")


# -- replay --------------------------------------------------------------------------

def _random_write(rng) -> list:
    k, k2 = rng.choice([b"a", b"b", b"c"]), rng.choice([b"a", b"b", b"c", b"l", b"s"])
    off = b"%d" % rng.randrange(0, 40)
    return rng.choice([
        [b"SETBIT", k, off, rng.choice([b"0", b"1"])], [b"BITOP", rng.choice([b"AND", b"OR", b"XOR"]), k, k2, k],
        [b"BITOP", b"NOT", k, k2], [b"BITFIELD", k, b"INCRBY", b"i5", off, b"%d" % rng.randrange(-9, 9)],
        [b"BITFIELD", k, b"OVERFLOW", b"FAIL", b"INCRBY", b"u3", b"#%d" % rng.randrange(9), b"3"],
        [b"PFADD", rng.choice([b"h", b"h2"]), b"%d" % rng.randrange(50)], [b"PFMERGE", b"h3", b"h", b"h2"],
        [b"RPUSH", b"l", b"%d" % rng.randrange(20)], [b"SADD", b"s", b"%d" % rng.randrange(20)],
        [b"SET", b"w_%d" % rng.randrange(20), b"%d" % rng.randrange(100)],
        [b"SORT", rng.choice([b"l", b"s"]), b"BY", b"w_*", b"GET", b"w_*", b"STORE", b"d"],
        [b"SORT", rng.choice([b"l", b"s"]), b"BY", b"nosort", b"LIMIT", b"0", b"5", b"STORE", b"d2"],
        [b"SET", k, b"%d" % rng.randrange(100), b"PX", b"%d" % rng.randrange(1, 500)],
        [b"DEL", rng.choice([b"l", b"s", b"w_3", k])],
    ])


@pytest.mark.parametrize("seed", range(3))
def test_replaying_the_propagated_writes_rebuilds_the_keyspace(seed):
    rng = random.Random(seed)
    primary, replica, now = Keyspace(), Keyspace(), 1_000_000
    for _ in range(500):
        now += rng.randrange(0, 100)
        out = primary.execute(_random_write(rng), now_ms=now)
        for command in out.propagate:
            applied = replica.execute(command, now_ms=now + 10_000, replica=True)
            assert not isinstance(applied.reply, ReplyError), (command, applied.reply)
    assert primary.dbs[0].data == replica.dbs[0].data
    assert primary.dbs[0].expires == replica.dbs[0].expires
    assert isinstance(primary.dbs[0].data.get(b"d", deque()), deque)
