"""List commands side by side with a real redis-server: LSET, LTRIM, LREM, LINSERT, LPOS,
LMOVE and RPOPLPUSH give the same replies, errors word for word, and the same events.

Two inputs are left out on purpose: ``LPOS ... RANK -9223372036854775808`` and ``LREM
key -9223372036854775808 ...``. Valkey refuses them ("value is out of range, value must
between ..."), Redis 7.0 negates LONG_MIN; test_store_lists_extra.py checks Valkey's reply.
"""

from __future__ import annotations

import pytest

from differential_helpers import both, keyspace_events, redis_server, run_side_by_side  # noqa: F401

pytestmark = pytest.mark.compat


LSET = [
    # the key is looked up before the index is parsed
    "LSET nokey 0 v", "LSET nokey x v", "SET s v", "LSET s 0 v", "LSET s x v",
    "RPUSH l a b c", "LSET l x v", "LSET l 1.5 v", "LSET l 9223372036854775808 v",
    "LSET l 3 v", "LSET l -4 v", "LSET l 9223372036854775807 v", "LSET l", "LSET l 0",
    "LSET l 0 v extra", "LSET l 0 A", "LSET l -1 C", "LSET l 1 B", "LRANGE l 0 -1",
    "LSET l -3 first", "LSET l 0 A", "LINDEX l 0", "LLEN l",
]

LTRIM = [
    # the indexes are parsed before the key is looked up
    "LTRIM nokey x 1", "LTRIM nokey 0 x", "LTRIM nokey 0 1", "EXISTS nokey", "SET s v",
    "LTRIM s 0 1", "LTRIM s x 1", "LTRIM s 0 9223372036854775808", "LTRIM l", "LTRIM l 0",
    "LTRIM l 0 1 2", "RPUSH l 0 1 2 3 4 5 6 7 8 9", "LTRIM l 0 -1", "LRANGE l 0 -1",
    "LTRIM l 1 -2", "LRANGE l 0 -1", "LTRIM l -100 100", "LRANGE l 0 -1", "LTRIM l -3 -1",
    "LRANGE l 0 -1", "LTRIM l 1 0", "EXISTS l", "RPUSH l a b c", "LTRIM l 5 10", "EXISTS l",
    "RPUSH l a b c", "LTRIM l 0 -5", "EXISTS l", "RPUSH l a b c", "LRANGE l -100 -50",
    "LTRIM l -100 -50", "EXISTS l", "RPUSH l a b c d",
    "LTRIM l -9223372036854775808 9223372036854775807", "LRANGE l 0 -1", "LTRIM l 1 1",
    "LRANGE l 0 -1", "LTRIM l 0 0", "LRANGE l 0 -1", "LTRIM l -1 -1", "LLEN l",
]

LREM = [
    # the count is parsed before the key is looked up
    "LREM nokey 0 a", "LREM nokey x a", "SET s v", "LREM s 0 a", "LREM s x a",
    "LREM s 9223372036854775808 a", "LREM l 1", "LREM l 1 a b", "RPUSH l a b a c a b a",
    "LREM l 1.5 a", "LREM l 0 zz", "LREM l 2 a", "LRANGE l 0 -1", "LREM l -1 a",
    "LRANGE l 0 -1", "LREM l 0 b", "LRANGE l 0 -1", "RPUSH l a x a y a", "LREM l -2 a",
    "LRANGE l 0 -1", "LREM l -100 a", "LRANGE l 0 -1", "LREM l 9223372036854775807 c",
    "LRANGE l 0 -1", "LREM l -9223372036854775807 x", "LREM l 1 y", "EXISTS l",
    "RPUSH l A a", "LREM l 0 a", "LRANGE l 0 -1",
]

LINSERT = [
    # the side is checked before the key is looked up
    "LINSERT nokey BEFORE a b", "LINSERT nokey middle a b", "SET s v",
    "LINSERT s before a b", "LINSERT s middle a b", "LINSERT l before a", "LINSERT l before a b c",
    "RPUSH l a b a", "LINSERT l before zz x", "LINSERT l BEFORE a x", "LINSERT l After a y",
    "LRANGE l 0 -1", "LINSERT l after b end", "LINSERT l before x x", "LINSERT l aFtEr A z",
    "LRANGE l 0 -1", "LLEN l",
]

LPOS = [
    "LPOS nokey a", "LPOS nokey a COUNT 0", "LPOS nokey a COUNT 2 RANK -1", "LPOS nokey a MAXLEN 1",
    "SET s v", "LPOS s a", "LPOS s a COUNT 1",
    # options are parsed before the key is looked up, each error in turn
    "LPOS s a RANK 0", "LPOS s a FOO", "LPOS s a RANK", "LPOS nokey a COUNT -1",
    "RPUSH l a b c a b c a", "LPOS l", "LPOS l a", "LPOS l b", "LPOS l zz",
    "LPOS l a RANK 0", "LPOS l a RANK x", "LPOS l a RANK 1.0",
    "LPOS l a RANK 9223372036854775808", "LPOS l a RANK -9223372036854775807",
    "LPOS l a RANK 9223372036854775807", "LPOS l a COUNT -1", "LPOS l a COUNT x",
    "LPOS l a COUNT 9223372036854775808", "LPOS l a MAXLEN -1", "LPOS l a MAXLEN x",
    "LPOS l a COUNT", "LPOS l a RANK", "LPOS l a MAXLEN", "LPOS l a rank 1 foo",
    "LPOS l a foo 1", "LPOS l a RANK 0 COUNT -1", "LPOS l a COUNT -1 RANK 0",
    "LPOS l a RANK 2", "LPOS l a RANK 3", "LPOS l a RANK 4", "LPOS l a RANK -1",
    "LPOS l a RANK -2", "LPOS l a RANK -4", "LPOS l b RANK -1",
    "LPOS l a COUNT 0", "LPOS l a COUNT 1", "LPOS l a COUNT 2", "LPOS l a COUNT 10",
    "LPOS l zz COUNT 0", "LPOS l a rank 2 count 0", "LPOS l a rank -1 count 2",
    "LPOS l a rank -2 count 0 maxlen 3", "LPOS l a rank 4 count 0",
    "LPOS l a count 0 maxlen 4", "LPOS l a maxlen 1", "LPOS l b maxlen 1", "LPOS l b maxlen 2",
    "LPOS l a maxlen 1 rank 2", "LPOS l a maxlen 0 rank 3", "LPOS l c maxlen 2 rank -1",
    "LPOS l a count 1 count 0", "LPOS l a rank 3 rank 1", "LPOS l a MAXLEN 0 COUNT 0 RANK -3",
]

LMOVE = [
    # the two ends are checked before the keys are looked up
    "LMOVE nokey d left left", "EXISTS d", "LMOVE nokey d up left", "LMOVE nokey d left down",
    "LMOVE a b left", "LMOVE a b left right x", "RPOPLPUSH a", "RPOPLPUSH a b c",
    "SET s v", "LMOVE s d left left", "RPOPLPUSH s d", "LMOVE nokey s left left",
    "RPOPLPUSH nokey s", "RPUSH l a b c d e", "LMOVE l s left left", "RPOPLPUSH l s",
    "LRANGE l 0 -1", "LMOVE l d left left", "LMOVE l d left right", "LMOVE l d right left",
    "LMOVE l d RIGHT Right", "LRANGE l 0 -1", "LRANGE d 0 -1", "LMOVE l d left left",
    "EXISTS l", "LMOVE d d left right", "LMOVE d d right left", "LMOVE d d left left",
    "LMOVE d d right right", "LRANGE d 0 -1", "RPOPLPUSH d d", "LRANGE d 0 -1",
    "RPOPLPUSH d e", "RPOPLPUSH d e", "LRANGE e 0 -1", "LRANGE d 0 -1", "RPUSH one z",
    "LMOVE one one left right", "RPOPLPUSH one one", "LRANGE one 0 -1",
    "LMOVE one two right left", "EXISTS one", "LRANGE two 0 -1", "RPOPLPUSH two two",
    "RPOPLPUSH two three", "EXISTS two", "LRANGE three 0 -1",
]


@pytest.mark.parametrize("script", [LSET, LTRIM, LREM, LINSERT, LPOS, LMOVE],
                         ids=["lset", "ltrim", "lrem", "linsert", "lpos", "lmove-rpoplpush"])
def test_the_same_replies_as_redis_server(both, script):
    run_side_by_side(*both, script)


def test_the_same_keyspace_events_as_redis_server(both):
    ours, theirs = both
    script = [
        "RPUSH l a b c a", "LSET l 0 x", "LSET l 9 x", "LSET nokey 0 x",
        "LTRIM l 0 -1", "LTRIM nokey 0 1", "LTRIM l 0 2", "LREM l 0 zz", "LREM l 1 b",
        "LINSERT l before zz q", "LINSERT l before c q", "LINSERT nokey after a b",
        "LPOS l x", "LMOVE l d left right", "LMOVE l l right left", "RPOPLPUSH l d",
        "LMOVE d d left left", "RPOPLPUSH l d", "LMOVE nokey d left left", "SET str v",
        "LMOVE d str left left", "RPUSH one z", "LMOVE one one left right",
        "LMOVE one two left right", "RPUSH t a", "LTRIM t 1 0", "RPUSH r x x",
        "LREM r 0 x", "RPOPLPUSH two d",
    ]
    expected = keyspace_events(theirs, script)
    assert len(expected) >= 60          # lset, ltrim, lrem, linsert, push/pop pairs, del ...
    assert keyspace_events(ours, script) == expected
