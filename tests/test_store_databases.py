"""MOVE, COPY and SWAPDB on the pure keyspace: what they change in the other database."""

from __future__ import annotations

from keyspace_helpers import reply, run


def test_move_reports_the_key_it_changed_in_the_other_database(ks):
    run(ks, "SET", "k", "v", "PX", 5000)
    out = run(ks, "MOVE", "k", 2)
    assert out.reply == 1 and out.changed_keys == [b"k"]
    assert out.changed_elsewhere == [(2, b"k")]
    assert [e[:3] for e in out.events] == [("g", "move_from", 0), ("g", "move_to", 2)]
    assert ks.dbs[2].data[b"k"] == b"v" and ks.dbs[2].expires[b"k"] == 6000
    assert b"k" not in ks.dbs[0].data and b"k" not in ks.dbs[0].expires
    assert out.propagate == [[b"MOVE", b"k", b"2"]]


def test_a_copy_shares_nothing_with_its_source(ks):
    run(ks, "RPUSH", "l", "a")
    run(ks, "HSET", "h", "f", "1")
    run(ks, "SADD", "s", "m")
    for key in ("l", "h", "s"):
        assert reply(ks, "COPY", key, key + "2", "DB", 1) == 1
    run(ks, "RPUSH", "l", "b")
    run(ks, "HSET", "h", "g", "2")
    run(ks, "SADD", "s", "n")
    assert list(ks.dbs[1].data[b"l2"]) == [b"a"]
    assert ks.dbs[1].data[b"h2"] == {b"f": b"1"} and ks.dbs[1].data[b"s2"] == {b"m"}


def test_copy_replace_takes_the_sources_expiry_or_none(ks):
    run(ks, "SET", "src", "1")
    run(ks, "SET", "dst", "2", "PX", 100)
    assert reply(ks, "COPY", "src", "dst", "REPLACE") == 1
    assert ks.dbs[0].data[b"dst"] == b"1" and b"dst" not in ks.dbs[0].expires


def test_an_expired_key_in_the_other_database_is_deleted_there_and_its_del_propagated(ks):
    run(ks, "SET", "k", "old", "PX", 10, db=1)
    run(ks, "SET", "k", "new")
    out = run(ks, "MOVE", "k", 1, now=2_000)            # db 1's k expired at 1,010
    assert out.reply == 1 and ks.dbs[1].data[b"k"] == b"new"
    assert out.propagate == [[b"SELECT", b"1"], [b"DEL", b"k"], [b"SELECT", b"0"],
                             [b"MOVE", b"k", b"1"]]
    assert ("x", "expired", 1, b"k") in out.events


def test_a_replica_applying_move_sees_the_other_database_as_the_primary_left_it(ks):
    # the primary's stream deletes the expired key first; until then a replica keeps it
    run(ks, "SET", "k", "old", "PX", 10, db=1)
    run(ks, "SET", "k", "new")
    out = run(ks, "MOVE", "k", 1, now=2_000, replica=True)
    assert out.reply == 0 and ks.dbs[1].data[b"k"] == b"old"


def test_swapdb_exchanges_contents_and_expiries_and_counts_as_a_flush_of_both(ks):
    run(ks, "SET", "a", "1", "PX", 500)
    run(ks, "SET", "b", "2", db=3)
    out = run(ks, "SWAPDB", 3, 0)
    assert out.flushed_dbs == [0, 3] and out.propagate == [[b"SWAPDB", b"3", b"0"]]
    assert ks.dbs[0].data == {b"b": b"2"} and ks.dbs[0].expires == {}
    assert ks.dbs[3].data == {b"a": b"1"} and ks.dbs[3].expires == {b"a": 1500}
    assert ks.dbs[0].id == 0 and ks.dbs[3].id == 3
