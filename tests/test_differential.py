"""Side by side with a real redis-server: the same commands, the same replies and errors.

Each script runs on one connection to a fresh workbench node and to Debian's
``redis-server`` (started here, on loopback, stopped by its PID). Every reply must be
equal, errors included, word for word. Keyspace events are compared too.
"""

from __future__ import annotations

import pytest

from differential_helpers import both, keyspace_events, redis_server, run_side_by_side  # noqa: F401

pytestmark = pytest.mark.compat


CROSS_DB = [
    # MOVE: errors first, in Valkey's order, then the moves themselves
    "SET k v", "PEXPIRE k 100000", "MOVE k 0", "MOVE k x", "MOVE k 99", "MOVE k -1",
    "MOVE nokey 1", "MOVE k 1", "MOVE k 1", "EXISTS k", "SELECT 1", "EXISTS k",
    "SET k other", "SELECT 0", "SET k again", "MOVE k 1", "SELECT 1", "GET k", "SELECT 0",
    # COPY: options, errors, replace, types, expiry carried over
    "COPY k k", "COPY k k DB 0", "COPY k k DB 1", "COPY k k2 DB x", "COPY k k2 DB 99",
    "COPY k k2 FOO", "COPY k k2 DB", "COPY nokey k2", "COPY k k2", "GET k2", "COPY k k2",
    "RPUSH l a b c", "COPY l k2", "COPY l k2 REPLACE", "TYPE k2", "LRANGE k2 0 -1",
    "RPUSH k2 d", "LLEN l", "HSET h f 1", "COPY h h2 DB 2", "SELECT 2", "HGETALL h2",
    "SELECT 0", "SADD s m", "SET t 1 PX 50000", "COPY t t2 replace", "TTL t2",
    "COPY t t3 DB 1 REPLACE", "SELECT 1", "TTL t3", "SELECT 0",
    # SWAPDB: argument errors before the range check, then a real swap
    "SWAPDB 0 x", "SWAPDB x 0", "SWAPDB 99 x", "SWAPDB 0 99", "SWAPDB -1 0", "SWAPDB 0 0",
    "DBSIZE", "SWAPDB 0 1", "DBSIZE", "GET k", "SELECT 1", "DBSIZE", "GET k2",
    "SWAPDB 1 0", "DBSIZE", "SWAPDB 0 2",
]


@pytest.mark.parametrize("script", [CROSS_DB], ids=["move-copy-swapdb"])
def test_the_same_replies_as_redis_server(both, script):
    run_side_by_side(*both, script)


def test_the_same_keyspace_events_as_redis_server(both):
    ours, theirs = both
    script = ["SET a 1", "COPY a b", "COPY a a DB 2", "RPUSH l x", "MOVE l 2", "MOVE a 2",
              "SWAPDB 0 2", "SELECT 2", "COPY a c REPLACE", "SELECT 0"]
    expected = keyspace_events(theirs, script)
    assert len(expected) >= 12                   # set, copy_to, rpush, move_from/to ...
    assert keyspace_events(ours, script) == expected
